"""The firewall's journal: one JSON line per order decision under STATE_DIR.

A line is written before an allowed order is forwarded: an order that cannot be recorded is
refused (nothing reaches the Gateway without a record). `read_today` replays today's allowed
orders at start-up, so a restarted firewall still counts today's day trades.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from src.core.statefiles import json_objects, read_tail

MAX_REPLAY_BYTES = 4 * 1024 * 1024  # today's decisions are at the end of the file


class DecisionLog:
    """Appends decision lines to `path` (created 0600, never through a symlink)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
            self._fd = os.open(self.path, flags, 0o600)
        return self._fd

    def write(self, record: dict[str, Any]) -> None:
        """One line, the time first; raises OSError when it cannot be written."""
        # orjson: the line is written before the order is forwarded, and the stdlib's encoder cost the order
        # round trip about 14 us of its 200 us budget (docs/BENCHMARKS.md, "Order firewall"); the time is put in
        # front of the encoded record, not merged into a copy of it
        try:
            body = orjson.dumps(record)
        except orjson.JSONEncodeError as exc:  # a value JSON cannot hold (an integer beyond 64 bits): no record
            raise OSError(f"the decision cannot be written as JSON ({exc})") from None
        data = b'{"at":%.3f%s\n' % (time.time(), b"," + body[1:] if len(body) > 2 else b"}")
        try:
            written = os.write(self._open(), data)
        except OSError:
            self.close()
            raise
        if written != len(data):
            raise OSError(f"short write to {self.path} ({written} of {len(data)} bytes)")

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def read_recent(path: Path, max_bytes: int = MAX_REPLAY_BYTES) -> Iterator[dict[str, Any]]:
    """The decisions in the last `max_bytes` of the file, oldest first (unreadable lines skipped; a file that
    cannot be read at all, a symlink or a directory included, gives none)."""
    try:
        lines = read_tail(path, max_bytes)
    except OSError:
        return
    yield from json_objects(lines)
