"""The supervisor's schedule: trading days, the daily cycle, the weekly login and its heads-up, IBC's
auto-restart window. Pure functions on an injected clock; time-machine where `datetime.now()` is read."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from src.core import schedule
from src.core.resetwindows import EVERY_DAY, ResetWindow, window_at
from src.core.schedule import (
    AUTORESTART_AFTER,
    AUTORESTART_BEFORE,
    HEADS_UP_TIME,
    WeeklyTime,
    autorestart_window,
    heads_up_for,
    ibc_time,
    is_trading_day,
    next_daily_cycle,
    next_heads_up,
    next_weekly,
    parse_autorestart_time,
    parse_cycle_time,
    parse_weekly_time,
    trading_date,
)

NY = ZoneInfo("America/New_York")
EIGHT = time(8, 0)


def ny(*args: int) -> datetime:
    """A New York wall-clock instant (fold=0 like the schedule)."""
    return datetime(*args, tzinfo=NY)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- trading days ---------------------------------------------------------------------------------

NYSE_2026 = [date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 4, 3), date(2026, 5, 25),
             date(2026, 6, 19), date(2026, 7, 3), date(2026, 9, 7), date(2026, 11, 26), date(2026, 12, 25)]
NYSE_2027 = [date(2027, 1, 1), date(2027, 1, 18), date(2027, 2, 15), date(2027, 3, 26), date(2027, 5, 31),
             date(2027, 6, 18), date(2027, 7, 5), date(2027, 9, 6), date(2027, 11, 25), date(2027, 12, 24)]


def test_the_nyse_calendar_has_exactly_the_exchange_holidays_of_2026_and_2027():
    """Pins the installed holidays package's NYSE data: every weekday of both years trades except these
    (Independence Day 2026 and Juneteenth/Christmas 2027 observed on the Friday, July 4 2027 on Monday)."""
    for year, expected in ((2026, NYSE_2026), (2027, NYSE_2027)):
        days = [date(year, 1, 1) + timedelta(days=k) for k in range(365)]
        closed = [d for d in days if d.weekday() < 5 and not is_trading_day(d, "XNYS")]
        assert closed == expected


@pytest.mark.parametrize(("day", "trades"), [
    (date(2026, 11, 26), False),  # Thanksgiving
    (date(2026, 11, 27), True),   # the day after: a half day (early close 13:00) is a trading day
    (date(2026, 12, 24), True),   # Christmas Eve: early close, still a trading day
    (date(2026, 12, 25), False),  # Christmas
    (date(2027, 3, 26), False),   # Good Friday 2027 (not a federal holiday)
    (date(2027, 12, 31), True),   # New Year's Day 2028 is a Saturday: NYSE does not close on the Friday before
    (date(2026, 11, 29), False),  # a Sunday
    (date(2026, 11, 28), False),  # a Saturday
    (date(2026, 11, 30), True),   # an ordinary Monday
])
def test_xnys_trading_days(day, trades):
    assert is_trading_day(day, "XNYS") is trades
    assert is_trading_day(day, "xnys") is trades  # any case


def test_always_trades_every_day_weekends_and_holidays_included():
    assert is_trading_day(date(2026, 11, 28), "ALWAYS")  # a Saturday
    assert is_trading_day(date(2026, 12, 25), "always")


def test_an_unknown_calendar_or_a_datetime_is_refused():
    with pytest.raises(ValueError, match=r"^unknown trading calendar 'NYSE' \(expected XNYS or ALWAYS\)$"):
        is_trading_day(date(2026, 11, 30), "NYSE")
    with pytest.raises(TypeError, match="takes a date"):
        is_trading_day(utc(2026, 11, 30, 3), "XNYS")  # 3:00 UTC is still the 29th in New York


# --- the New York date ----------------------------------------------------------------------------

def test_the_trading_date_changes_at_midnight_new_york_not_utc():
    assert trading_date(ny(2026, 11, 25, 23, 59, 59)) == date(2026, 11, 25)
    assert trading_date(ny(2026, 11, 26, 0, 0, 0)) == date(2026, 11, 26)
    assert trading_date(utc(2026, 11, 26, 4, 59, 59)) == date(2026, 11, 25)  # EST: UTC-5
    assert trading_date(utc(2026, 11, 26, 5, 0, 0)) == date(2026, 11, 26)
    assert trading_date(utc(2026, 7, 1, 3, 59, 59)) == date(2026, 6, 30)  # EDT: UTC-4


def test_the_trading_date_has_one_definition_shared_with_the_gameplan_check():
    from src.gameplan import loader

    assert loader.trading_date is schedule.trading_date


@time_machine.travel(utc(2026, 11, 26, 4, 59, 59), tick=False)
def test_the_trading_date_defaults_to_now_in_new_york():
    assert trading_date() == date(2026, 11, 25)
    with time_machine.travel(utc(2026, 11, 26, 5, 0, 0), tick=False):
        assert trading_date() == date(2026, 11, 26)


def test_a_naive_instant_is_refused_everywhere():
    naive = datetime(2026, 11, 25, 12, 0)
    for call in (lambda: trading_date(naive), lambda: next_daily_cycle(naive, EIGHT, "XNYS"),
                 lambda: next_weekly(naive, WeeklyTime(6, EIGHT)), lambda: heads_up_for(naive),
                 lambda: next_heads_up(naive, None)):
        with pytest.raises(ValueError, match="aware"):
            call()


# --- the daily cycle ------------------------------------------------------------------------------

@pytest.mark.parametrize(("now", "expected"), [
    (ny(2026, 11, 25, 7, 59, 59), ny(2026, 11, 25, 8)),  # still ahead today
    (ny(2026, 11, 25, 8, 0, 0), ny(2026, 11, 27, 8)),    # strictly after: not now; Thanksgiving skipped
    (ny(2026, 11, 25, 9, 0), ny(2026, 11, 27, 8)),       # passed today -> the half day after Thanksgiving
    (ny(2026, 11, 27, 9, 0), ny(2026, 11, 30, 8)),       # Friday after the cycle -> Monday
    (ny(2026, 11, 29, 12, 0), ny(2026, 11, 30, 8)),      # a Sunday -> Monday
    (ny(2026, 12, 24, 9, 0), ny(2026, 12, 28, 8)),       # Christmas Friday and the weekend skipped
    (ny(2027, 3, 25, 9, 0), ny(2027, 3, 29, 8)),         # Good Friday 2027 skipped
    (ny(2027, 12, 30, 9, 0), ny(2027, 12, 31, 8)),       # New Year's Eve 2027 trades
])
def test_the_next_daily_cycle_on_the_nyse_calendar(now, expected):
    got = next_daily_cycle(now, EIGHT, "XNYS")
    assert got == expected and got.tzinfo is UTC


def test_always_runs_the_cycle_on_a_saturday():
    assert next_daily_cycle(ny(2026, 11, 27, 9, 0), EIGHT, "ALWAYS") == ny(2026, 11, 28, 8)


def test_a_cycle_time_with_seconds_and_an_instant_in_another_zone():
    tokyo = datetime(2026, 11, 25, 22, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 08:00 New York, the same day
    assert next_daily_cycle(tokyo, time(8, 0, 30), "XNYS") == utc(2026, 11, 25, 13, 0, 30)


@pytest.mark.parametrize(("now", "expected"), [
    # DST starts Sunday 2026-03-08: Friday's 08:00 is EST (13:00 UTC), Monday's EDT (12:00 UTC)
    (ny(2026, 3, 6, 7, 0), utc(2026, 3, 6, 13, 0)),
    (ny(2026, 3, 6, 9, 0), utc(2026, 3, 9, 12, 0)),
    # DST ends Sunday 2026-11-01: Friday's 08:00 is EDT (12:00 UTC), Monday's EST (13:00 UTC)
    (ny(2026, 10, 30, 9, 0), utc(2026, 11, 2, 13, 0)),
    # 2027: DST starts 2027-03-14, ends 2027-11-07
    (ny(2027, 3, 12, 9, 0), utc(2027, 3, 15, 12, 0)),
    (ny(2027, 11, 5, 9, 0), utc(2027, 11, 8, 13, 0)),
])
def test_the_daily_cycle_follows_new_york_across_daylight_saving_changes(now, expected):
    assert next_daily_cycle(now, EIGHT, "XNYS") == expected


@pytest.mark.parametrize("day", [date(2026, 3, 8), date(2027, 3, 14)])
def test_a_time_skipped_by_spring_forward_is_read_with_the_offset_before(day):
    """02:30 does not exist on the March change: fold=0 reads it as 02:30 EST = 07:30 UTC = 03:30 EDT."""
    midnight = datetime.combine(day, time(0, 0), NY)
    got = next_daily_cycle(midnight, time(2, 30), "ALWAYS")
    assert got == datetime.combine(day, time(7, 30), UTC)
    assert got.astimezone(NY).time() == time(3, 30)
    next_day = datetime.combine(day + timedelta(days=1), time(6, 30), UTC)  # 02:30 EDT exists again
    assert next_daily_cycle(got, time(2, 30), "ALWAYS") == next_day


@pytest.mark.parametrize("day", [date(2026, 11, 1), date(2027, 11, 7)])
def test_a_time_repeated_by_fall_back_is_the_first_one_and_runs_once(day):
    """01:30 happens twice on the November change: fold=0 is the first (EDT, 05:30 UTC); between the two,
    the next one is the following day's (EST, 06:30 UTC), never the repeated 01:30."""
    midnight = datetime.combine(day, time(0, 0), NY)
    first = next_daily_cycle(midnight, time(1, 30), "ALWAYS")
    assert first == datetime.combine(day, time(5, 30), UTC)
    between = datetime.combine(day, time(5, 45), UTC)  # 01:45 EDT, before the clocks go back
    assert next_daily_cycle(between, time(1, 30), "ALWAYS") == datetime.combine(day + timedelta(days=1),
                                                                                time(6, 30), UTC)


