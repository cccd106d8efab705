"""IBKR's reset windows in New York time: which instants fall in one, when it ends, across DST changes."""

from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from src.core import resetwindows as rw
from src.core.resetwindows import DEFAULT_WINDOWS, ResetWindow, next_window_end, parse_windows, window_at

DAILY, WEEKEND = DEFAULT_WINDOWS


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_defaults_are_ibautomaters_north_america_windows():
    assert [w.describe() for w in DEFAULT_WINDOWS] == ["daily 23:45-00:45", "fri 22:45-sun 02:00"]
    assert parse_windows("daily 23:45-00:45; fri 22:45-sun 02:00") == DEFAULT_WINDOWS


@pytest.mark.parametrize(("now", "window"), [
    # winter (EST, UTC-5): 2026-11-24 is a Tuesday
    (utc(2026, 11, 25, 4, 44), None),  # Tue 23:44
    (utc(2026, 11, 25, 4, 45), DAILY),  # Tue 23:45
    (utc(2026, 11, 25, 5, 0), DAILY),  # Wed 00:00, midnight inside the window
    (utc(2026, 11, 25, 5, 44), DAILY),  # Wed 00:44
    (utc(2026, 11, 25, 5, 45), None),  # Wed 00:45: over
    # summer (EDT, UTC-4): the same wall clock is an hour earlier in UTC
    (utc(2026, 7, 15, 3, 50), DAILY),  # Tue 23:50 EDT
    (utc(2026, 7, 15, 4, 50), None),  # Wed 00:50 EDT (inside in winter, at Tue 23:50 EST)
    # the weekend: Friday 22:45 -> Sunday 02:00, 2026-11-27 is a Friday
    (utc(2026, 11, 28, 3, 44), None),  # Fri 22:44
    (utc(2026, 11, 28, 3, 45), WEEKEND),  # Fri 22:45
    (utc(2026, 11, 28, 4, 50), WEEKEND),  # Fri 23:50: both; the weekend one ends later
    (utc(2026, 11, 28, 17, 0), WEEKEND),  # Sat 12:00
    (utc(2026, 11, 29, 6, 59), WEEKEND),  # Sun 01:59
    (utc(2026, 11, 29, 7, 0), None),  # Sun 02:00
    (utc(2026, 11, 29, 17, 0), None),  # Sun 12:00
    (utc(2026, 11, 30, 4, 50), DAILY),  # Sun 23:50
])
def test_window_at(now, window):
    assert window_at(now) == window


def test_march_dst_change_sunday():
    """2026-03-08 02:00 EST the clocks jump to 03:00 EDT: the weekend window ends at that instant."""
    assert window_at(utc(2026, 3, 8, 6, 59)) == WEEKEND  # 01:59 EST
    assert window_at(utc(2026, 3, 8, 7, 0)) is None  # 03:00 EDT
    ends = next_window_end(utc(2026, 3, 7, 4, 0))  # Fri 23:00 EST
    assert ends == utc(2026, 3, 8, 7, 0) and rw.new_york_time(ends) == "Sun 03:00 New York"
    # the daily window: 04:45 UTC the Thursday before (EST), 03:45 UTC from that Sunday on (EDT)
    assert window_at(utc(2026, 3, 6, 4, 45)) == DAILY and window_at(utc(2026, 3, 6, 3, 45)) is None
    assert window_at(utc(2026, 3, 9, 3, 45)) == DAILY  # Sun 23:45 EDT
    assert window_at(utc(2026, 3, 10, 4, 45)) is None  # Tue 00:45 EDT


