"""`state/` read-only or full (a real 64 KiB tmpfs): a clear error and exit 1, nothing started,
no truncated journal line, no half-written gameplan, no lock left held.

Mounting needs root (CAP_SYS_ADMIN): these tests skip elsewhere and run in CI, which is root.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.orchestration.machine.bot import running_bot
from src.core.journal import read_runs
from src.core.locks import LockHeld, PidLock
from src.core.statefiles import ORCHESTRATOR_LOCK, RUNS_FILE
from testkit.stack import Run, Stack
from tests.helpers.ci import skip_or_fail
from tests.helpers.fake_docker import FakeDockerCLI

PREVIOUS = {"run_id": "yesterday", "outcome": "success", "exit_code": 0, "reason": None, "transitions": []}


class Tmpfs:
    """A tiny tmpfs mounted at `path`: fill it, or remount it read-only."""

    def __init__(self, path: Path, size: str = "64k") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            skip_or_fail(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")

    def fill(self) -> None:
        """Use every free block: the next write that needs one fails with ENOSPC."""
        with open(self.path / "filler", "wb", buffering=0) as filler:
            try:
                while filler.write(b"\0" * 4096):
                    pass
            except OSError:
                pass

    def read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True)

    def files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in self.path.iterdir() if p.is_file() and p.name != "filler"}

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def small_state(world: Stack) -> Iterator[Tmpfs]:
    """STATE_DIR on a 64 KiB tmpfs holding yesterday's journal line and emergency plan."""
    disk = Tmpfs(world.state_dir)
    (disk.path / RUNS_FILE).write_text(json.dumps(PREVIOUS) + "\n")
    (disk.path / "emergency.json").write_text("{}")  # yesterday's, whatever it was: it must survive intact
    yield disk
    disk.unmount()


def assert_refused_to_start(world: Stack, fake_docker: FakeDockerCLI, run: Run, disk: Tmpfs,
                            before: dict[str, bytes], why: str) -> None:
    """Exit 1 with one clear line on stderr, in the log and in the alert (README: what exit 1 promises);
    Docker untouched, no bot; every file on the disk as it was."""
    assert run.code == 1
    assert "Traceback" not in run.stderr
    assert f"startup: cannot write run state ({world.state_dir}" in run.stderr and why in run.stderr
    after = disk.files()
    assert after.pop(ORCHESTRATOR_LOCK, b"") == b""  # at most an empty lock file, held by nobody
    assert after == before  # no torn journal line, no temp file, no half-written plan
    assert not any(c.line.startswith(("compose up", "start ", "restart ")) for c in fake_docker.calls)
    assert running_bot(world.state_dir) is None
    logged = "".join(p.read_text() for p in world.log_dir.glob("orchestrator_*.log"))
    assert "cannot write run state" in logged and why in logged
    assert run.alerts and "cannot write run state" in run.alerts[-1] and why in run.alerts[-1]


def test_a_read_only_state_dir_is_a_clear_error_and_nothing_starts(world, fake_docker, small_state):
    before = small_state.files()
    small_state.read_only()
    run = world.orchestrate()
    assert_refused_to_start(world, fake_docker, run, small_state, before, "Read-only file system")


def test_a_full_state_dir_is_a_clear_error_and_nothing_starts(world, fake_docker, small_state):
    before = small_state.files()
    small_state.fill()
    run = world.orchestrate()
    assert_refused_to_start(world, fake_docker, run, small_state, before, "No space left on device")
    assert PidLock(world.state_dir / ORCHESTRATOR_LOCK).holder() is None


def test_a_state_dir_that_fills_up_during_the_run_leaves_no_torn_journal_line(world, small_state):
    """Room for the lock and one checkpoint: the next checkpoint fails, then the journal's append
    meets ENOSPC mid-line (60 bytes left in its last block)."""
    runs = small_state.path / RUNS_FILE
    line = json.dumps(PREVIOUS)
    runs.write_text(json.dumps({**PREVIOUS, "note": "x" * (4096 - 60 - len(line) - 12)}) + "\n")
    free = os.statvfs(small_state.path).f_bavail - 2
    (small_state.path / "filler").write_bytes(b"\0" * 4096 * free)
    run = world.orchestrate()
    assert run.code == 1 and "Traceback" not in run.stderr
    assert "startup: cannot write run state" in run.stderr and "No space left on device" in run.stderr
    text = runs.read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 1  # the old line whole, no torn fragment
    assert [r["run_id"] for r in read_runs(small_state.path)] == ["yesterday"]
    assert not [p.name for p in small_state.path.iterdir() if p.name.startswith(".")]  # no temp file left
    assert running_bot(world.state_dir) is None


def test_strategy_c_that_cannot_be_written_fails_without_a_partial_plan_and_starts_no_bot(world, tmp_path):
    """The emergency plan's disk is full: exit 1 and the reason; the previous plan intact; no bot."""
    disk = Tmpfs(tmp_path / "emergency-disk")
    try:
        previous = disk.path / "emergency.json"
        previous.write_text('{"previous": true}')
        disk.fill()
        run = world.orchestrate(GAMEPLAN_PATH="", EMERGENCY_GAMEPLAN_PATH=str(previous))
        assert run.code == 1, run.stderr
        assert run.path[-2:] == ["GAMEPLAN_MISSING", "FAILURE"]
        assert f"Strategy C could not be written to {previous}" in run.record["reason"]
        assert "No space left on device" in run.record["reason"] and "Startup failed" in run.alerts[-1]
        assert previous.read_text() == '{"previous": true}' and disk.files().keys() == {"emergency.json"}
        assert run.record["bot_pid"] is None
    finally:
        disk.unmount()


def test_a_lock_that_cannot_be_written_is_not_left_held(tmp_path):
    """PidLock on a full disk: the error is raised, and the lock is not kept by a leaked descriptor."""
    disk = Tmpfs(tmp_path / "disk")
    try:
        disk.fill()
        lock = PidLock(disk.path / ORCHESTRATOR_LOCK)
        with pytest.raises(OSError):
            lock.acquire()
        os.unlink(disk.path / "filler")
        try:
            lock.acquire()  # the same process retries once space is back
        except LockHeld:
            pytest.fail("the failed acquire kept the flock through a leaked file descriptor")
        lock.release()
    finally:
        disk.unmount()