def test_the_date_change_at_midnight_new_york():
    """A cycle at 00:00: one second before midnight New York it is tonight's; at midnight the next."""
    tuesday_night = ny(2026, 11, 24, 23, 59, 59)
    assert next_daily_cycle(tuesday_night, time(0, 0), "XNYS") == ny(2026, 11, 25, 0, 0)
    assert next_daily_cycle(ny(2026, 11, 25, 0, 0, 0), time(0, 0), "XNYS") == ny(2026, 11, 27, 0, 0)  # not 26th
    assert next_daily_cycle(ny(2026, 11, 25, 23, 59, 59), time(0, 0), "XNYS") == ny(2026, 11, 27, 0, 0)


def test_a_cycle_time_with_a_time_zone_or_an_unknown_calendar_is_refused():
    with pytest.raises(ValueError, match="without a time zone"):
        next_daily_cycle(ny(2026, 11, 25, 7), time(8, 0, tzinfo=UTC), "XNYS")
    with pytest.raises(ValueError, match="unknown trading calendar"):
        next_daily_cycle(ny(2026, 11, 25, 7), EIGHT, "LSE")


@time_machine.travel(utc(2026, 11, 25, 14, 0), tick=False)  # Wednesday 09:00 New York, before Thanksgiving
def test_the_next_cycle_from_the_real_clock_as_the_supervisor_asks_it():
    assert next_daily_cycle(datetime.now(UTC), EIGHT, "XNYS") == ny(2026, 11, 27, 8)
    assert trading_date() == date(2026, 11, 25)