def test_november_dst_change_sunday():
    """2026-11-01 02:00 EDT the clocks go back to 01:00 EST: 01:30 happens twice, both in the window."""
    assert window_at(utc(2026, 11, 1, 5, 30)) == WEEKEND  # 01:30 EDT
    assert window_at(utc(2026, 11, 1, 6, 30)) == WEEKEND  # 01:30 EST
    assert window_at(utc(2026, 11, 1, 7, 0)) is None  # 02:00 EST
    assert next_window_end(utc(2026, 11, 1, 3, 50)) == utc(2026, 11, 1, 7, 0)  # Sat 23:50 EDT -> Sun 02:00 EST
    assert window_at(utc(2026, 11, 2, 4, 45)) == DAILY and window_at(utc(2026, 11, 2, 3, 45)) is None  # Sun night EST


@pytest.mark.parametrize(("now", "end"), [
    (utc(2026, 11, 25, 4, 50), utc(2026, 11, 25, 5, 45)),  # Tue 23:50 -> Wed 00:45
    (utc(2026, 11, 28, 4, 50), utc(2026, 11, 29, 7, 0)),  # Fri 23:50: the daily window ends inside the weekend
    (utc(2026, 11, 30, 4, 50), utc(2026, 11, 30, 5, 45)),  # Sun 23:50 -> Mon 00:45
    (utc(2026, 11, 24, 17, 0), None),  # Tue noon: no window
])
def test_next_window_end(now, end):
    assert next_window_end(now) == end


def test_touching_windows_are_one_period_and_any_aware_zone_is_read():
    windows = parse_windows("daily 10:00-11:00; daily 11:00-12:00")
    tokyo = timezone(timedelta(hours=9))
    now = datetime(2026, 11, 25, 0, 30, tzinfo=tokyo)  # = Tue 10:30 New York
    assert window_at(now, windows) == windows[0]
    assert next_window_end(now, windows) == utc(2026, 11, 24, 17, 0)  # 12:00 New York


def test_a_naive_instant_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        window_at(datetime(2026, 11, 25, 4, 50))


@pytest.mark.parametrize(("text", "expected"), [
    ("none", ()),
    (" NONE ", ()),
    ("daily 10:00-11:00", (ResetWindow(rw.EVERY_DAY, time(10), time(11), 0),)),
    ("mon-fri 23:45-00:45", (ResetWindow(frozenset({0, 1, 2, 3, 4}), time(23, 45), time(0, 45), 1),)),
    ("fri-mon 9:00-9:30;", (ResetWindow(frozenset({4, 5, 6, 0}), time(9), time(9, 30), 0),)),  # wraps
    ("Mon,Wed 10:00 - 11:00", (ResetWindow(frozenset({0, 2}), time(10), time(11), 0),)),
    ("saturday 10:00-sunday 09:00", (ResetWindow(frozenset({5}), time(10), time(9), 1),)),
    ("sat 10:00-sat 12:00", (ResetWindow(frozenset({5}), time(10), time(12), 0),)),
    ("fri 22:00-sat 23:00", (ResetWindow(frozenset({4}), time(22), time(23), 1),)),  # 25 hours
])
def test_parse_windows(text, expected):
    assert parse_windows(text) == expected
    assert all(parse_windows(w.describe()) == (w,) for w in expected)  # describe is in the same grammar


@pytest.mark.parametrize(("text", "names"), [
    ("", "empty setting"),
    (" ; ", "empty setting"),
    ("daily 25:00-01:00", "'25:00'"),
    ("daily 23:45-00:4", "'00:4'"),
    ("funday 10:00-11:00", "'funday'"),
    ("daily 10:00-thu 11:00", "'daily'"),
    ("mon-fri 22:45-sun 02:00", "'mon-fri'"),
    ("daily 10:00-10:00", "same time"),
    ("sat 10:00-sat 09:00", "ends before it starts"),
    ("daily10:00-11:00", "'daily10:00-11:00'"),
    ("daily 23:45-00:45; fri 22:45-sun 2:00pm", "'2:00pm'"),
])
def test_parse_errors_name_the_bad_part_in_one_line(text, names):
    with pytest.raises(ValueError) as error:
        parse_windows(text)
    message = str(error.value)
    assert names in message and "\n" not in message


