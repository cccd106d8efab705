"""Classifying IBC's log: which login problems allow a restart, which need a human, which wait for later.

The logs are IBC's real texts (tests/fixtures/ibc, each file naming where IBC prints its lines).
"""

from datetime import UTC, datetime

import pytest

from src.orchestration.gateway import ibc
from src.core import resetwindows
from tests.helpers import ibclog

# Each IBC log excerpt and what it must be read as: (kind, IBC's exit status the verdict rests on).
EXPECTED = {
    "login_completed": (ibc.NOTHING_KNOWN, None),
    "twofa_pending": (ibc.TWOFA_PENDING, None),
    "twofa_approved": (ibc.NOTHING_KNOWN, None),
    "twofa_expired": (ibc.TWOFA_TIMED_OUT, None),
    "twofa_relogin": (ibc.TWOFA_PENDING, None),  # IBC logged in again: a new push waits
    "twofa_exit_1111": (ibc.TWOFA_TIMED_OUT, 87),
    "credentials_rejected": (ibc.LOGIN_REJECTED, None),
    "login_failed_cold_restart": (ibc.LOGIN_REJECTED, None),
    "existing_session": (ibc.SESSION_CONFLICT, None),
    "existing_session_primary": (ibc.TWOFA_PENDING, None),
    "too_many_failed_logins": (ibc.LOGIN_LOCKED, None),
    "login_dialog_timeout": (ibc.NO_LOGIN_DIALOG, 88),
    "server_connection_failed": (ibc.SERVER_UNAVAILABLE, None),
    "login_error_server_disconnected": (ibc.SERVER_UNAVAILABLE, None),
    "not_currently_available": (ibc.SERVER_UNAVAILABLE, None),
    "unknown_dialog": (ibc.NOTHING_KNOWN, None),  # named, not judged: LoginDiagnosis.unknown_dialogs
}

TUESDAY_NOON = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 12:00 New York (EST): no reset window
TUESDAY_2350 = datetime(2026, 11, 25, 4, 50, tzinfo=UTC)  # 23:50 New York: the daily reset window