@pytest.mark.parametrize(("text", "expected"), [("08:00", time(8)), ("8:05", time(8, 5)),
                                                ("08:00:30", time(8, 0, 30)), (" 23:59:59 ", time(23, 59, 59))])
def test_cycle_times(text, expected):
    assert parse_cycle_time(text) == expected


@pytest.mark.parametrize("text", ["", "8", "8am", "24:00", "08:60", "08:00:60", "08:00 AM", "08.00"])
def test_bad_cycle_times_are_one_line(text):
    with pytest.raises(ValueError, match=r"^bad time .* \(want HH:MM or HH:MM:SS, 00:00-23:59:59\)$"):
        parse_cycle_time(text)


# --- the weekly login -----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("sun 17:00", WeeklyTime(6, time(17))), ("Sunday 17:00", WeeklyTime(6, time(17))),
    ("  MON   7:05 ", WeeklyTime(0, time(7, 5))), ("friday 00:00", WeeklyTime(4, time(0))),
    ("sun 17:00:30", WeeklyTime(6, time(17, 0, 30))),
])
def test_weekly_times(text, expected):
    weekly = parse_weekly_time(text)
    assert weekly == expected
    assert parse_weekly_time(weekly.describe()) == weekly


@pytest.mark.parametrize(("text", "reason"), [
    ("", "expected 'DAY HH:MM'"),
    ("sun", "expected 'DAY HH:MM'"),
    ("17:00", "expected 'DAY HH:MM'"),
    ("sun 17:00 extra", "expected 'DAY HH:MM'"),
    ("sun,mon 17:00", "expected 'DAY HH:MM'"),
    ("funday 17:00", "unknown day 'funday' (mon, tue, wed, thu, fri, sat, sun)"),
    ("sun 25:00", "bad time '25:00' (want HH:MM or HH:MM:SS, 00:00-23:59:59)"),
    ("sun 17:00:60", "bad time '17:00:60'"),
    ("sun 5pm", "bad time '5pm'"),
])
def test_bad_weekly_times_are_one_line_naming_the_part(text, reason):
    assert_one_line_error(parse_weekly_time, text, f"weekly time {text!r}: ", reason)


