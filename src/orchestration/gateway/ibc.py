"""Reading IBC's log: why a Gateway is not logged in, before anything restarts it.

IB Gateway images run the Gateway under IBC, which logs its login progress. A
blind restart while a second-factor push waits on the operator's phone sends a
second push (stacked pushes get rejected), and repeated failed logins can lock
the account. So before the one automatic restart (or before starting a stopped
container) the orchestrator reads the container's log *since its current start*
and classifies it here. Pure functions: no Docker, no I/O, the clock passed in.

The markers are IBC's own texts, from IbcAlpha/IBC 3.24.1 (the version in
gnzsnz/ib-gateway-docker ``stable``), each with the place IBC prints it
(``src/ibcalpha/ibc/`` unless a path is given). IBC prints
``yyyy-MM-dd HH:mm:ss:SSS IBC: <message>`` (Utils.java:35, :160) to stdout,
which is the container's log; its wrappers and error banners print raw lines.
Matching ignores case and anything before ``IBC:``, so older IBC versions
("Detected dialog ...") and ``docker compose logs`` prefixes read the same.
``tests/fixtures/ibc/`` holds log excerpts made of these texts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from src.core.resetwindows import DEFAULT_WINDOWS, NEW_YORK, ResetWindow, new_york_time, next_window_end

EXIT_TWOFA_TIMEOUT = 87  # IBC's 1111 (ErrorCodes.java:34) as an 8-bit exit status (ibcstart.sh:107)
EXIT_NO_LOGIN_DIALOG = 88  # IBC's 1112 (ErrorCodes.java:35) as an 8-bit exit status (ibcstart.sh:111)

# Diagnosis kinds
NOTHING_KNOWN = "nothing_known"  # restart is reasonable
TWOFA_PENDING = "twofa_pending"  # wait for the operator: never restart
LOGIN_REJECTED = "login_rejected"
TWOFA_TIMED_OUT = "twofa_timeout"
SESSION_CONFLICT = "existing_session"
NO_LOGIN_DIALOG = "login_dialog_missing"
LOGIN_LOCKED = "too_many_failed_logins"
SERVER_UNAVAILABLE = "server_unavailable"
LOG_UNREADABLE = "log_unreadable"
RESET_WINDOW = "reset_window"

#: kinds where a restart cannot help and may lock the account or stack a push: a human must act
NO_RETRY = frozenset({LOGIN_REJECTED, TWOFA_TIMED_OUT, SESSION_CONFLICT, NO_LOGIN_DIALOG, LOGIN_LOCKED,
                      LOG_UNREADABLE})
#: kinds where a restart now is pointless but a later run may well log in: exit retryable, no restart
RETRY_LATER = frozenset({RESET_WINDOW, SERVER_UNAVAILABLE})
#: kinds that IBKR's reset windows explain (a pending 2FA is never among them: it is never restarted)
RESET_AFFECTED = frozenset({LOGIN_REJECTED, SERVER_UNAVAILABLE})

ADVICE = {
    TWOFA_PENDING: "a second-factor approval is waiting: approve the IBKR login on your phone now",
    LOGIN_REJECTED: "IBKR rejected the login: check TWS_USERID and the password secret; not retried "
                    "(repeated failed logins can lock the account)",
    TWOFA_TIMED_OUT: "the second-factor approval timed out{exit}, or the login stalled after it: when you "
                     "can approve a new push on your phone, restart the Gateway container yourself "
                     "(`docker restart`), then the service",
    SESSION_CONFLICT: "another session is logged in to this IBKR user: log it out (or set "
                      "EXISTING_SESSION_DETECTED_ACTION), then restart the Gateway container yourself "
                      "(`docker restart`) and the service",
    NO_LOGIN_DIALOG: "the Gateway's login dialog never appeared{exit}: check the container log",
    LOGIN_LOCKED: "IBKR refuses logins for a while after too many failed attempts: wait as IBKR says, "
                  "check the credentials, then restart the Gateway container yourself (`docker restart`) and the "
                  "service; not retried",
    SERVER_UNAVAILABLE: "IBKR's login server was not available (IBC retries by itself): check IBKR's system "
                        "status and this host's network; retry later",
    LOG_UNREADABLE: "the Gateway's log could not be read, so its login state is unknown: not restarted blind "
                    "(a restart while a second-factor push waits sends a second one); check `docker logs`",
    RESET_WINDOW: "IBKR's servers are in their reset window (until {until}): retry after it",
}


@dataclass(frozen=True)
class LoginDiagnosis:
    """What IBC's log says about the login, and the line (or exit code) that says it."""

    kind: str
    evidence: str  # the log line (or exit code, or read error) it rests on
    exit_code: int | None = None  # IBC's own exit status (87, 88) when the verdict rests on it
    retry_after: datetime | None = None  # RESET_WINDOW: when the window is over (UTC)
    cause: str | None = None  # RESET_WINDOW: the kind the log showed (e.g. login_rejected)
    unknown_dialogs: tuple[str, ...] = ()  # dialogs IBC reported opening that no rule here knows
    logged_in: bool = False  # the log's latest verdict is a completed login (a soft restart keeps that session)

    @property
    def no_retry(self) -> bool:
        return self.kind in NO_RETRY

    @property
    def retry_later(self) -> bool:
        """Not now, but without a human: exit with a retryable code (after ``retry_after`` if set)."""
        return self.kind in RETRY_LATER

    def in_reset_window(self, until: datetime) -> LoginDiagnosis:
        """This diagnosis made while IBKR's servers reset (until ``until``): a rejected login or an
        unavailable server then says nothing about the credentials, so it becomes RESET_WINDOW
        (retry later); every other kind, above all a pending 2FA, stays as it is."""
        if self.kind not in RESET_AFFECTED:
            return self
        return replace(self, kind=RESET_WINDOW, retry_after=until, cause=self.kind)

    def describe(self) -> str:
        advice = ADVICE.get(self.kind, "no IBC login problem found in the log")
        until = new_york_time(self.retry_after) if self.retry_after is not None else "later"
        exit_text = f" (IBC exit {self.exit_code})" if self.exit_code is not None else ""
        advice = advice.format(exit=exit_text, until=until)
        if self.unknown_dialogs:  # a window nobody here knows may be what the Gateway waits on: say so
            advice += ("; IBC reports a dialog no rule knows: " + ", ".join(repr(t) for t in self.unknown_dialogs)
                       + " (look at the Gateway's screen, VNC)")
        return f"{advice} [{self.evidence}]" if self.evidence else advice


