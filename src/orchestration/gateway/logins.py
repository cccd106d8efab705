"""The Gateway login budget: at most N IBKR logins caused by the orchestrator in any rolling 24 h.

Creating, starting or restarting the Gateway container is a fresh IBKR login, and on a live
account a 2FA push to the operator's phone. A supervisor (systemd's Restart=, a Task Scheduler
repetition) can relaunch a failing orchestrator for ever; this budget, kept in `state/`, is what
no supervisor can defeat: every login the orchestrator causes is recorded before it is caused,
and with the budget spent the orchestrator touches nothing.

The record is one JSON line per login (`at`, Unix time; `action`; `run_id`) plus, once the budget
is spent, one `alerted` line, so the operator is alerted once per exhaustion, not once per
relaunch. Wall-clock time on purpose: the window spans processes and reboots. A line that cannot
be read counts as a login now (fail closed: a torn record must not grant a login).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from src.core.journal import append_line
from src.core.resetwindows import DAY_NAMES, NEW_YORK
from src.core.statefiles import LOGINS_FILE, read_tail

WINDOW = 24 * 3600.0


@dataclass(frozen=True)
class BudgetView:
    """What the budget says right now."""

    limit: int
    used: int
    frees_at: float | None  # Unix time the oldest counted login leaves the window (None: nothing used)
    alerted_for: float | None  # the frees_at the last exhaustion alert was sent for (None: one that never frees)
    alerted: bool = False  # an exhaustion alert was sent at all

    def already_alerted(self) -> bool:
        """This very exhaustion (the same moment it frees up) was alerted already."""
        return self.alerted and self.alerted_for == self.frees_at

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)

    def describe(self) -> str:
        when = f"; the next frees up at {_iso(self.frees_at)}" if self.frees_at and self.left == 0 else ""
        return f"{self.left} of {self.limit} Gateway logins left in the last 24 h{when}"


class LoginBudget:
    """Counts and records Gateway logins in `state_dir`/LOGINS_FILE."""

    def __init__(self, state_dir: Path, limit: int, clock: Callable[[], float] = time.time,
                 file: str = LOGINS_FILE) -> None:
        self.path = state_dir / file  # LOGINS_FILE; SOFT_RESTARTS_FILE counts IBC's soft restarts the same way
        self.limit = limit
        self.clock = clock

    def view(self) -> BudgetView:
        """The logins inside the rolling window; OSError if the record cannot be read (a symlink, a
        directory: never followed, never guessed). Fails closed: every record that is not a login with a
        finite time (NaN, infinity, a string, a boolean, garbage, a torn line) counts as a login now, and a
        line holding several records counts each."""
        now = self.clock()
        logins: list[float] = []
        alerted, any_alert = None, False
        for line in read_tail(self.path):
            for entry in _records(line):
                at = _time(entry.get("at")) if isinstance(entry, dict) else None
                if at is None or not isinstance(entry, dict):
                    logins.append(now)  # unreadable: counts, and for a whole window
                elif entry.get("action") == "alerted":
                    alerted, any_alert = _time(entry.get("frees_at")), True
                elif at > now - WINDOW:
                    logins.append(min(at, now))
        logins.sort()
        # the login whose expiry brings `used` back under the limit
        over = len(logins) - self.limit
        frees_at = logins[over] + WINDOW if over >= 0 and logins else (logins[0] + WINDOW if logins else None)
        return BudgetView(self.limit, len(logins), frees_at, alerted, any_alert)

    def spend(self, action: str, run_id: str) -> None:
        """Record one login about to be caused (before it is caused: a crash right after still counts)."""
        self._append({"at": self.clock(), "action": action, "run_id": run_id})

    def mark_alerted(self, view: BudgetView) -> None:
        """Remember that this exhaustion (identified by when it frees up) was alerted."""
        self._append({"at": self.clock(), "action": "alerted", "frees_at": view.frees_at})

    def _append(self, entry: dict[str, object]) -> None:
        append_line(self.path, entry)  # one write, never through a symlink, a torn tail repaired first


def _records(line: bytes) -> list[object]:
    """Every JSON value on one line, in order; what cannot be read is one None (a login, failing closed)."""
    text = line.decode("utf-8", "replace").strip()
    decoder, at = json.JSONDecoder(), 0
    found: list[object] = []
    while at < len(text):
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            found.append(None)
            break
        found.append(value)
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return found


def _time(value: object) -> float | None:
    """A Unix time written by `spend`: a finite int or float (not a bool, not a string); else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _iso(at: float) -> str:
    """'Wed 2026-12-02 10:05 New York (15:05 UTC)': the operator's schedule is New York time."""
    instant = datetime.fromtimestamp(at, UTC)
    local = instant.astimezone(NEW_YORK)
    return f"{DAY_NAMES[local.weekday()].capitalize()} {local:%Y-%m-%d %H:%M} New York ({instant:%H:%M} UTC)"
