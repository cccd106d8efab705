"""One alert per problem, one more when it clears, never a storm.

`AlertGate` remembers which problems are open (a key each: "gateway-down", "login-budget", ...).
`raise_` says whether an alert should go out (only the first time a key is raised while it is
open); `clear` closes a key and, if it was open, gives the recovery message ("Gateway back after
7 min"). Pure bookkeeping: it sends nothing, the caller does. The open problems are kept in one
JSON file under state/ (written atomically), so a relaunched supervisor does not alert again for
a problem it already alerted; wall-clock time (injected) on purpose, since a problem spans
relaunches and reboots.

A state file that cannot be read is started afresh (logged): an extra alert is better than a
silenced one. One that cannot be written is logged and the gate goes on in memory.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from src.core.atomic_file import write_atomic
from src.core.statefiles import ALERT_GATE_FILE, read_bounded

log = logging.getLogger(__name__)
_VERSION = 1


@dataclass(frozen=True)
class OpenProblem:
    """A problem alerted and not cleared yet."""

    since: float  # Unix time it was first raised
    level: str
    message: str


class AlertGate:
    """Which problems are open, persisted in `path` (e.g. ``state_dir / ALERT_GATE_FILE``)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, OpenProblem] = self._load()

    @classmethod
    def in_state_dir(cls, state_dir: Path, clock: Callable[[], float] = time.time) -> AlertGate:
        return cls(state_dir / ALERT_GATE_FILE, clock)

    def raise_(self, key: str, level: str, message: str) -> bool:
        """True when `key` was not open: alert now. False while it stays open: already alerted."""
        with self._lock:
            if key in self._open:
                return False
            self._open[key] = OpenProblem(self.clock(), level, message)
            self._save()
            return True

    def clear(self, key: str, message_template: str) -> str | None:
        """Close `key`. The recovery message when it was open, else None (nothing to say).

        `message_template` is formatted with ``minutes`` (whole minutes open, rounded) and
        ``duration`` ("45 s", "7 min", "2 h 5 min"), e.g. ``"Gateway back after {minutes} min"``.
        """
        with self._lock:
            problem = self._open.pop(key, None)
            if problem is None:
                return None
            self._save()
        seconds = max(0.0, self.clock() - problem.since)  # a clock set back: 0, not negative
        return message_template.format(minutes=round(seconds / 60), duration=describe_duration(seconds))

    def is_open(self, key: str) -> bool:
        with self._lock:
            return key in self._open

    def open_problems(self) -> Mapping[str, OpenProblem]:
        """A copy of the open problems, by key."""
        with self._lock:
            return dict(self._open)

    def _load(self) -> dict[str, OpenProblem]:
        try:
            text = read_bounded(self.path).decode("utf-8", "replace")  # never through a symlink
        except FileNotFoundError:
            return {}
        except ValueError as exc:  # too large
            log.warning("alert gate: %s is unreadable (%s): starting with no open problem", self.path, exc)
            return {}
        except OSError as exc:
            log.warning("alert gate: cannot read %s (%s): starting with no open problem", self.path, exc)
            return {}
        try:
            return _parse(json.loads(text))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("alert gate: %s is unreadable (%s): starting with no open problem", self.path, exc)
            return {}

    def _save(self) -> None:
        state = {"version": _VERSION, "open": {key: asdict(p) for key, p in self._open.items()}}
        try:
            write_atomic(self.path, json.dumps(state, indent=1, sort_keys=True) + "\n")
        except OSError as exc:
            log.warning("alert gate: cannot write %s (%s): open problems kept in memory only", self.path, exc)


def _parse(state: Any) -> dict[str, OpenProblem]:
    if not isinstance(state, dict) or state.get("version") != _VERSION or not isinstance(state.get("open"), dict):
        raise ValueError(f"not a version {_VERSION} alert gate record")
    problems = {}
    for key, entry in state["open"].items():
        since = float(entry["since"])
        if not math.isfinite(since):
            raise ValueError(f"problem {key!r}: bad time {entry['since']!r}")
        problems[str(key)] = OpenProblem(since, str(entry["level"]), str(entry["message"]))
    return problems


def describe_duration(seconds: float) -> str:
    """'45 s', '7 min', '2 h 5 min', '3 d 4 h': short, and never more precise than useful."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