@dataclass(frozen=True)
class Marker:
    """A text IBC prints (or the Gateway's own text, which IBC logs) and the kind it shows."""

    kind: str
    text: str  # as IBC prints it; matched ignoring case
    source: str  # where IBC prints it
    starts: bool = False  # the message must start with the text (else: contain it)
    exit_code: int | None = None  # the IBC exit status this line announces

    def matches(self, message: str) -> bool:
        low, text = message.lower(), self.text.lower()
        return low.startswith(text) if self.starts else text in low


#: the login is done: whatever went before is over (kind NOTHING_KNOWN)
LOGGED_IN = "logged_in"
#: the other session gave way and this login goes on (kind NOTHING_KNOWN)
SESSION_CONTINUES = "session_continues"

# One line, one verdict: the first marker that matches decides, so the more specific come first
# ("Login failed - Server disconnected" is the server, not the credentials).
MARKERS: tuple[Marker, ...] = (
    Marker(LOGGED_IN, "Login has completed", "LoginManager.java:92 (state LOGGED_IN)"),
    Marker(LOGGED_IN, "Login has already completed", "LoginManager.java:173"),
    Marker(TWOFA_PENDING, "Second Factor Authentication initiated", "LoginManager.java:85 (state TWO_FA_IN_PROGRESS)"),
    # The 2FA ended without a login. IBC exits 1111 only when ReloginAfterSecondFactorAuthenticationTimeout
    # (or the older ExitAfter...) is yes and the login stalls after the approval; a push left unanswered
    # with the default "no" only says "not required" and IBC (and the container) stays up, never logged in.
    Marker(TWOFA_TIMED_OUT, "Re-login after second factor authentication timeout not required",
           "LoginManager.java:144"),
    Marker(TWOFA_TIMED_OUT, "Re-login after second factor authentication timeout in",
           "LoginManager.java:150 (IBC logs in again by itself: a new push follows)"),
    Marker(TWOFA_TIMED_OUT, "IBC closing because login has not completed after Second Factor Authentication",
           "LoginManager.java:139, printed by Utils.exitWithError at :176", exit_code=EXIT_TWOFA_TIMEOUT),
    Marker(TWOFA_TIMED_OUT, "IBC closing after Second Factor Authentication dialog timeout",
           "LoginManager.java before IBC 3.14 (commit cf46af2)", exit_code=EXIT_TWOFA_TIMEOUT),
    Marker(TWOFA_TIMED_OUT, "exit code=1111", "Utils.java:94 'Exiting after error with exit code=' "
           "('Exiting with exit code=' before IBC 3.24, commit c0aad0f)", exit_code=EXIT_TWOFA_TIMEOUT),
    Marker(TWOFA_TIMED_OUT, "IBC returned exit status 87", "resources/scripts/ibcstart.sh:541",
           starts=True, exit_code=EXIT_TWOFA_TIMEOUT),
    Marker(NO_LOGIN_DIALOG, "IBC closing after TWS/Gateway failed to display login dialog",
           "SessionManager.java:70", exit_code=EXIT_NO_LOGIN_DIALOG),
    Marker(NO_LOGIN_DIALOG, "exit code=1112", "Utils.java:94", exit_code=EXIT_NO_LOGIN_DIALOG),
    Marker(NO_LOGIN_DIALOG, "IBC returned exit status 88",
           "resources/scripts/ibcstart.sh:541 (which then restarts IBC, :543)", starts=True,
           exit_code=EXIT_NO_LOGIN_DIALOG),
    # Another session of this user: the dialog title (ExistingSessionDetectedDialogHandler.java:149), then
    # what IBC does as ExistingSessionDetectedAction says.
    Marker(SESSION_CONFLICT, "Existing session detected", "TwsListener.java:146 'detected dialog entitled: '"),
    Marker(SESSION_CONFLICT, "User must choose whether to continue with this session",
           "ExistingSessionDetectedDialogHandler.java:58 (manual); TradingLoginHandoffDialogHandler.java:78"),
    Marker(SESSION_CONFLICT, "End this session and let the other session proceed",
           "ExistingSessionDetectedDialogHandler.java:64 (secondary)"),
    Marker(SESSION_CONFLICT, "so end this session and let the other one proceed",
           "ExistingSessionDetectedDialogHandler.java:112, :133"),
    Marker(SESSION_CONTINUES, "so continue this one", "ExistingSessionDetectedDialogHandler.java:105"),
    Marker(SESSION_CONTINUES, "Continue this session and let the other session exit",
           "ExistingSessionDetectedDialogHandler.java:126 (primary)"),
    Marker(SESSION_CONTINUES, "End the other session and continue this one",
           "ExistingSessionDetectedDialogHandler.java (primary, primaryoverride before login; IBC commit 47bd2c4)"),
    Marker(LOGIN_LOCKED, "Too many failed login attempts",
           "TooManyFailedLoginAttemptsDialogHandler.java:47-48 (the dialog's text, logged as it is)"),
    # IBKR's servers: the Gateway's dialog texts, which IBC logs, then IBC cold-restarts by itself.
    Marker(SERVER_UNAVAILABLE, "Connection to server failed",
           "GatewayDialogHandler.java:41-42 (the dialog's label, logged as it is)"),
    Marker(SERVER_UNAVAILABLE, "Server disconnected, please try again",
           "the 'Login Error' dialog's text after 'Login error message:' (LoginErrorDialogHandler.java:39; "
           "'Login failed - Server disconnected, please try again', commit 43822c1)"),
    Marker(SERVER_UNAVAILABLE, "not currently available",
           "NotCurrentlyAvailableDialogHandler.java:40 'The system is not currently available.'"),
    Marker(LOGIN_REJECTED, "Unrecognized Username or Password",
           "the Gateway's dialog title, logged by TwsListener.java:146 (IBC 3.24.1 has no handler for it)"),
    Marker(LOGIN_REJECTED, "Login failed", "LoginFailedDialogHandler.java:41 (then a cold restart, :42-44)",
           starts=True),
    Marker(LOGIN_REJECTED, "Login error message:",
           "LoginErrorDialogHandler.java:39 (the dialog's text follows on the next lines)", starts=True),
)

