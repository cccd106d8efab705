"""The plan in force is the plan validated: the real CLI, a fake docker, the simulator and the real bot.

The analyst may rewrite GAMEPLAN_PATH at any moment. The orchestrator snapshots the bytes it
validated into state/ and the bot is held to their sha256; whatever happens to either file
between validation and the bot's start, what runs is what was validated, or nothing runs.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from src.orchestration.machine.bot import running_bot
from src.core.journal import read_runs
from src.core.statefiles import PLAN_FILE, READY_FILE
from testkit.plans import write_plan
from tests.helpers.harness import Harness, honest_bot

# Runs as BOT_COMMAND (BOT_READY=notify: it becomes the runtime): writes argv[1]'s text into the file
# argv[2] names, then becomes the real bot.
REWRITE_THEN_BOT = """
import os, sys
source, target = sys.argv[1], sys.argv[2]
target = target.replace("SNAPSHOT", os.path.join(os.environ["STATE_DIR"], "{snapshot}"))
open(target, "w").write(open(source).read())
os.execv(sys.executable, [sys.executable, "-m", "src.main", *sys.argv[3:]])
""".format(snapshot=PLAN_FILE)


def rewriting_bot(tmp: Path, source: Path, target: str) -> str:
    script = tmp / "rewrite_then_bot.py"
    script.write_text(REWRITE_THEN_BOT)
    return f"{sys.executable} {script} {source} {target}"


def test_the_analyst_rewriting_the_plan_after_validation_does_not_change_what_runs(world):
    plan = Path(world.env()["GAMEPLAN_PATH"])
    validated = hashlib.sha256(plan.read_bytes()).hexdigest()
    no_trading = write_plan(world.tmp / "plans" / "other.json", strategy="C", symbols=[],
                            position_size_multiplier=0, key_levels={})
    run = world.orchestrate(BOT_COMMAND=rewriting_bot(world.tmp, no_trading, str(plan)), BOT_READY="notify")
    assert run.code == 0, run.stderr  # strategy A was validated, and strategy A runs
    record = json.loads((world.state_dir / READY_FILE).read_text())
    assert record["gameplan_sha256"] == validated and record["strategy"] == "A"
    assert (world.state_dir / PLAN_FILE).read_bytes() != plan.read_bytes()  # the analyst's file did change
    assert run.record["gameplan"]["sha256"] == validated


def test_a_snapshot_changed_before_the_bot_reads_it_fails_the_run(world):
    other = write_plan(world.tmp / "plans" / "other.json", position_size_multiplier=0.5)
    run = world.orchestrate(BOT_COMMAND=rewriting_bot(world.tmp, other, "SNAPSHOT"), BOT_READY="notify")
    assert run.code == 1
    assert "is not the plan the orchestrator validated" in run.record["reason"]
    assert running_bot(world.state_dir) is None


def test_a_bot_reporting_another_plan_is_stopped_and_the_run_fails(tmp_path):
    harness = Harness(tmp_path)
    harness.configure(gameplan_path=None)  # Strategy C is validated and deployed ...

    def lying_bot(command, args, **kwargs):
        harness.bot_calls.append({"command": command, "args": list(args), **kwargs})
        started = honest_bot(list(args), 4242)
        return started.__class__(True, 4242, "ready", {**started.record, "strategy": "A",  # ... the bot says A
                                                        "trading_authorized": True})

    harness._start_bot = lying_bot  # type: ignore[method-assign]
    assert harness.run() == 1
    reason = list(read_runs(harness.config.state_dir))[-1]["reason"]
    assert "a plan other than the one validated" in reason and "strategy 'A' (expected 'C')" in reason
    assert harness.path[-2:] == ["BOT_START_FAILED", "FAILURE"]
