"""Hostile gameplan files: each ends in Strategy C with the reason, within a second, never a hang.

The orchestrator runs with fake Docker and a fake bot launcher (tests/helpers/harness.py
`Harness`) so each file is judged in milliseconds; the ones that could block a reader (a FIFO,
/dev/zero) or that need the kernel's own permission check go through the real CLI too.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from src.gameplan import loader
from src.gameplan.loader import MAX_FILE_BYTES, evaluate_gameplan, load_emergency_plan, trading_date
from src.gameplan.schema import Gameplan
from src.core.statefiles import READY_FILE
from testkit.plans import valid_plan
from testkit.stack import Run, Stack
from tests.helpers.ci import skip_or_fail
from tests.helpers.harness import Harness

LIMITS = valid_plan()["hard_limits"]


def plan_text(**changes: object) -> str:
    return json.dumps({**valid_plan(trading_date()), **changes}, ensure_ascii=False)


def oversized(path: Path) -> None:
    with open(path, "wb") as file:
        file.truncate(100 * 1024 * 1024)  # a 100 MB file (sparse: the loader reads 1 MiB + 1 byte of it)


def deeply_nested(path: Path) -> None:
    """The catalysts list inside 10 000 more lists."""
    text = plan_text().replace('"catalysts": [', '"catalysts": [' + "[" * 10_000)
    path.write_text(text.replace('"], "earnings', '"' + "]" * 10_000 + '], "earnings'))


def fifo(path: Path) -> None:
    os.mkfifo(path.with_suffix(".fifo"))
    path.symlink_to(path.with_suffix(".fifo"))


def half_written(path: Path) -> None:
    """A writer caught mid-rewrite: the file truncated, half the new plan written, more to come."""
    text = plan_text()
    path.write_text(text[: len(text) // 2])


# (name, how the file is made, the verdict kind, the start of the reason)
FAULTS: list[tuple[str, Callable[[Path], None], str, str]] = [
    ("100 MB file", oversized, "invalid", f"is larger than {MAX_FILE_BYTES} bytes"),
    ("invalid UTF-8", lambda p: p.write_bytes(plan_text(alert_message="café").encode("latin-1")),
     "invalid", "not valid UTF-8: byte 0xe9"),
    ("10 000-deep nesting", deeply_nested, "invalid", "not strict JSON: nested too deeply"),
    ("duplicate keys", lambda p: p.write_text(plan_text(strategy="C").replace('"date"', '"strategy": "A", "date"')),
     "invalid", "not strict JSON: duplicate key 'strategy'"),
    ("NaN", lambda p: p.write_text(plan_text().replace("0.75", "NaN")),
     "invalid", "not strict JSON: NaN is not a number"),
    ("symlink to /dev/zero", lambda p: p.symlink_to("/dev/zero"),
     "unreadable", "is not a regular file (character device)"),
    ("symlink to a FIFO", fifo, "unreadable", "is not a regular file (FIFO)"),
    ("a directory", lambda p: p.mkdir(), "unreadable", "is not a regular file (directory)"),
    ("rewritten during the read", half_written, "invalid", "not JSON: "),
    # a plan that contradicts itself where authority is decided gets none
    ("a traded symbol under earnings blackout", lambda p: p.write_text(plan_text(earnings_blackout=["QQQ"])),
     "invalid", "earnings_blackout: QQQ is also in symbols: "),
    ("a size on an unverified VIX", lambda p: p.write_text(plan_text(vix_source_verified=False)),
     "invalid", "vix_source_verified: false, but position_size_multiplier is 0.75: "),
    ("stale fields without quarantine", lambda p: p.write_text(plan_text(data_quality={
        "quarantine_active": False, "stale_fields": ["vix", "breadth"], "last_verified": "2026-02-10T12:45:00Z"})),
     "invalid", "data_quality.stale_fields: lists stale inputs but data_quality.quarantine_active is false"),
    ("a 1 MiB earnings blackout", lambda p: p.write_text(plan_text(earnings_blackout=[
        f"{a}{b}{c}{d}" for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for d in "ABCDEFG"])),
     "invalid", "earnings_blackout: Tuple should have at most 1000 items after validation, not 123032"),
]


def run_promptly(harness: Harness, seconds: float = 30.0) -> int:
    """The orchestrator run, in a thread, failing the test (not hanging it) if it blocks: how long the
    run may take is asserted on its GAMEPLAN_LOADING time; this only turns a hang into a failure."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(harness.run()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, f"the run blocked for more than {seconds} s"
    return result[0]


def assert_strategy_c(verdict: dict, alerts: list[str], path: list[str], kind: str, reason: str) -> None:
    """The reason is in the journal and in the Strategy C alert; the run went through GAMEPLAN_INVALID."""
    assert verdict["verdict"] == kind and reason in verdict["reason"]
    assert verdict["deployed"] and verdict["deployed"] != verdict["path"]
    assert any(a.startswith(f"Strategy C deployed (NO trading): gameplan {kind}: ") and reason in a for a in alerts)
    assert "GAMEPLAN_INVALID" in path and path[-1] == "SUCCESS"