def test_every_fixture_has_an_expected_verdict():
    assert set(EXPECTED) == set(ibclog.fixture_names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ibcs_real_log_excerpts(name):
    verdict = ibc.diagnose(ibclog.load(name))
    assert (verdict.kind, verdict.exit_code) == EXPECTED[name]
    if verdict.kind != ibc.NOTHING_KNOWN:
        assert verdict.evidence in ibclog.load(name) and verdict.evidence in verdict.describe()


def lines_up_to(name: str, text: str) -> str:
    """The fixture's lines up to and including the first one containing `text`: the log at that moment."""
    lines = ibclog.load(name).splitlines(keepends=True)
    end = next(i for i, line in enumerate(lines) if text in line)
    return "".join(lines[:end + 1])


@pytest.mark.parametrize(("name", "upto", "kind"), [
    ("twofa_relogin", "timeout in 5 second", ibc.TWOFA_TIMED_OUT),  # before IBC's own new attempt
    ("existing_session_primary", "event=Opened", ibc.SESSION_CONFLICT),
    ("existing_session_primary", "scenario 5", ibc.NOTHING_KNOWN),  # the other session gives way
    ("existing_session_primary", "event=Closed", ibc.NOTHING_KNOWN),  # a closing dialog is not a new one
    ("login_error_server_disconnected", "Login error message:", ibc.LOGIN_REJECTED),  # until its text says more
    ("twofa_exit_1111", "IBC will exit in", ibc.TWOFA_PENDING),
])
def test_the_log_as_it_stood_at_a_moment(name, upto, kind):
    assert ibc.diagnose(lines_up_to(name, upto)).kind == kind


def test_a_later_login_clears_an_earlier_failure():
    log = ibclog.load("login_failed_cold_restart") + "2026-11-25 08:12:52:001 IBC: Login has completed\n"
    assert ibc.diagnose(log).kind == ibc.NOTHING_KNOWN
    assert ibc.diagnose(log + ibclog.load("twofa_pending")).kind == ibc.TWOFA_PENDING


@pytest.mark.parametrize(("log", "kind"), [
    ("", ibc.NOTHING_KNOWN),
    ("IBC: Login dialog displayed", ibc.NOTHING_KNOWN),  # not an IBC text: the old simulator's
    ("IBC: Second Factor Authentication initiated\nIBC: Login has completed", ibc.NOTHING_KNOWN),
    ("IBC: Login has completed\nIBC: Second Factor Authentication initiated", ibc.TWOFA_PENDING),
    # case, older IBC ("Detected dialog", "Exiting with exit code=") and prefixes
    ("2023-06-08 08:12:40:356 IBC: Detected dialog entitled: Login failed; event=Opened\n"
     "2023-06-08 08:12:40:356 IBC: LOGIN FAILED", ibc.LOGIN_REJECTED),
    ("ib-gateway-1  | 2026-11-25 08:00:04:130 IBC: second factor authentication initiated", ibc.TWOFA_PENDING),
    ("2026-11-25 08:00:04:130 IBC: Second Factor Authentication initiated\r\n", ibc.TWOFA_PENDING),
    ("2026-09-07 07:40:04:078 IBC: Exiting with exit code=1111", ibc.TWOFA_TIMED_OUT),
    ("IBC: IBC closing after Second Factor Authentication dialog timeout", ibc.TWOFA_TIMED_OUT),  # before 3.14
    # window events other than "Opened" show nothing: IBC's handlers act on Opened only
    ("IBC: detected dialog entitled: Unrecognized Username or Password; event=Closed", ibc.NOTHING_KNOWN),
    ("IBC: detected dialog entitled: Unrecognized Username or Password; event=Opened", ibc.LOGIN_REJECTED),
    # a server failure that says "Login failed" is the server, not the credentials
    ("Login failed - Server disconnected, please try again", ibc.SERVER_UNAVAILABLE),
    ("IBC: Login failed: invalid username or password", ibc.LOGIN_REJECTED),
    ("IBC: Existing session detected", ibc.SESSION_CONFLICT),
    # primary: IBC ends the other session (one a killed Gateway left held) and this login goes on
    ("IBC: detected dialog entitled: Existing session detected; event=Opened\n"
     "IBC: End the other session and continue this one", ibc.NOTHING_KNOWN),
    ("IBC: detected dialog entitled: Existing session detected; event=Opened\n"
     "IBC: User must choose whether to continue with this session", ibc.SESSION_CONFLICT),
])
def test_diagnose(log, kind):
    assert ibc.diagnose(log).kind == kind


@pytest.mark.parametrize("marker", ibc.MARKERS, ids=lambda m: m.text)
def test_every_marker_decides_its_own_line(marker):
    """No marker is shadowed by an earlier, wider one."""
    line = f"2026-11-25 08:00:00:000 IBC: {marker.text}"
    assert ibc.marker_for(line) is marker
    assert marker.source


# --- an exited container: diagnosed before it is started again ------------------------------------

@pytest.mark.parametrize(("log", "exit_code", "kind", "ibc_exit"), [
    ("", 87, ibc.TWOFA_TIMED_OUT, 87),
    ("", 1111, ibc.TWOFA_TIMED_OUT, 87),  # IBC's own code, if nothing cut it to 8 bits
    ("", 88, ibc.NO_LOGIN_DIALOG, 88),
    ("", 1112, ibc.NO_LOGIN_DIALOG, 88),
    ("", 1, ibc.NOTHING_KNOWN, None),
    ("", 0, ibc.NOTHING_KNOWN, None),
    ("IBC: Login has completed", 143, ibc.NOTHING_KNOWN, None),
    (ibclog.load("existing_session"), 0, ibc.SESSION_CONFLICT, None),  # "end this session" exits 0
    (ibclog.load("credentials_rejected"), 137, ibc.LOGIN_REJECTED, None),
    (ibclog.load("twofa_pending"), 87, ibc.TWOFA_TIMED_OUT, 87),
])
def test_an_exited_container(log, exit_code, kind, ibc_exit):
    verdict = ibc.diagnose(log, exit_code)
    assert (verdict.kind, verdict.exit_code) == (kind, ibc_exit)


def test_an_exited_container_left_no_2fa_pending_it_is_not_waited_for():
    verdict = ibc.diagnose(ibclog.load("twofa_pending"), 143)
    assert verdict.kind == ibc.TWOFA_TIMED_OUT and verdict.no_retry
    assert "exited (code 143)" in verdict.describe() and "Second Factor Authentication initiated" in verdict.evidence
    assert ibc.diagnose(ibclog.load("twofa_pending")).kind == ibc.TWOFA_PENDING  # still running: waited for


def test_exit_codes_are_named_in_the_advice():
    assert "(IBC exit 87)" in ibc.diagnose("", 87).describe()
    assert "(IBC exit 88)" in ibc.diagnose(ibclog.load("login_dialog_timeout")).describe()
    assert "IBC exit" not in ibc.diagnose(ibclog.load("twofa_expired")).describe()  # IBC did not exit


# --- what the orchestrator may do --------------------------------------------------------------

@pytest.mark.parametrize(("kind", "no_retry", "retry_later"), [
    (ibc.NOTHING_KNOWN, False, False),
    (ibc.TWOFA_PENDING, False, False),  # waited for, never restarted
    (ibc.LOGIN_REJECTED, True, False),
    (ibc.TWOFA_TIMED_OUT, True, False),
    (ibc.SESSION_CONFLICT, True, False),
    (ibc.NO_LOGIN_DIALOG, True, False),
    (ibc.LOGIN_LOCKED, True, False),
    (ibc.LOG_UNREADABLE, True, False),
    (ibc.SERVER_UNAVAILABLE, False, True),
    (ibc.RESET_WINDOW, False, True),
])
def test_what_each_kind_allows(kind, no_retry, retry_later):
    verdict = ibc.LoginDiagnosis(kind, "")
    assert (verdict.no_retry, verdict.retry_later) == (no_retry, retry_later)


def test_an_unreadable_log_fails_closed():
    verdict = ibc.diagnose_unreadable("docker logs: permission denied")
    assert verdict.kind == ibc.LOG_UNREADABLE and verdict.no_retry and not verdict.retry_later
    assert "not restarted blind" in verdict.describe() and "docker logs: permission denied" in verdict.describe()


# --- IBKR's reset windows ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["credentials_rejected", "login_failed_cold_restart", "server_connection_failed",
                                  "login_error_server_disconnected", "not_currently_available"])
