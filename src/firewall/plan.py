"""The authority in force, derived by the firewall itself from the bytes of state/plan_in_force.json.

No record is trusted: the bytes are read (bounded, never blocking, by the project's own loader),
hashed, held to the sha256 the orchestrator wrote beside them when it validated them
(state/plan_in_force.sha256: bytes changed since authorize nothing), and validated again; today's
usable plan gives its authority, a Strategy C plan gives none, anything else (missing, unreadable,
invalid, stale, quarantined) gives none with the reason.
`PlanWatcher.poll` re-reads only when either file changed (its identity and timestamp), so it is
cheap to call several times a second: a new plan is in force within a second.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from src.core.statefiles import PLAN_FILE, PLAN_SHA256_FILE, read_bounded
from src.firewall.rules import Authority
from src.gameplan.loader import GameplanError, check_in_force, parse_gameplan, read_gameplan_bytes, trading_date
from src.gameplan.schema import Gameplan


@dataclass(frozen=True)
class InForce:
    """The firewall's reading of the plan file: the authority (None = none) and why."""

    authority: Authority | None
    reason: str
    sha256: str | None = None


def authority_of(plan: Gameplan, sha256: str) -> Authority:
    """What a validated plan allows (the firewall's and the runtime's early check's, one definition)."""
    limits = plan.hard_limits
    return Authority(plan.date, plan.strategy, bool(plan.trading_authorized), frozenset(plan.symbols),
                     frozenset(plan.earnings_blackout), int(limits.max_single_position),
                     int(limits.pdt_trades_remaining), bool(limits.weekly_drawdown_governor_active), sha256)


def authority_from(data: bytes, source: Path, today: date, validated: str | None = None) -> InForce:
    """What these exact bytes allow today: nothing unless they hash to `validated`, the sha256 the
    orchestrator wrote beside them."""
    sha256 = hashlib.sha256(data).hexdigest()
    if validated != sha256:
        said = f"the validated sha256 is {validated[:12]}" if validated else "no validated sha256 is beside it"
        return InForce(None, f"plan in force {sha256[:12]} is not the plan the orchestrator validated ({said})",
                       sha256)
    try:
        plan = check_in_force(parse_gameplan(data, source), today)
    except GameplanError as error:
        return InForce(None, f"plan in force not usable ({error.kind}): {error.reason}", sha256)
    authority = authority_of(plan, sha256)
    what = "trading authorized" if authority.authorized else "NO trading authority"
    return InForce(authority, f"plan {sha256[:12]} for {plan.date}, strategy {plan.strategy}: {what}", sha256)


class PlanWatcher:
    """The plan file, re-read when it changes."""

    def __init__(self, path: Path, today: Callable[[], date]) -> None:
        self.path = path
        self.sha_path = path.with_name(PLAN_SHA256_FILE)
        self._paths = (str(path), str(self.sha_path))  # stat-ed on every order: no Path conversion there
        self.today = today
        self._stamp: tuple[int, ...] | None = None
        self._sha_stamp: tuple[int, ...] | None = None  # the sidecar's part of it
        self.notices = False  # True while a directory watch reports every change: the order path looks at nothing
        self.reads = 0  # times the files were read again (they had changed)
        self.current = InForce(None, "no plan read yet")

    def poll(self, *, sha256_only: bool = False) -> bool:
        """Re-read the files if they changed; True when the authority in force changed.

        ``sha256_only`` (the order path's look): nothing at all while `notices` is True (a directory watch
        reads every change as it happens), else only the sidecar is stat-ed, one system call instead of two.
        A hand-over always replaces the plan, then its sha256 (`handoff.snapshot_plan`), so a new plan is
        seen by the next order once it is complete; a plan changed any other way, its sidecar untouched, is
        seen by the next full poll (the firewall's loop, every PLAN_POLL s), and refused then: its bytes no
        longer hash to the validated sha256. Until then orders are judged under the plan last validated."""
        if sha256_only and self.notices and self._stamp is not None:
            return False  # a change would have been noticed, and read then (`src.firewall.dirwatch`)
        sha_stamp = _stamp(self._paths[1])
        if sha256_only and sha_stamp == self._sha_stamp:
            return False
        stamp = _stamp(self._paths[0]) + sha_stamp
        if stamp == self._stamp:
            return False
        self._stamp, self._sha_stamp = stamp, sha_stamp
        self.reads += 1
        before = self.current
        try:
            self.current = authority_from(read_gameplan_bytes(self.path), self.path, self.today(),
                                          read_validated_sha256(self.sha_path))
        except GameplanError as error:
            self.current = InForce(None, f"plan in force not usable ({error.kind}): {error.reason}")
        except Exception as error:  # fail closed on anything unforeseen
            self.current = InForce(None, f"plan in force not readable: {type(error).__name__}: {error}")
        return self.current != before


def plan_in_force_now(state_dir: Path, today: Callable[[], date] = trading_date) -> InForce:
    """The plan in force in `state_dir` as the firewall reads it, once (for --status and an adoption)."""
    watcher = PlanWatcher(state_dir / PLAN_FILE, today)
    watcher.poll()
    return watcher.current


def _stamp(path: str) -> tuple[int, ...]:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError as exc:
        return (-1, exc.errno or 0, 0, 0, 0)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode)


def read_validated_sha256(path: Path) -> str | None:
    """The sha256 the orchestrator wrote beside the plan in force (64 hex digits), or None."""
    try:
        text = read_bounded(path, 100).decode("ascii", "replace").strip()  # never through a symlink
    except (OSError, ValueError):
        return None
    return text if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else None
