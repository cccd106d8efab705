"""IBKR's server reset windows, in New York wall-clock time, and whether an instant falls in one.

IBKR resets its servers every night and over the weekend; a login in those windows may fail
("Unrecognized Username or Password" for good credentials) or hang, and that is not a reason
to tell the operator the credentials are wrong. The defaults are QuantConnect IBAutomater's
North America windows, margins included: every day 23:45-00:45 New York, and Friday 22:45 to
Sunday 02:00 New York. Pure: the clock is passed in; times are converted with zoneinfo
(America/New_York), so daylight saving changes are honoured.

Setting grammar (``IBKR_RESET_WINDOWS``), windows separated by ``;``, case-insensitive:

* ``daily HH:MM-HH:MM`` every day; an end at or before the start is on the next day;
* ``DAYS HH:MM-HH:MM`` starting on the given weekdays: ``mon``, ``mon,wed`` or ``mon-fri``;
* ``DAY HH:MM-DAY HH:MM`` one span from a weekday to a later one, e.g. ``fri 22:45-sun 02:00``;
* ``none`` alone: no windows at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EVERY_DAY = frozenset(range(7))


def _implied_days_later(start: time, end: time) -> int:
    """0 when the end is later the same day, 1 when it crosses midnight."""
    return 0 if end > start else 1


@dataclass(frozen=True)
class ResetWindow:
    """A window starting at ``start`` on each weekday in ``days`` (0 = Monday) and ending at ``end``
    ``end_days_later`` days after its start day; both times are New York wall clock."""

    days: frozenset[int]
    start: time
    end: time
    end_days_later: int

    def __post_init__(self) -> None:
        if not self.days or not self.days <= EVERY_DAY:
            raise ValueError(f"reset window days must be weekdays 0-6, not {sorted(self.days)}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("reset window times are New York wall clock: give them without a time zone")
        if not 0 <= self.end_days_later <= 6:
            raise ValueError("a reset window must end within 6 days of its start day")
        if self.end_days_later == 0 and self.end <= self.start:
            raise ValueError("a reset window that ends on its start day must end after it starts")
        if self.end_days_later != _implied_days_later(self.start, self.end) and len(self.days) != 1:
            raise ValueError("a reset window that ends on a later day must start on one weekday")

    def occurrence_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        """(start, end) in UTC of this window's occurrence that contains the instant ``now``, if any."""
        now_utc = _utc(now)
        today = now_utc.astimezone(NEW_YORK).date()
        for back in range(self.end_days_later + 1):
            day = today - timedelta(days=back)
            if day.weekday() in self.days:
                start, end = self._bounds(day)
                if start <= now_utc < end:
                    return start, end
        return None

    def _bounds(self, day: date) -> tuple[datetime, datetime]:
        # Compared in UTC: aware datetimes sharing one tzinfo compare by wall clock, not by instant.
        start = datetime.combine(day, self.start, NEW_YORK).astimezone(UTC)
        end_day = day + timedelta(days=self.end_days_later)
        return start, datetime.combine(end_day, self.end, NEW_YORK).astimezone(UTC)

    def describe(self) -> str:
        """The window in the setting grammar (``parse_windows`` reads it back)."""
        start, end = self.start.strftime("%H:%M"), self.end.strftime("%H:%M")
        if self.end_days_later == _implied_days_later(self.start, self.end):
            days = "daily" if self.days == EVERY_DAY else ",".join(DAY_NAMES[d] for d in sorted(self.days))
            return f"{days} {start}-{end}"
        (first,) = self.days
        return f"{DAY_NAMES[first]} {start}-{DAY_NAMES[(first + self.end_days_later) % 7]} {end}"


#: QuantConnect IBAutomater's North America windows (margins included)
DEFAULT_WINDOWS: tuple[ResetWindow, ...] = (
    ResetWindow(EVERY_DAY, time(23, 45), time(0, 45), 1),
    ResetWindow(frozenset({4}), time(22, 45), time(2, 0), 2),  # Friday 22:45 -> Sunday 02:00
)


def window_at(now: datetime, windows: Sequence[ResetWindow] = DEFAULT_WINDOWS) -> ResetWindow | None:
    """The window the instant ``now`` falls in (the one ending last if several overlap), or None."""
    active = [(found[1], w) for w in windows if (found := w.occurrence_at(now)) is not None]
    return max(active, key=lambda pair: pair[0])[1] if active else None