def test_a_failed_login_in_a_reset_window_is_retried_after_it_not_blamed_on_the_credentials(name):
    outside = ibc.diagnose(ibclog.load(name), now=TUESDAY_NOON)
    inside = ibc.diagnose(ibclog.load(name), now=TUESDAY_2350)
    assert outside.kind == EXPECTED[name][0]
    assert inside.kind == ibc.RESET_WINDOW and inside.cause == outside.kind
    assert not inside.no_retry and inside.retry_later
    assert inside.retry_after == datetime(2026, 11, 25, 5, 45, tzinfo=UTC)  # 00:45 New York
    assert inside.describe().startswith(
        "IBKR's servers are in their reset window (until Wed 00:45 New York): retry after it [")
    assert inside.evidence == outside.evidence


@pytest.mark.parametrize("name", ["twofa_pending", "twofa_expired", "twofa_exit_1111", "existing_session",
                                  "too_many_failed_logins", "login_dialog_timeout", "login_completed"])
def test_a_reset_window_changes_nothing_else_above_all_not_a_pending_2fa(name):
    assert ibc.diagnose(ibclog.load(name), now=TUESDAY_2350) == ibc.diagnose(ibclog.load(name))


def test_the_weekend_window_says_when_it_is_over():
    friday_night = datetime(2026, 11, 28, 3, 50, tzinfo=UTC)  # Friday 22:50 New York
    verdict = ibc.diagnose(ibclog.load("credentials_rejected"), now=friday_night)
    assert verdict.retry_after == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    assert "(until Sun 02:00 New York)" in verdict.describe()