@pytest.mark.parametrize(("make", "kind", "reason"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_a_hostile_gameplan_ends_in_strategy_c_with_its_reason_within_a_second(harness, make, kind, reason):
    harness.config.gameplan_path.unlink()
    make(harness.config.gameplan_path)
    assert run_promptly(harness) == 2
    record = harness.runs[-1]
    assert record["outcome"] == "strategy_c"
    assert_strategy_c(record["gameplan"], [m for _, m in harness.notifier.alerts], harness.path, kind, reason)
    loading = [t["seconds"] for t in record["transitions"] if t["from"] == "GAMEPLAN_LOADING"]
    assert loading and loading[0] < 1.0
    assert harness.bot_gameplan() == harness.config.emergency_gameplan_path
    assert not load_emergency_plan(harness.config.emergency_gameplan_path).trading_authorized


def test_an_unknown_descriptive_value_is_traded_on_not_turned_into_strategy_c(harness, caplog):
    """The spec only shows examples of regime, bias, expected_behavior and geo_risk: "normal" is no fault."""
    harness.config.gameplan_path.write_text(plan_text(regime="normal", geo_risk="elevated"))
    with caplog.at_level("WARNING", logger="src.gameplan.loader"):
        assert run_promptly(harness) == 0
    assert harness.runs[-1]["outcome"] == "success" and harness.runs[-1]["gameplan"]["verdict"] == "ok"
    assert harness.bot_gameplan() == harness.config.gameplan_path
    assert not any("Strategy C" in m for _, m in harness.notifier.alerts)
    assert sorted(r.getMessage().split(": ", 1)[1].split(" is not")[0] for r in caplog.records
                  if r.name == "src.gameplan.loader") == ['geo_risk "elevated"', 'regime "normal"']


def test_a_plan_rewritten_again_and_again_is_read_whole_or_rejected_never_mixed(tmp_path):
    """A writer truncating and rewriting the file in place, 128 bytes at a time, while the loader reads.

    The two plans have the same length and differ near the start (symbols) and near the end (a hard
    limit): a reader that stitched two versions together would accept a plan nobody wrote. Before
    the loader compared the file before and after its read, this found such plans (~1 per second).
    """
    path = tmp_path / "today.json"
    plans = [plan_text(symbols=["SPY"], key_levels={}, hard_limits={**LIMITS, "max_single_position": 10}),
             plan_text(symbols=["QQQ"], key_levels={}, hard_limits={**LIMITS, "max_single_position": 99})]
    expected = [Gameplan.model_validate_json(p) for p in plans]
    path.write_text(plans[0])
    stop = threading.Event()

    def rewrite() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            data = plans[n % 2].encode()
            with open(path, "wb") as file:  # truncates: readers meet an empty or partial file
                for start in range(0, len(data), 128):
                    file.write(data[start:start + 128])
                    file.flush()

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    kinds = set()
    try:
        # 1.5 s of racing at least, and on until both outcomes were met (busy cores race more slowly)
        enough, deadline = time.monotonic() + 1.5, time.monotonic() + 30
        while time.monotonic() < enough or (not {"ok", "invalid"} <= kinds and time.monotonic() < deadline):
            verdict = evaluate_gameplan(path)
            kinds.add(verdict.kind)
            if verdict.usable:
                assert verdict.plan in expected, "a plan stitched from two versions was accepted"
            else:
                assert verdict.reason.startswith(("not JSON: ", f"{path} changed while it was being read")), verdict
    finally:
        stop.set()
        writer.join()
    assert {"ok", "invalid"} <= kinds  # the race really happened


def test_a_file_rewritten_between_two_reads_is_rejected_not_stitched(tmp_path, monkeypatch):
    """Deterministic form of the race above: the loader's first read gets a writer's first 300 bytes,
    then the file is rewritten whole with the other version before the loader reads on."""
    path = tmp_path / "today.json"
    first = plan_text(symbols=["SPY"], key_levels={})
    second = plan_text(symbols=["QQQ"], key_levels={}, position_size_multiplier=1.75)
    path.write_text(first[:300])
    real_read = os.read

    def read_then_rewrite(fd: int, count: int) -> bytes:
        chunk = real_read(fd, count)
        if chunk and path.read_text() != second:
            path.write_text(second)
        return chunk

    monkeypatch.setattr(loader.os, "read", read_then_rewrite)
    verdict = evaluate_gameplan(path)
    assert verdict.kind == "unreadable"
    assert verdict.reason == f"{path} changed while it was being read (is it being written?)"


# --- through the real CLI (the real bot runs Strategy C) -------------------------------------------

def assert_cli_strategy_c(world: Stack, run: Run, kind: str, reason: str) -> None:
    assert run.code == 2, run.stderr
    assert_strategy_c(run.record["gameplan"], run.alerts, run.path, kind, reason)
    assert run.seconds_in("GAMEPLAN_LOADING")[0] < 1.0 and "Traceback" not in run.stderr
    ready = json.loads((world.state_dir / READY_FILE).read_text())
    assert ready["strategy"] == "C" and ready["trading_authorized"] is False


@pytest.mark.parametrize("name", ["symlink to /dev/zero", "symlink to a FIFO"])
def test_cli_a_gameplan_that_could_block_a_reader_does_not(world, name):
    _, make, kind, reason = next(f for f in FAULTS if f[0] == name)
    plan = world.tmp / "plans" / "hostile.json"
    plan.parent.mkdir(parents=True)
    make(plan)
    run = world.orchestrate(GAMEPLAN_PATH=str(plan), timeout=30)
    assert_cli_strategy_c(world, run, kind, reason)


def test_cli_a_gameplan_the_orchestrator_may_not_read(world):
    """A real EACCES: as root, the orchestrator runs without CAP_DAC_OVERRIDE (root reads any file otherwise)."""
    plan = world.tmp / "plans" / "locked.json"
    plan.parent.mkdir(parents=True)
    plan.write_text(plan_text())
    plan.chmod(0o000)
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            skip_or_fail("root needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
        world.prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    run = world.orchestrate(GAMEPLAN_PATH=str(plan), timeout=30)
    assert_cli_strategy_c(world, run, "unreadable", f"cannot open {plan}: Permission denied")