def assert_one_line_error(parse, text: str, prefix: str, reason: str) -> None:
    """`parse(text)` raises ValueError: one line, starting with `prefix`, saying `reason`."""
    with pytest.raises(ValueError) as error:
        parse(text)
    message = str(error.value)
    assert message.startswith(prefix) and reason in message and "\n" not in message


def test_a_weekly_time_is_checked_when_built():
    with pytest.raises(ValueError, match="0 \\(Monday\\) to 6 \\(Sunday\\)"):
        WeeklyTime(7, time(17))
    with pytest.raises(ValueError, match="without a time zone"):
        WeeklyTime(6, time(17, tzinfo=UTC))


SUNDAY_FIVE = WeeklyTime(6, time(17))


@pytest.mark.parametrize(("now", "expected"), [
    (ny(2026, 11, 25, 12), ny(2026, 11, 29, 17)),       # Wednesday -> Sunday
    (ny(2026, 11, 29, 16, 59), ny(2026, 11, 29, 17)),   # the same Sunday, before
    (ny(2026, 11, 29, 17), ny(2026, 12, 6, 17)),        # strictly after: a week later
    (ny(2026, 3, 7, 12), utc(2026, 3, 8, 21)),          # the DST Sunday: 17:00 EDT
    (ny(2026, 10, 31, 12), utc(2026, 11, 1, 22)),       # the fall-back Sunday: 17:00 EST
])
def test_the_next_weekly_login(now, expected):
    got = next_weekly(now, SUNDAY_FIVE)
    assert got == expected and got.tzinfo is UTC


def test_a_weekly_login_at_a_skipped_time_is_well_defined():
    assert next_weekly(ny(2026, 3, 7, 12), WeeklyTime(6, time(2, 30))) == utc(2026, 3, 8, 7, 30)


# --- the heads-up ---------------------------------------------------------------------------------

def test_the_heads_up_is_at_six_pm_new_york_the_calendar_day_before_the_login():
    assert HEADS_UP_TIME == time(18, 0)
    assert heads_up_for(ny(2026, 11, 29, 17)) == ny(2026, 11, 28, 18)
    assert heads_up_for(ny(2026, 11, 30, 0, 30)) == ny(2026, 11, 29, 18)  # Monday 00:30: 6.5 h before
    assert heads_up_for(ny(2026, 3, 8, 17)) == utc(2026, 3, 7, 23)  # Saturday 18:00 EST, before the change
    # the login's New York date counts, not its UTC one: Sunday 22:00 EST is Monday in UTC
    assert heads_up_for(utc(2026, 11, 2, 3, 0)) == ny(2026, 10, 31, 18)


@pytest.mark.parametrize(("now", "weekly", "expected"), [
    (ny(2026, 11, 25, 12), None, ny(2026, 11, 29, 18)),                # no weekly login: Sundays 18:00
    (ny(2026, 11, 29, 18), None, ny(2026, 12, 6, 18)),                 # strictly after
    (ny(2026, 11, 27, 12), SUNDAY_FIVE, ny(2026, 11, 28, 18)),         # Saturday 18:00 for Sunday 17:00
    (ny(2026, 11, 28, 19), SUNDAY_FIVE, ny(2026, 12, 5, 18)),          # that one passed: next week's
    (ny(2026, 11, 29, 17, 30), SUNDAY_FIVE, ny(2026, 12, 5, 18)),      # after the login too
    (ny(2026, 11, 29, 12), WeeklyTime(0, time(7, 30)), ny(2026, 11, 29, 18)),  # Monday login: Sunday 18:00
])
def test_the_next_heads_up(now, weekly, expected):
    got = next_heads_up(now, weekly)
    assert got == expected and got.tzinfo is UTC


