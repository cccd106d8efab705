"""The authority in force, derived by the firewall itself from the bytes of state/plan_in_force.json.

No record is trusted: the bytes are read (bounded, never blocking, by the project's own loader),
hashed, and validated; today's usable plan gives its authority, a Strategy C plan gives none,
anything else (missing, unreadable, invalid, stale, quarantined) gives none with the reason.
`PlanWatcher.poll` re-reads only when the file changed (its identity and timestamp), so it is
cheap to call several times a second: a new plan is in force within a second.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from src.firewall.rules import Authority
from src.gameplan.loader import GameplanError, check_emergency, check_today, parse_gameplan, read_gameplan_bytes


@dataclass(frozen=True)
class InForce:
    """The firewall's reading of the plan file: the authority (None = none) and why."""

    authority: Authority | None
    reason: str
    sha256: str | None = None


def authority_from(data: bytes, source: Path, today: date) -> InForce:
    """What these exact bytes allow today."""
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        plan = parse_gameplan(data, source)
    except GameplanError as error:
        return InForce(None, f"plan in force not usable ({error.kind}): {error.reason}", sha256)
    try:
        plan = check_today(plan, today)
    except GameplanError as error:
        try:
            check_emergency(plan)
        except GameplanError:
            return InForce(None, f"plan in force not usable ({error.kind}): {error.reason}", sha256)
    limits = plan.hard_limits
    authority = Authority(plan.date, plan.strategy, bool(plan.trading_authorized), frozenset(plan.symbols),
                          frozenset(plan.earnings_blackout), int(limits.max_single_position),
                          int(limits.pdt_trades_remaining), bool(limits.weekly_drawdown_governor_active), sha256)
    what = "trading authorized" if authority.authorized else "NO trading authority"
    return InForce(authority, f"plan {sha256[:12]} for {plan.date}, strategy {plan.strategy}: {what}", sha256)


class PlanWatcher:
    """The plan file, re-read when it changes."""

    def __init__(self, path: Path, today: Callable[[], date]) -> None:
        self.path = path
        self.today = today
        self._stamp: tuple[int, ...] | None = None
        self.current = InForce(None, "no plan read yet")

    def poll(self) -> bool:
        """Re-read the file if it changed; True when the authority in force changed."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
            stamp: tuple[int, ...] = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)
        except OSError as exc:
            stamp = (-1, exc.errno or 0)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        before = self.current
        try:
            self.current = authority_from(read_gameplan_bytes(self.path), self.path, self.today())
        except GameplanError as error:
            self.current = InForce(None, f"plan in force not usable ({error.kind}): {error.reason}")
        except Exception as error:  # fail closed on anything unforeseen
            self.current = InForce(None, f"plan in force not readable: {type(error).__name__}: {error}")
        return self.current != before
