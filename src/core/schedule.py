"""When the supervisor acts: trading days, the daily cycle, the weekly login and its heads-up, and the
reset window around IBC's own daily restart. Pure: the clock is passed in, nothing is read or written.

Aware datetimes in (any zone), aware UTC datetimes out. Every time of day here is New York wall clock
(``resetwindows.NEW_YORK``), turned into an instant on each day with zoneinfo, so daylight saving
changes are honoured. A wall-clock time that does not exist that day (02:30 on the March change,
when clocks jump from 02:00 to 03:00) or exists twice (01:30 on the November change) is resolved
with zoneinfo's ``fold=0``: the offset in force *before* the change. So 02:30 on a spring-forward day
is 03:30 EDT (07:30 UTC), and 01:30 on a fall-back day is the first 01:30, EDT (05:30 UTC).

Trading days (``TRADING_CALENDAR``):

* ``XNYS``: New York Stock Exchange days: Monday to Friday except the exchange's holidays and special
  closures, from the ``holidays`` package's NYSE financial calendar. An early close (half day, e.g.
  the day after Thanksgiving) is a trading day: the cycle runs before the open.
* ``ALWAYS``: every day, weekends included (tests, and markets that trade every day).
"""

from __future__ import annotations

import re
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from src.core.calendars import TRADING_CALENDARS as TRADING_CALENDARS
from src.core.resetwindows import DAY_NAMES, EVERY_DAY, NEW_YORK, ResetWindow, parse_clock, parse_day

#: The weekly heads-up goes at this New York time on the calendar day before the weekly login, so the
#: operator knows a 2FA push is coming (the push itself arrives at WEEKLY_LOGIN_TIME).
HEADS_UP_TIME = time(18, 0)
#: Without WEEKLY_LOGIN_TIME the heads-up goes every Sunday (6) at HEADS_UP_TIME: IBKR invalidates
#: sessions early on Sunday, so the next login after that needs a 2FA approval.
HEADS_UP_DAY_WITHOUT_WEEKLY_LOGIN = 6
#: The reset window around IBC's daily auto-restart (AUTO_RESTART_TIME): from this long before it
#: (IBC starts closing the Gateway shortly before the minute; clocks drift) ...
AUTORESTART_BEFORE = timedelta(minutes=2)
#: ... to this long after it (the Gateway restarts and logs back in with its saved session, which
#: usually takes a minute or two; the margin covers a slow start without hiding a real outage for long).
AUTORESTART_AFTER = timedelta(minutes=10)
# How far the searches look ahead: no exchange closes for more than a few days in a row.
_SEARCH_DAYS = 31


def trading_date(now: datetime | None = None) -> date:
    """Today's date on the exchange's clock (America/New_York), not the host's. The one definition:
    the gameplan check, the bot's trading gate and the schedule all use it (``now`` defaults to now)."""
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(NEW_YORK).date()


class TradingDateClock:
    """`trading_date()` for a hot path (the firewall asks once per order): the date is computed again only
    when the wall clock leaves the New York day it was computed in (midnight passed, or the clock was set
    back), so the answer is the same as `trading_date()`'s at every instant. ``clock`` gives epoch seconds."""

    def __init__(self, clock: Callable[[], float] = _time.time) -> None:
        self._clock = clock
        self._start = self._end = 0.0
        self._date = date.min

    def __call__(self) -> date:
        now = self._clock()
        if not self._start <= now < self._end:
            day = datetime.fromtimestamp(now, NEW_YORK).date()
            # New York's midnight always exists and is unique (its clock changes at 02:00)
            self._start = datetime.combine(day, time.min, NEW_YORK).timestamp()
            self._end = datetime.combine(day + timedelta(days=1), time.min, NEW_YORK).timestamp()
            self._date = day
        return self._date


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("the schedule needs a timezone-aware instant (e.g. datetime.now(UTC))")
    return instant.astimezone(UTC)


def _wall_clock(at: time) -> time:
    if at.tzinfo is not None:
        raise ValueError("schedule times are New York wall clock: give them without a time zone")
    return at.replace(fold=0)


