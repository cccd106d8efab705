"""Reading IBC's log: why a Gateway is not logged in, before anything restarts it.

IB Gateway images run the Gateway under IBC, which logs its login progress. A
blind restart while a second-factor push waits on the operator's phone sends a
second push (stacked pushes get rejected), and repeated failed logins can lock
the account. So before the one automatic restart the orchestrator reads the
container's log *since its current start* and classifies it here. Pure
functions: no Docker, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

LOGIN_COMPLETED = "Login has completed"
TWOFA_STARTED = "Second Factor Authentication initiated"
EXISTING_SESSION = "Existing session detected"
REJECTED_MARKERS = ("Login failed", "invalid username or password", "Unrecognized Username or Password")
EXIT_TWOFA_TIMEOUT = 87  # IBC: second factor not approved in time
EXIT_NO_LOGIN_DIALOG = 88  # IBC: the login dialog never appeared

# Diagnosis kinds
NOTHING_KNOWN = "nothing_known"  # restart is reasonable
TWOFA_PENDING = "twofa_pending"  # wait for the operator: never restart
LOGIN_REJECTED = "login_rejected"
TWOFA_TIMED_OUT = "twofa_timeout"
SESSION_CONFLICT = "existing_session"
NO_LOGIN_DIALOG = "login_dialog_missing"

#: kinds where a restart cannot help and may lock the account: a human must act
NO_RETRY = frozenset({LOGIN_REJECTED, TWOFA_TIMED_OUT, SESSION_CONFLICT, NO_LOGIN_DIALOG})

ADVICE = {
    TWOFA_PENDING: "a second-factor approval is waiting: approve the IBKR login on your phone now",
    LOGIN_REJECTED: "IBKR rejected the login: check TWS_USERID and the password secret; not retried "
                    "(repeated failed logins can lock the account)",
    TWOFA_TIMED_OUT: "the second-factor approval timed out (IBC exit 87): approve faster, then rerun",
    SESSION_CONFLICT: "another session is logged in to this IBKR user: log it out (or set "
                      "EXISTING_SESSION_DETECTED_ACTION), then rerun",
    NO_LOGIN_DIALOG: "the Gateway's login dialog never appeared (IBC exit 88): check the container log",
}


@dataclass(frozen=True)
class LoginDiagnosis:
    kind: str
    evidence: str  # the log line (or exit code) it rests on

    @property
    def no_retry(self) -> bool:
        return self.kind in NO_RETRY

    def describe(self) -> str:
        advice = ADVICE.get(self.kind, "no IBC login problem found in the log")
        return f"{advice} [{self.evidence}]" if self.evidence else advice


def diagnose(log_since_start: str, exit_code: int | None = None) -> LoginDiagnosis:
    """Classify the login from the log lines of the container's current start (oldest first)."""
    if exit_code == EXIT_TWOFA_TIMEOUT:
        return LoginDiagnosis(TWOFA_TIMED_OUT, f"exit code {exit_code}")
    if exit_code == EXIT_NO_LOGIN_DIALOG:
        return LoginDiagnosis(NO_LOGIN_DIALOG, f"exit code {exit_code}")
    verdict = LoginDiagnosis(NOTHING_KNOWN, "")
    for line in log_since_start.splitlines():
        text = line.strip()
        if LOGIN_COMPLETED in text:
            verdict = LoginDiagnosis(NOTHING_KNOWN, "")
        elif TWOFA_STARTED in text:
            verdict = LoginDiagnosis(TWOFA_PENDING, text)
        elif EXISTING_SESSION in text:
            verdict = LoginDiagnosis(SESSION_CONFLICT, text)
        elif any(marker.lower() in text.lower() for marker in REJECTED_MARKERS):
            verdict = LoginDiagnosis(LOGIN_REJECTED, text)
    return verdict
