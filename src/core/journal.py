"""The run journal: one JSON line per orchestrator run in state/runs.jsonl.

While a run is under way its record is checkpointed atomically to
state/current_run.json at every transition; at the end the record is appended to
runs.jsonl in a single write. A run that died mid-way (power cut, SIGKILL) leaves
its checkpoint behind, and the next run appends it with outcome "interrupted", so
nothing is lost and no torn line is ever written on top of good ones.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from src.core.atomic_file import write_atomic
from src.core.statefiles import CHECKPOINT_FILE, RUNS_FILE, json_objects, open_regular, read_bounded, read_tail

log = logging.getLogger(__name__)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class RunJournal:
    """Accumulates one run's record and persists it."""

    def __init__(self, state_dir: Path, run_id: str | None = None) -> None:
        self.state_dir = state_dir
        self.record: dict[str, Any] = {
            "run_id": run_id or uuid.uuid4().hex[:12],
            "pid": os.getpid(),
            "started_at": utc_now(),
            "ended_at": None,
            "transitions": [],
            "outcome": None,
            "exit_code": None,
            "reason": None,
            "gameplan": {"path": None, "verdict": None, "reason": None, "deployed": None},
            "bot_pid": None,
            "bot_log": None,
            "log_file": None,
        }

    @property
    def run_id(self) -> str:
        return str(self.record["run_id"])

    def transition(self, source: str, target: str, seconds_in_state: float) -> None:
        self.record["transitions"].append(
            {"at": utc_now(), "from": source, "to": target, "seconds": round(seconds_in_state, 3)}
        )
        self.checkpoint()

    def update(self, **fields: Any) -> None:
        self.record.update(fields)

    def checkpoint(self) -> None:
        """Atomically replace the in-progress record (temp file, fsync, rename)."""
        write_atomic(self.state_dir / CHECKPOINT_FILE, json.dumps(self.record, default=str))

    def finish(self, outcome: str, exit_code: int, reason: str | None, *, own_checkpoint: bool = True) -> None:
        """Append the final record; `own_checkpoint=False` for a run that never held the lock."""
        self.record.update(ended_at=utc_now(), outcome=outcome, exit_code=exit_code, reason=reason)
        append_line(self.state_dir / RUNS_FILE, self.record)
        if own_checkpoint:
            (self.state_dir / CHECKPOINT_FILE).unlink(missing_ok=True)


def recover_interrupted(state_dir: Path) -> dict[str, Any] | None:
    """Append a dead run's checkpoint as 'interrupted'. Call only while holding the run lock."""
    path = state_dir / CHECKPOINT_FILE
    if not os.path.lexists(path):
        return None
    try:
        loaded: Any = json.loads(read_bounded(path))
    except (OSError, ValueError):
        loaded = None
    record: dict[str, Any] = loaded if isinstance(loaded, dict) else {"run_id": None, "note": "unreadable checkpoint"}
    transitions = record.get("transitions")
    last = transitions[-1] if isinstance(transitions, list) and transitions else {}
    to = last.get("to") if isinstance(last, dict) else None
    state = to if isinstance(to, str) else "unknown"
    record.update(outcome="interrupted", exit_code=None,
                  reason=f"the run ended abruptly in state {state[:40]} (no exit recorded)")
    append_line(state_dir / RUNS_FILE, record)
    try:  # whatever it was (a file of any shape, a directory, a symlink), it must not block the next run
        path.unlink()
    except IsADirectoryError:
        path.rename(path.with_name(path.name + ".unreadable"))
    except FileNotFoundError:
        pass
    return record


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line with a single write; repair a torn previous tail first.

    A write that fails or is cut short (disk full) is undone, so it never leaves a torn line.
    """
    line = json.dumps(record, default=str, separators=(",", ":")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_regular(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)  # never through a symlink
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line
        data = line.encode()
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (short write)", str(path))
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, size)
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(fd)


def read_runs(state_dir: Path) -> Iterator[dict[str, Any]]:
    """Every complete record in runs.jsonl, oldest first; torn lines are skipped."""
    return read_lines(state_dir / RUNS_FILE)


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The complete JSON-object lines at the end of a journal file (runs.jsonl, supervisor.jsonl), oldest
    first: its last MAX_JOURNAL_TAIL bytes, never through a symlink. A journal that cannot be read at all
    (a directory, a FIFO, a symlink where it belongs) gives nothing, with one warning naming it."""
    try:
        lines = read_tail(path)
    except OSError as exc:
        log.warning("cannot read %s: %s", path, exc.strerror or exc)
        return
    yield from json_objects(lines)