def at_new_york(day: date, at: time) -> datetime:
    """The instant (UTC) of New York wall-clock ``at`` on ``day``. A time skipped or repeated by a
    daylight saving change is read with fold=0 (the offset before the change: see the module docstring)."""
    return datetime.combine(day, _wall_clock(at), NEW_YORK).astimezone(UTC)


# --- trading days ---------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _nyse_closed(year: int) -> frozenset[date]:
    import holidays  # imported when a calendar is first needed: the CLIs that only read settings skip it

    return frozenset(holidays.financial_holidays("NYSE", years=year))


def _calendar(calendar: str) -> str:
    name = calendar.strip().upper()
    if name not in TRADING_CALENDARS:
        raise ValueError(f"unknown trading calendar {calendar!r} (expected {' or '.join(TRADING_CALENDARS)})")
    return name


def is_trading_day(day: date, calendar: str) -> bool:
    """Whether the exchange of ``calendar`` (``XNYS`` or ``ALWAYS``, any case) trades on ``day``
    (a New York date). A half day is a trading day."""
    if isinstance(day, datetime):  # a datetime is a date too: its New York date would be a guess
        raise TypeError("is_trading_day takes a date (trading_date(now) gives today's in New York)")
    if _calendar(calendar) == "ALWAYS":
        return True
    return day.weekday() < 5 and day not in _nyse_closed(day.year)


def next_daily_cycle(now: datetime, at: time, calendar: str) -> datetime:
    """The first instant strictly after ``now`` that is ``at`` (New York wall clock) on a trading day:
    today's if it is still ahead and today trades, else the next trading day's. UTC."""
    now_utc = _utc(now)
    name = _calendar(calendar)
    today = trading_date(now_utc)
    for ahead in range(_SEARCH_DAYS):
        day = today + timedelta(days=ahead)
        instant = at_new_york(day, at)
        if instant > now_utc and is_trading_day(day, name):
            return instant
    raise ValueError(f"no {name} trading day in the {_SEARCH_DAYS} days after {today}")  # pragma: no cover


def parse_cycle_time(text: str) -> time:
    """``DAILY_CYCLE_TIME``: ``HH:MM`` or ``HH:MM:SS``, New York wall clock. ValueError (one line)."""
    return parse_clock(text, seconds=True)


# --- the weekly login and its heads-up ------------------------------------------------------------

@dataclass(frozen=True)
class WeeklyTime:
    """A New York wall-clock time on one weekday each week (``day``: 0 = Monday ... 6 = Sunday)."""

    day: int
    at: time

    def __post_init__(self) -> None:
        if self.day not in EVERY_DAY:
            raise ValueError(f"a weekly time's day is 0 (Monday) to 6 (Sunday), not {self.day!r}")
        _wall_clock(self.at)

    def describe(self) -> str:
        """In the setting's grammar, e.g. ``sun 17:00`` (``parse_weekly_time`` reads it back)."""
        return f"{DAY_NAMES[self.day]} {self.at:{'%H:%M:%S' if self.at.second else '%H:%M'}}"


_WEEKLY = re.compile(r"(?P<day>[A-Za-z]+)\s+(?P<at>\S+)")


def parse_weekly_time(text: str) -> WeeklyTime:
    """``DAY HH:MM`` (or ``DAY HH:MM:SS``), New York wall clock; the day short (``sun``) or full (``sunday``), any case.
    ValueError with a one-line message naming what is wrong."""
    match = _WEEKLY.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"weekly time {text!r}: expected 'DAY HH:MM', e.g. 'sun 17:00'")
    try:
        return WeeklyTime(parse_day(match["day"]), parse_clock(match["at"], seconds=True))
    except ValueError as exc:
        raise ValueError(f"weekly time {text!r}: {exc}") from None