def test_the_windows_are_the_callers():
    rejected = ibclog.load("credentials_rejected")
    assert ibc.diagnose(rejected, now=TUESDAY_2350, windows=()).kind == ibc.LOGIN_REJECTED
    noon = resetwindows.parse_windows("tue 11:30-12:30")
    assert ibc.diagnose(rejected, now=TUESDAY_NOON, windows=noon).kind == ibc.RESET_WINDOW


def test_a_diagnosis_marked_in_a_reset_window():
    until = datetime(2026, 11, 25, 5, 45, tzinfo=UTC)
    rejected = ibc.LoginDiagnosis(ibc.LOGIN_REJECTED, "IBC: Login failed")
    assert rejected.in_reset_window(until) == ibc.LoginDiagnosis(
        ibc.RESET_WINDOW, "IBC: Login failed", retry_after=until, cause=ibc.LOGIN_REJECTED)
    pending = ibc.LoginDiagnosis(ibc.TWOFA_PENDING, "IBC: Second Factor Authentication initiated")
    assert pending.in_reset_window(until) is pending


def test_a_rejection_logged_inside_a_window_that_has_ended_is_not_blamed_on_the_credentials():
    # IBKR's "Unrecognized Username or Password" at 23:50 New York, read at 01:00 the next night
    in_window = ibclog.load("credentials_rejected").replace("2026-11-25 08:00", "2026-11-24 23:50")
    verdict = ibc.diagnose(in_window, now=datetime(2026, 11, 25, 6, 0, tzinfo=UTC))
    assert verdict.kind == ibc.NOTHING_KNOWN and not verdict.no_retry
    assert "logged inside IBKR's reset window, which has ended" in verdict.describe()
    assert ibc.decide_recovery(verdict, restart_attempted=False, twofa_wait_used=False, twofa_wait=180) == ibc.RESTART
    # the same lines logged outside any window still mean what they say
    assert ibc.diagnose(ibclog.load("credentials_rejected"), now=TUESDAY_NOON).kind == ibc.LOGIN_REJECTED


def test_logged_at_reads_ibc_timestamps_as_new_york_time():
    assert ibc.logged_at("2026-07-01 09:30:00:123 IBC: Login attempt: 1") == datetime(2026, 7, 1, 13, 30, tzinfo=UTC)
    assert ibc.logged_at("IBC: Login attempt: 1") is None
    assert ibc.logged_at("2026-13-01 09:30:00:123 IBC: bad month") is None


def test_a_dialog_no_rule_knows_is_named_and_a_later_login_forgets_it():
    """Image updates bring new windows (passkey 2FA, "re-login is required"): the diagnosis names them instead
    of a silent wait; logged in afterwards, they blocked nothing."""
    from src.orchestration.gateway import ibc

    log = ("2026-12-07 09:00:00:000 IBC: detected dialog entitled: Re-login is required; event=Opened\n"
           "2026-12-07 09:00:01:000 IBC: detected dialog entitled: Login; event=Opened\n")
    found = ibc.diagnose(log)
    assert found.unknown_dialogs == ("Re-login is required",)
    assert "IBC reports a dialog no rule knows: 'Re-login is required'" in found.describe()
    assert ibc.diagnose(log + "2026-12-07 09:00:02:000 IBC: Login has completed\n").unknown_dialogs == ()
    # not logged in with such a window open: no restart (a cold login, on live a push, would meet it again)
    assert ibc.decide_recovery(found, restart_attempted=False, twofa_wait_used=False, twofa_wait=180) == ibc.BLOCKED