# TwsListener.java:146: every window event is logged; IBC's handlers act on "Opened" (WINDOW_OPENED) only.
_WINDOW_EVENT = re.compile(r"detected (?:dialog|frame|window)\b.*; event=(?P<event>[a-z ]+)$", re.IGNORECASE)
_IBC_PREFIX = re.compile(r"\bIBC: ", re.IGNORECASE)


def message(line: str) -> str:
    """The message of one log line: the text after ``IBC: `` if there is one, else the whole line."""
    text = line.strip()
    found = _IBC_PREFIX.search(text)
    return text[found.end():].strip() if found else text


def marker_for(line: str) -> Marker | None:
    """The marker one log line shows, if any (window events other than "Opened" show none)."""
    text = message(line)
    event = _WINDOW_EVENT.search(text)
    if event is not None and event["event"].strip().lower() != "opened":
        return None
    return next((marker for marker in MARKERS if marker.matches(text)), None)


def diagnose(log_since_start: str, exit_code: int | None = None, *, now: datetime | None = None,
             windows: Sequence[ResetWindow] = DEFAULT_WINDOWS) -> LoginDiagnosis:
    """Classify the login from the log lines of the container's current start (oldest first).

    ``exit_code`` is given when the container has exited (its `docker inspect` exit code): then
    nothing is pending any more, so a second-factor wait it left behind counts as timed out
    (starting it again sends a new push; the operator decides). ``now`` (aware) turns a rejected
    login or an unavailable server inside one of ``windows`` into RESET_WINDOW.
    """
    verdict = _from_exit_code(exit_code) or _from_log(log_since_start)
    if exit_code is not None and verdict.kind == TWOFA_PENDING:
        verdict = LoginDiagnosis(TWOFA_TIMED_OUT, f"the container exited (code {exit_code}) while a "
                                                  f"second-factor approval was pending: {verdict.evidence}")
    if now is not None:
        until = next_window_end(now, windows)
        if until is not None:
            verdict = verdict.in_reset_window(until)
        elif verdict.kind == LOGIN_REJECTED and (at := logged_at(verdict.evidence)) is not None \
                and next_window_end(at, windows) is not None:
            # IBKR said "rejected" while its servers were resetting, and the window is
            # over now: that says nothing about the credentials, so a login is worth one more try.
            verdict = LoginDiagnosis(NOTHING_KNOWN, f"{verdict.evidence} (logged inside IBKR's reset window, "
                                                    "which has ended: not a verdict on the credentials)")
    return verdict


