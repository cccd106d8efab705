"""Classifying IBC's log: which login problems allow a restart and which need a human."""

import pytest

from src.orchestration import ibc


@pytest.mark.parametrize(("log", "exit_code", "kind"), [
    ("", None, ibc.NOTHING_KNOWN),
    ("IBC: Login dialog displayed", None, ibc.NOTHING_KNOWN),
    ("IBC: Second Factor Authentication initiated", None, ibc.TWOFA_PENDING),
    ("IBC: Second Factor Authentication initiated\nIBC: Login has completed", None, ibc.NOTHING_KNOWN),
    ("IBC: Login has completed\nIBC: Second Factor Authentication initiated", None, ibc.TWOFA_PENDING),
    ("IBC: Login failed: Unrecognized Username or Password", None, ibc.LOGIN_REJECTED),
    ("IBC: Existing session detected", None, ibc.SESSION_CONFLICT),
    ("IBC: Second Factor Authentication initiated", 87, ibc.TWOFA_TIMED_OUT),
    ("", 88, ibc.NO_LOGIN_DIALOG),
    ("", 1, ibc.NOTHING_KNOWN),
])
def test_diagnose(log, exit_code, kind):
    assert ibc.diagnose(log, exit_code).kind == kind


def test_only_fixable_problems_allow_a_restart():
    assert not ibc.diagnose("").no_retry
    assert not ibc.diagnose("IBC: Second Factor Authentication initiated").no_retry  # waited for, not retried
    assert ibc.diagnose("IBC: Login failed").no_retry
    assert "IBC: Login failed" in ibc.diagnose("IBC: Login failed").describe()
