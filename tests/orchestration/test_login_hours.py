"""GATEWAY_LOGIN_HOURS at start-up: under --supervise a login outside them waits for them.

A login is, on a live account, a 2FA push on the operator's phone; at 01:00 nobody approves
it, IBC gives up and the Gateway is left down until morning anyway. So a supervised start-up
(systemd at boot, a relaunch) that needs a login outside the hours holds until they begin,
says so once, and then logs in. (The supervisor's own restarts: tests/orchestration/test_watch.py.)
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import pytest

from src.orchestration.startup import StartupOrchestrator
from src.core.resetwindows import parse_windows
from tests.helpers.fakes import EXITED, RUNNING

HOURS = parse_windows("daily 06:30-22:00")
WEDNESDAY_0100 = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # 01:00 New York, after the nightly window
OPENS = datetime(2026, 12, 2, 11, 30, tzinfo=UTC)  # 06:30 New York


@pytest.fixture
def night(harness, monkeypatch):
    """A supervised start-up at 01:00 New York with the Gateway container exited; its sleeps move the
    clock and record whether the Gateway was touched before the hours began."""
    monkeypatch.setattr(StartupOrchestrator, "supervisor", staticmethod(lambda run: 0))  # the start-up alone
    harness.configure(gateway_login_hours=HOURS)
    harness.docker.state = EXITED
    harness.now = WEDNESDAY_0100
    harness.slept = []

    def sleep(seconds: float) -> None:
        assert not {"start", "restart", "compose_up"} & set(harness.docker.calls), "a login during the hold"
        harness.slept.append(seconds)
        harness.now += timedelta(seconds=seconds)

    harness.sleep = sleep
    return harness


def supervised(harness):
    orchestrator = harness.orchestrator()
    orchestrator.supervise = True
    orchestrator.services.sleep = harness.sleep
    return orchestrator


def test_a_supervised_start_up_outside_the_login_hours_logs_in_when_they_begin(night):
    assert supervised(night).run() == 0
    assert night.docker.calls.count("start") == 1 and night.now == OPENS  # the login came at 06:30, not before
    assert sum(night.slept) == (OPENS - WEDNESDAY_0100).total_seconds() and max(night.slept) <= 60
    said = [message for level, message in night.notifier.alerts if level == "warning"]
    assert len(said) == 1 and "outside GATEWAY_LOGIN_HOURS: it is logged in at Wed 06:30 New York" in said[0]
    assert night.runs[-1]["login_held_until"] == OPENS.isoformat()


def test_without_supervise_the_operator_at_the_desk_gets_the_login_at_once(night):
    orchestrator = night.orchestrator()
    orchestrator.services.sleep = night.sleep
    assert orchestrator.run() == 0
    assert night.docker.calls.count("start") == 1 and night.slept == [] and night.now == WEDNESDAY_0100


def test_a_gateway_started_by_hand_during_the_hold_costs_no_login_of_ours(night):
    def operator_starts_it(seconds: float) -> None:
        night.now += timedelta(seconds=seconds)
        night.docker.state = RUNNING

    orchestrator = supervised(night)
    orchestrator.services.sleep = operator_starts_it
    assert orchestrator.run() == 0
    assert not {"start", "restart", "compose_up"} & set(night.docker.calls)
    assert orchestrator.logins.view().left == night.config.gateway_login_budget


def test_a_stop_during_the_hold_ends_the_run_without_a_login(night):
    orchestrator = supervised(night)

    def sigterm(seconds: float) -> None:
        orchestrator.handle_signal(signal.SIGTERM)

    orchestrator.services.sleep = sigterm
    assert orchestrator.run() == 128 + signal.SIGTERM  # a stop asked for, under --supervise: clean for systemd
    assert not {"start", "restart", "compose_up"} & set(night.docker.calls)
    assert "interrupted by SIGTERM in state GATEWAY_STARTING" in night.runs[-1]["reason"]
    assert night.runs[-1]["outcome"] == "stopped"


def test_inside_the_login_hours_a_supervised_start_up_logs_in_at_once(night):
    night.now = OPENS + timedelta(hours=1)
    assert supervised(night).run() == 0
    assert night.docker.calls.count("start") == 1 and night.slept == []