_LOGGED_AT = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}):\d{3} ")


def logged_at(line: str) -> datetime | None:
    """When IBC printed `line` (its yyyy-MM-dd HH:mm:ss:SSS prefix), read as New York time: the
    Gateway image's TIME_ZONE default, as for AUTO_RESTART_TIME; None without a timestamp."""
    found = _LOGGED_AT.match(line)
    if found is None:
        return None
    try:
        return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=NEW_YORK)
    except ValueError:
        return None


def diagnose_unreadable(reason: str) -> LoginDiagnosis:
    """The Gateway's log (or its state) could not be read: fail closed, never restart blind."""
    return LoginDiagnosis(LOG_UNREADABLE, reason)


def _from_exit_code(exit_code: int | None) -> LoginDiagnosis | None:
    code = None if exit_code is None else exit_code % 256  # IBC's 1111/1112 if run without a shell
    if code == EXIT_TWOFA_TIMEOUT:
        return LoginDiagnosis(TWOFA_TIMED_OUT, f"exit code {exit_code}", exit_code=code)
    if code == EXIT_NO_LOGIN_DIALOG:
        return LoginDiagnosis(NO_LOGIN_DIALOG, f"exit code {exit_code}", exit_code=code)
    return None


# Dialog titles IBC reports that need nobody (its own handlers deal with them, or they are the login itself).
BENIGN_DIALOGS = frozenset({"Login", "IB Gateway", "IBKR Gateway", "Second Factor Authentication", "Gateway"})
_DIALOG_OPENED = re.compile(r"detected dialog entitled: (?P<title>.*?); event=Opened", re.IGNORECASE)


