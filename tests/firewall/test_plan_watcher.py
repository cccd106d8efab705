"""The firewall's look at the plan in force: one stat call per order, both files every poll."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from src.firewall.plan import PlanWatcher
from src.orchestration.machine.handoff import snapshot_plan
from src.core.statefiles import PLAN_FILE, PLAN_SHA256_FILE
from testkit.plans import strategy_c_plan, valid_plan

DAY = valid_plan()["date"]


def watcher(tmp_path: Path) -> PlanWatcher:
    w = PlanWatcher(tmp_path / PLAN_FILE, lambda: date.fromisoformat(DAY))
    w.poll()
    return w


def test_a_hand_over_is_seen_by_the_next_order(tmp_path: Path) -> None:
    snapshot_plan(tmp_path, json.dumps(valid_plan()).encode())
    w = watcher(tmp_path)
    assert w.current.authority is not None and w.current.authority.authorized
    snapshot_plan(tmp_path, json.dumps(strategy_c_plan()).encode())  # Strategy C deployed
    assert w.poll(sha256_only=True)
    assert w.current.authority is not None and not w.current.authority.authorized


def test_a_plan_changed_behind_its_sha256_is_refused_at_the_next_full_poll(tmp_path: Path) -> None:
    snapshot_plan(tmp_path, json.dumps(valid_plan()).encode())
    w = watcher(tmp_path)
    (tmp_path / PLAN_FILE).write_text(json.dumps({**valid_plan(), "symbols": ["TSLA"]}))
    assert not w.poll(sha256_only=True)  # the order path: still the plan last validated (never the new bytes)
    assert w.current.authority is not None and w.current.authority.symbols == frozenset(valid_plan()["symbols"])
    assert w.poll()  # the loop's poll: the bytes do not hash to the validated sha256
    assert w.current.authority is None and "is not the plan the orchestrator validated" in w.current.reason


def test_a_sha256_file_changed_alone_is_seen_by_the_next_order(tmp_path: Path) -> None:
    snapshot_plan(tmp_path, json.dumps(valid_plan()).encode())
    w = watcher(tmp_path)
    (tmp_path / PLAN_SHA256_FILE).write_text("0" * 64 + "\n")
    assert w.poll(sha256_only=True)
    assert w.current.authority is None


def test_a_directory_watch_reports_a_hand_over_and_ignores_other_files(tmp_path: Path) -> None:
    from src.firewall.dirwatch import open_watch

    watch = open_watch(tmp_path, frozenset({PLAN_FILE, PLAN_SHA256_FILE}))
    assert watch is not None  # Linux: inotify
    try:
        assert watch.read() == frozenset()  # nothing yet
        (tmp_path / "firewall_decisions.jsonl").write_text("{}\n")
        assert watch.read() == frozenset()  # not a plan file
        snapshot_plan(tmp_path, json.dumps(valid_plan()).encode())
        assert watch.read() == {PLAN_FILE, PLAN_SHA256_FILE}
        (tmp_path / PLAN_SHA256_FILE).chmod(0o600)
        assert watch.read() == {PLAN_SHA256_FILE}  # the mode is part of what the order path compared
    finally:
        watch.close()


def test_a_directory_watch_whose_directory_goes_says_so(tmp_path: Path) -> None:
    from src.firewall.dirwatch import open_watch

    state = tmp_path / "state"
    state.mkdir()
    watch = open_watch(state, frozenset({PLAN_FILE}))
    assert watch is not None
    try:
        state.rename(tmp_path / "elsewhere")
        assert watch.read() is None  # its changes would no longer be reported
    finally:
        watch.close()
    assert open_watch(tmp_path / "missing", frozenset({PLAN_FILE})) is None
