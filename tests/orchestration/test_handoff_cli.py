"""`python -m src.orchestration.machine.handoff PLAN`: the orchestrator's hand-over by hand (a rollback, a bot tried
without the orchestrator): the plan validated for today becomes the plan in force, with its sha256."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from src.firewall.plan import plan_in_force_now
from src.core.statefiles import PLAN_FILE
from testkit.plans import write_plan
from testkit.repo_env import hide_repo_dotenv
from testkit.stack import REPO_ROOT


def handoff(tmp_path, plan) -> subprocess.CompletedProcess[str]:
    env = hide_repo_dotenv({**os.environ, "STATE_DIR": str(tmp_path / "state")})
    return subprocess.run([sys.executable, "-m", "src.orchestration.machine.handoff", str(plan)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def test_a_valid_plan_becomes_the_plan_in_force_the_firewall_honours(tmp_path):
    plan = write_plan(tmp_path / "plan.json")
    done = handoff(tmp_path, plan)
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(plan.read_bytes()).hexdigest() in done.stdout
    in_force = plan_in_force_now(tmp_path / "state")
    assert in_force.authority is not None and in_force.authority.authorized


def test_an_unusable_plan_is_one_line_and_leaves_the_plan_in_force(tmp_path):
    good = write_plan(tmp_path / "plan.json")
    assert handoff(tmp_path, good).returncode == 0
    before = (tmp_path / "state" / PLAN_FILE).read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    done = handoff(tmp_path, bad)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "not usable (invalid" in done.stderr
    assert (tmp_path / "state" / PLAN_FILE).read_bytes() == before