def _known_dialog(title: str) -> bool:
    """A dialog this module has a rule for (its title is, or begins, a marker's text) or that needs nobody."""
    low = title.lower()
    return title in BENIGN_DIALOGS or any(m.text.lower() in low or low in m.text.lower() for m in MARKERS)


def _from_log(log: str) -> LoginDiagnosis:
    """The latest line with a marker decides: a later login clears an earlier failure. Dialogs that opened and
    that no marker knows are named (a new window after an image update may be what blocks the login)."""
    verdict = LoginDiagnosis(NOTHING_KNOWN, "")
    unknown: dict[str, None] = {}
    for line in log.splitlines():
        marker = marker_for(line)
        if marker is None:
            opened = _DIALOG_OPENED.search(message(line))
            if opened is not None and not _known_dialog(opened["title"].strip()):
                unknown[opened["title"].strip()[:80]] = None
            continue
        if marker.kind in (LOGGED_IN, SESSION_CONTINUES):
            verdict = LoginDiagnosis(NOTHING_KNOWN, "", logged_in=marker.kind == LOGGED_IN)
            unknown.clear()  # logged in after them: they blocked nothing
        else:
            verdict = LoginDiagnosis(marker.kind, line.strip(), exit_code=marker.exit_code)
    return replace(verdict, unknown_dialogs=tuple(unknown)) if unknown else verdict


# --- the recovery policy -------------------------------------------------------------------------

WAIT_FOR_2FA, BLOCKED, TRY_LATER, GIVE_UP, RESTART = "wait_for_2fa", "blocked", "try_later", "give_up", "restart"


def decide_recovery(login: LoginDiagnosis, *, restart_attempted: bool, twofa_wait_used: bool,
                    twofa_wait: float) -> str:
    """What to do with a Gateway that is not logged in, from IBC's diagnosis. Pure policy:

    * a pending 2FA: wait for the approval once (never restart: a second push would be sent);
      waited already, or no wait configured: BLOCKED;
    * a login no restart can fix (rejected, 2FA timed out, existing session, log unreadable): BLOCKED;
    * a dialog no rule knows is open (an image update's new window): BLOCKED, named in the alert. A restart
      would be a cold login (on live, a 2FA push) that meets the same window;
    * IBKR's servers (reset window, server unavailable): TRY_LATER, no restart now;
    * nothing known: one RESTART, then GIVE_UP.
    """
    if login.kind == TWOFA_PENDING:
        return BLOCKED if twofa_wait_used or twofa_wait <= 0 else WAIT_FOR_2FA
    if login.no_retry or login.unknown_dialogs:
        return BLOCKED
    if login.retry_later:
        return TRY_LATER
    return GIVE_UP if restart_attempted else RESTART