# --- IBC's auto-restart ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("11:59 PM", time(23, 59)), ("12:00 AM", time(0, 0)), ("12:30 PM", time(12, 30)), ("01:05 AM", time(1, 5)),
    ("9:30 am", time(9, 30)), ("11:59PM", time(23, 59)),                    # 12-hour, leniently
    ("23:59", time(23, 59)), ("0:05", time(0, 5)), ("12:00", time(12, 0)),  # 24-hour
    ("", None), ("   ", None),                                              # empty: no auto-restart
])
def test_auto_restart_times_in_12_and_24_hour_forms(text, expected):
    assert parse_autorestart_time(text) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("13:00 PM", "bad time"), ("00:30 AM", "bad time"), ("11:60 PM", "bad time"),
    ("24:00", "expected hh:mm AM or hh:mm PM"), ("23:60", "expected hh:mm AM or hh:mm PM"),
    ("noon", "expected hh:mm AM or hh:mm PM"), ("11:59 XM", "expected hh:mm AM or hh:mm PM"),
    ("23:59:00", "expected hh:mm AM or hh:mm PM"), ("11:59 P.M.", "expected hh:mm AM or hh:mm PM"),
])
def test_bad_auto_restart_times_are_one_line(text, reason):
    assert_one_line_error(parse_autorestart_time, text, f"auto-restart time {text!r}: ", reason)


def test_ibc_is_handed_the_one_form_it_reads_for_every_minute_of_the_day():
    """IBC parses AutoRestartTime with Java's `hh:mm a` and ignores anything else."""
    assert [ibc_time(t) for t in (time(23, 59), time(0, 5), time(12, 0), time(9, 30))] == \
        ["11:59 PM", "12:05 AM", "12:00 PM", "09:30 AM"]
    for minute in range(24 * 60):
        at = time(minute // 60, minute % 60)
        text = ibc_time(at)
        assert parse_autorestart_time(text) == at
        assert len(text) == 8 and text[2] == ":" and text[5] == " " and text[6:] in ("AM", "PM")


def test_the_auto_restart_window_runs_from_two_minutes_before_to_ten_after():
    assert (AUTORESTART_BEFORE, AUTORESTART_AFTER) == (timedelta(minutes=2), timedelta(minutes=10))
    assert autorestart_window(time(23, 59)) == ResetWindow(EVERY_DAY, time(23, 57), time(0, 9), 1)
    assert autorestart_window(time(0, 1)) == ResetWindow(EVERY_DAY, time(23, 59), time(0, 11), 1)
    assert autorestart_window(time(6, 0)) == ResetWindow(EVERY_DAY, time(5, 58), time(6, 10), 0)
    window = (autorestart_window(time(23, 59)),)
    assert window_at(ny(2026, 11, 25, 23, 56, 59), window) is None
    assert window_at(ny(2026, 11, 25, 23, 57), window) == window[0]
    assert window_at(ny(2026, 11, 26, 0, 8, 59), window) == window[0]
    assert window_at(ny(2026, 11, 26, 0, 9), window) is None
    assert window[0].describe() == "daily 23:57-00:09"


# --- TradingDateClock: the firewall's per-order date, the same answer as trading_date at every instant ---

@pytest.mark.parametrize("around", [
    "2026-12-07T00:00:00-05:00",  # an ordinary New York midnight
    "2026-03-08T00:00:00-05:00",  # the midnight before the spring-forward day
    "2026-03-09T00:00:00-04:00",  # the midnight after it
    "2026-11-01T00:00:00-04:00",  # the midnight before the fall-back day
    "2026-11-02T00:00:00-05:00",  # the midnight after it
])
def test_trading_date_clock_agrees_with_trading_date_across_midnight(around: str) -> None:
    midnight = datetime.fromisoformat(around).timestamp()
    now = [midnight - 3600.0]
    clock = schedule.TradingDateClock(lambda: now[0])
    for offset in (-3600.0, -1.0, -0.001, 0.0, 0.001, 1.0, 3600.0, 23 * 3600.0, 25 * 3600.0):
        now[0] = midnight + offset
        assert clock() == schedule.trading_date(datetime.fromtimestamp(now[0], UTC)), offset


def test_trading_date_clock_follows_a_clock_set_back() -> None:
    midnight = datetime.fromisoformat("2026-12-08T00:00:00-05:00").timestamp()
    now = [midnight + 60.0]
    clock = schedule.TradingDateClock(lambda: now[0])
    assert clock() == date(2026, 12, 8)
    now[0] = midnight - 60.0  # NTP stepped the clock back across midnight
    assert clock() == date(2026, 12, 7)