def next_weekly(now: datetime, weekly: WeeklyTime) -> datetime:
    """The first instant strictly after ``now`` at ``weekly`` (New York wall clock). UTC."""
    now_utc = _utc(now)
    today = trading_date(now_utc)
    for ahead in range(8):  # every weekday once, and today's again a week on
        day = today + timedelta(days=ahead)
        if day.weekday() == weekly.day and (instant := at_new_york(day, weekly.at)) > now_utc:
            return instant
    raise AssertionError("unreachable: one of eight consecutive days is the weekday, a week later")  # pragma: no cover


def heads_up_for(login_at: datetime) -> datetime:
    """When the heads-up for the weekly login at ``login_at`` goes: HEADS_UP_TIME (18:00) New York on
    the calendar day before the login's New York date, so 6 to 30 hours before it. UTC."""
    return at_new_york(trading_date(_utc(login_at)) - timedelta(days=1), HEADS_UP_TIME)


def next_heads_up(now: datetime, weekly: WeeklyTime | None) -> datetime:
    """The first heads-up instant strictly after ``now``. With a weekly login: the one for the next
    login whose heads-up is still ahead (between a heads-up and its login, that is the login after).
    Without (``None``): the next Sunday (HEADS_UP_DAY_WITHOUT_WEEKLY_LOGIN) at HEADS_UP_TIME. UTC."""
    now_utc = _utc(now)
    if weekly is None:
        return next_weekly(now_utc, WeeklyTime(HEADS_UP_DAY_WITHOUT_WEEKLY_LOGIN, HEADS_UP_TIME))
    login = next_weekly(now_utc, weekly)
    heads_up = heads_up_for(login)
    return heads_up if heads_up > now_utc else heads_up_for(next_weekly(login, weekly))


# --- IBC's daily auto-restart ---------------------------------------------------------------------

_TWELVE_HOUR = re.compile(r"(\d{1,2}):(\d{2})\s*([AaPp][Mm])")


def parse_autorestart_time(text: str) -> time | None:
    """``AUTO_RESTART_TIME`` as a New York wall-clock time; None when empty (no auto-restart).

    IBC reads the value with Java's ``hh:mm a`` (``11:59 PM``; two-digit hour, upper-case AM/PM) and
    ignores anything else with an error in its log. Accepted here: that form, also with a one-digit
    hour or lower-case am/pm (``9:30 am``), and 24-hour ``HH:MM`` (``23:59``). The orchestrator hands
    Compose the form IBC requires (``ibc_time``), whichever was written. ValueError (one line)."""
    value = text.strip()
    if not value:
        return None
    if (match := _TWELVE_HOUR.fullmatch(value)) is not None:
        hour, minute = int(match[1]), int(match[2])
        if not 1 <= hour <= 12 or minute > 59:
            raise ValueError(f"auto-restart time {text!r}: bad time (want hh:mm AM or PM, 01:00-12:59)")
        return time(hour % 12 + (12 if match[3].upper() == "PM" else 0), minute)
    try:
        return parse_clock(value)
    except ValueError:
        raise ValueError(f"auto-restart time {text!r}: expected hh:mm AM or hh:mm PM (IBC's form, "
                         "e.g. 11:59 PM) or 24-hour HH:MM") from None


def ibc_time(at: time) -> str:
    """A time in the one form IBC accepts for AutoRestartTime: ``hh:mm AM`` / ``hh:mm PM``."""
    return f"{at.hour % 12 or 12:02d}:{at.minute:02d} {'AM' if at.hour < 12 else 'PM'}"


def autorestart_window(at: time) -> ResetWindow:
    """The daily reset window around IBC's auto-restart at ``at`` (New York): from AUTORESTART_BEFORE
    before it to AUTORESTART_AFTER after it, crossing midnight when it has to."""
    anchor = datetime.combine(date(2000, 1, 3), _wall_clock(at))  # a naive day: wall-clock arithmetic only
    start, end = (anchor - AUTORESTART_BEFORE).time(), (anchor + AUTORESTART_AFTER).time()
    return ResetWindow(EVERY_DAY, start, end, 0 if end > start else 1)
