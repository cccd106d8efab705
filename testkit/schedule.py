"""Settings that keep IBKR's calendar out of a test's (or a benchmark's) outcome.

IBKR's reset windows (IBKR_RESET_WINDOWS, and IBC's AUTO_RESTART_TIME) change what a failed login
means and what the supervisor does about an outage; a run that uses the defaults would pass or
fail by the hour it runs at (the daily window is 23:45-00:45 New York). Tests and the bench start
from `off_calendar()`; a test of the windows sets its own (`window_around_now()`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from src.core.resetwindows import NEW_YORK


def window_around_now(minutes: int = 5, now: datetime | None = None) -> str:
    """A daily IBKR_RESET_WINDOWS entry (New York) that began a minute ago and lasts `minutes` more:
    the supervisor then expects an outage now and does not act on it."""
    at = (now or datetime.now(NEW_YORK)).astimezone(NEW_YORK)
    start, end = at - timedelta(minutes=1), at + timedelta(minutes=minutes)
    return f"daily {start:%H:%M}-{end:%H:%M}"


def off_calendar(now: datetime | None = None) -> dict[str, str]:
    """No reset windows, and IBC's daily auto-restart twelve hours from `now` (New York, IBC's form)."""
    later = (now or datetime.now(NEW_YORK)).astimezone(NEW_YORK) + timedelta(hours=12)
    return {"IBKR_RESET_WINDOWS": "none", "AUTO_RESTART_TIME": f"{later:%I:%M %p}"}