def next_window_end(now: datetime, windows: Sequence[ResetWindow] = DEFAULT_WINDOWS) -> datetime | None:
    """When the reset period around ``now`` is over (UTC), following windows that overlap or touch,
    so "retry after" never points into another window; None if ``now`` is in no window."""
    end: datetime | None = None
    at = _utc(now)
    for _ in range(len(windows) * 8 + 1):  # each step moves past one occurrence: this ends
        ends = [found[1] for w in windows if (found := w.occurrence_at(at)) is not None]
        if not ends:
            return end
        end = at = max(ends)
    return end


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a window: its UTC bounds, and whether the instant asked about is inside it."""

    window: ResetWindow
    start: datetime
    end: datetime
    active: bool


def next_window(now: datetime, windows: Sequence[ResetWindow] = DEFAULT_WINDOWS) -> Occurrence | None:
    """The window ``now`` is in (the one ending last if several overlap), else the next one to start
    (the earliest start after ``now``); None when there are no windows. Bounds in UTC, computed from
    New York wall clock on each day, so daylight saving changes are honoured."""
    now_utc = _utc(now)
    active = [Occurrence(w, *found, True) for w in windows if (found := w.occurrence_at(now_utc)) is not None]
    if active:
        return max(active, key=lambda o: o.end)
    today = now_utc.astimezone(NEW_YORK).date()
    upcoming: list[Occurrence] = []
    for window in windows:
        for ahead in range(8):  # every weekday once, and today's again a week on
            day = today + timedelta(days=ahead)
            if day.weekday() in window.days:
                start, end = window._bounds(day)
                if start > now_utc:
                    upcoming.append(Occurrence(window, start, end, False))
                    break  # the later days of this window start later still
    return min(upcoming, key=lambda o: o.start) if upcoming else None


def new_york_time(instant: datetime) -> str:
    """'Sun 02:00 New York' for an aware instant (English day names whatever the locale)."""
    local = instant.astimezone(NEW_YORK)
    return f"{DAY_NAMES[local.weekday()].capitalize()} {local:%H:%M} New York"


def parse_windows(text: str) -> tuple[ResetWindow, ...]:
    """Read a setting such as ``daily 23:45-00:45; fri 22:45-sun 02:00`` (see the module docstring).

    Raises ValueError with a one-line message naming the part it cannot read. An empty setting is
    an error, not "no windows" (say ``none``): leaving the setting unset is how to get the defaults.
    """
    if text.strip().lower() == "none":
        return ()
    items = [item.strip() for item in text.split(";") if item.strip()]
    if not items:
        raise ValueError("reset windows: empty setting (leave it unset for the defaults, or say 'none')")
    return tuple(_parse_window(item) for item in items)


_WINDOW = re.compile(r"(?P<days>\S+)\s+(?P<start>\S+?)\s*-\s*(?:(?P<end_day>[a-z]+)\s+)?(?P<end>\S+)")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")  # HH:MM, or HH:MM:SS where seconds are accepted


def _parse_window(item: str) -> ResetWindow:
    match = _WINDOW.fullmatch(item.lower())
    if match is None:
        raise ValueError(f"reset window {item!r}: expected 'daily HH:MM-HH:MM', 'DAYS HH:MM-HH:MM' "
                         "or 'DAY HH:MM-DAY HH:MM'")
    days = _parse_days(match["days"], item)
    start, end = _parse_time(match["start"], item), _parse_time(match["end"], item)
    if match["end_day"] is None:
        if start == end:
            raise ValueError(f"reset window {item!r}: starts and ends at the same time")
        return ResetWindow(days, start, end, _implied_days_later(start, end))
    if len(days) != 1:
        raise ValueError(f"reset window {item!r}: a window ending on another day starts on one day, "
                         f"not {match['days']!r}")
    (first,) = days
    later = (_parse_day(match["end_day"], item) - first) % 7
    if later == 0 and end <= start:
        raise ValueError(f"reset window {item!r}: ends before it starts (a window lasts less than a week)")
    return ResetWindow(days, start, end, later)


def _parse_days(text: str, item: str) -> frozenset[int]:
    if text == "daily":
        return EVERY_DAY
    days: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.partition("-")
        start = _parse_day(first, item)
        stop = _parse_day(last, item) if dash else start
        days.update((start + k) % 7 for k in range((stop - start) % 7 + 1))  # fri-mon wraps the week
    return frozenset(days)


def parse_day(text: str) -> int:
    """A weekday, 0 = Monday, from its English name, short (``mon``) or full (``monday``), any case.
    ValueError (one line) otherwise. Shared by every setting that names a day."""
    lowered = text.strip().lower()
    for names in (DAY_NAMES, FULL_DAY_NAMES):
        if lowered in names:
            return names.index(lowered)
    raise ValueError(f"unknown day {text!r} ({', '.join(DAY_NAMES)})")


def parse_clock(text: str, *, seconds: bool = False) -> time:
    """A wall-clock time ``HH:MM`` (00:00-23:59), or also ``HH:MM:SS`` with ``seconds``; no time zone.
    ValueError (one line) otherwise. Shared by every setting that names a time of day."""
    match = _TIME.fullmatch(text.strip())
    if (match is None or (match[3] is not None and not seconds)
            or int(match[1]) > 23 or int(match[2]) > 59 or int(match[3] or 0) > 59):
        want = "HH:MM or HH:MM:SS, 00:00-23:59:59" if seconds else "HH:MM, 00:00-23:59"
        raise ValueError(f"bad time {text!r} (want {want})")
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


def _parse_day(text: str, item: str) -> int:
    try:
        return parse_day(text)
    except ValueError:
        raise ValueError(f"reset window {item!r}: unknown day {text!r} "
                         "(mon, tue, wed, thu, fri, sat, sun or daily)") from None


def _parse_time(text: str, item: str) -> time:
    try:
        return parse_clock(text)
    except ValueError as exc:
        raise ValueError(f"reset window {item!r}: {exc}") from None


def _utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("reset windows need a timezone-aware instant (e.g. datetime.now(UTC))")
    return instant.astimezone(UTC)