@pytest.mark.parametrize("kwargs", [
    {"days": frozenset()},
    {"days": frozenset({7})},
    {"end": time(9), "end_days_later": 0},
    {"end_days_later": 7},
    {"days": frozenset({0, 1}), "end_days_later": 2},
    {"start": time(10, tzinfo=UTC)},
])
def test_a_window_that_cannot_be_is_refused(kwargs):
    fields = {"days": frozenset({0}), "start": time(10), "end": time(11), "end_days_later": 0, **kwargs}
    with pytest.raises(ValueError):
        ResetWindow(**fields)


# --- next_window: the window now, or the next one to start (what --status shows) ---------------


@pytest.mark.parametrize(("now", "window", "start", "end", "active"), [
    # winter (EST): Tue 2026-11-24 12:00 -> tonight's daily window, 23:45 EST = 04:45 UTC
    (utc(2026, 11, 24, 17, 0), DAILY, utc(2026, 11, 25, 4, 45), utc(2026, 11, 25, 5, 45), False),
    (utc(2026, 11, 25, 5, 0), DAILY, utc(2026, 11, 25, 4, 45), utc(2026, 11, 25, 5, 45), True),  # inside it
    (utc(2026, 11, 25, 5, 45), DAILY, utc(2026, 11, 26, 4, 45), utc(2026, 11, 26, 5, 45), False),  # just over
    # Friday 20:00 EST: the weekend window starts first (22:45), before the daily one (23:45)
    (utc(2026, 11, 28, 1, 0), WEEKEND, utc(2026, 11, 28, 3, 45), utc(2026, 11, 29, 7, 0), False),
    # Saturday noon inside both: the one ending last
    (utc(2026, 11, 28, 17, 0), WEEKEND, utc(2026, 11, 28, 3, 45), utc(2026, 11, 29, 7, 0), True),
    # summer (EDT): the same wall clock, an hour earlier in UTC
    (utc(2026, 7, 15, 16, 0), DAILY, utc(2026, 7, 16, 3, 45), utc(2026, 7, 16, 4, 45), False),
    # March DST (Sun 2026-03-08): the weekend window began in EST and ends Sun 02:00 EST (= 03:00 EDT)
    (utc(2026, 3, 7, 17, 0), WEEKEND, utc(2026, 3, 7, 3, 45), utc(2026, 3, 8, 7, 0), True),
    # ... and that Sunday's daily window is already EDT: 23:45 EDT = 03:45 UTC
    (utc(2026, 3, 8, 16, 0), DAILY, utc(2026, 3, 9, 3, 45), utc(2026, 3, 9, 4, 45), False),
    # November DST (Sun 2026-11-01): the weekend began in EDT, ends Sun 02:00 EST; the daily one is EST
    (utc(2026, 10, 31, 17, 0), WEEKEND, utc(2026, 10, 31, 2, 45), utc(2026, 11, 1, 7, 0), True),
    (utc(2026, 11, 1, 17, 0), DAILY, utc(2026, 11, 2, 4, 45), utc(2026, 11, 2, 5, 45), False),
])
def test_next_window(now, window, start, end, active):
    found = rw.next_window(now)
    assert found == rw.Occurrence(window, start, end, active)


def test_next_window_a_week_away_and_none_without_windows():
    monday = parse_windows("mon 09:00-10:00")
    # Monday 2026-11-23 at 10:30 EST: next Monday
    found = rw.next_window(utc(2026, 11, 23, 15, 30), monday)
    assert found is not None and (found.start, found.active) == (utc(2026, 11, 30, 14, 0), False)
    # Monday 08:00 EST: today's
    found = rw.next_window(utc(2026, 11, 23, 13, 0), monday)
    assert found is not None and found.start == utc(2026, 11, 23, 14, 0)
    assert rw.next_window(utc(2026, 11, 23, 13, 0), ()) is None
    with pytest.raises(ValueError):
        rw.next_window(datetime(2026, 11, 23, 13, 0), monday)
