"""AlertGate: one alert per open problem, one recovery message, state kept across relaunches."""

from __future__ import annotations

import json
import logging

import pytest

from src.notifications import dedupe
from src.notifications.dedupe import AlertGate, OpenProblem, describe_duration
from src.core.statefiles import ALERT_GATE_FILE


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def gate(tmp_path, clock):
    return AlertGate.in_state_dir(tmp_path, clock)


def test_a_problem_alerts_once_while_open_and_once_more_when_it_clears(gate, clock):
    assert gate.raise_("gateway-down", "error", "Gateway down") is True
    for _ in range(50):
        clock.now += 10
        assert gate.raise_("gateway-down", "error", "Gateway still down") is False
    clock.now += 7 * 60 - 500
    assert gate.clear("gateway-down", "Gateway back after {minutes} min") == "Gateway back after 7 min"
    assert gate.clear("gateway-down", "Gateway back after {minutes} min") is None  # said once
    assert gate.raise_("gateway-down", "error", "Gateway down again") is True  # a new problem


def test_clearing_what_was_never_raised_says_nothing(gate):
    assert gate.clear("bot-down", "Bot back after {minutes} min") is None


def test_keys_are_independent(gate, clock):
    assert gate.raise_("gateway-down", "error", "Gateway down")
    assert gate.raise_("login-budget", "critical", "No logins left")
    clock.now += 120
    assert gate.clear("gateway-down", "back after {duration}") == "back after 2 min"
    assert not gate.raise_("login-budget", "critical", "No logins left")
    assert list(gate.open_problems()) == ["login-budget"]
    assert gate.is_open("login-budget") and not gate.is_open("gateway-down")


def test_the_first_raise_is_what_is_remembered(gate, clock):
    gate.raise_("twofa", "warning", "approve on the phone")
    clock.now += 60
    gate.raise_("twofa", "critical", "3 min left")
    assert gate.open_problems()["twofa"] == OpenProblem(clock.now - 60, "warning", "approve on the phone")


def test_a_relaunched_supervisor_does_not_alert_an_open_problem_again(tmp_path, clock):
    assert AlertGate.in_state_dir(tmp_path, clock).raise_("gateway-down", "error", "Gateway down")
    clock.now += 3 * 3600 + 300
    relaunched = AlertGate.in_state_dir(tmp_path, clock)
    assert relaunched.raise_("gateway-down", "error", "Gateway down") is False
    assert relaunched.clear("gateway-down", "Gateway back after {duration}") == "Gateway back after 3 h 5 min"
    assert AlertGate.in_state_dir(tmp_path, clock).open_problems() == {}  # the clearing is persisted too


def test_the_state_is_one_json_file_written_atomically(tmp_path, clock, monkeypatch):
    writes = []
    real = dedupe.write_atomic
    monkeypatch.setattr(dedupe, "write_atomic", lambda path, data: (writes.append(path), real(path, data)))
    gate = AlertGate.in_state_dir(tmp_path, clock)
    gate.raise_("gateway-down", "error", "Gateway down")
    gate.raise_("gateway-down", "error", "Gateway down")  # nothing changed: nothing written
    assert writes == [tmp_path / ALERT_GATE_FILE]
    assert json.loads((tmp_path / ALERT_GATE_FILE).read_text()) == {
        "version": 1, "open": {"gateway-down": {"since": clock.now, "level": "error", "message": "Gateway down"}}}
    assert sorted(p.name for p in tmp_path.iterdir()) == [ALERT_GATE_FILE]  # no temp file left


@pytest.mark.parametrize("content", ["", "{", "[]", '{"version": 2, "open": {}}', '{"version": 1, "open": []}',
                                     '{"version": 1, "open": {"k": {"since": "x", "level": "error", "message": "m"}}}',
                                     '{"version": 1, "open": {"k": {"since": NaN, "level": "error", "message": "m"}}}',
                                     '{"version": 1, "open": {"k": {"level": "error"}}}'])
def test_an_unreadable_state_file_starts_afresh_rather_than_silencing_alerts(tmp_path, clock, content, caplog):
    (tmp_path / ALERT_GATE_FILE).write_text(content)
    with caplog.at_level(logging.WARNING):
        gate = AlertGate.in_state_dir(tmp_path, clock)
    assert "starting with no open problem" in caplog.text
    assert gate.raise_("k", "error", "m") is True


def test_a_state_file_that_cannot_be_written_is_logged_and_the_gate_works_in_memory(tmp_path, clock, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    gate = AlertGate(blocker / ALERT_GATE_FILE, clock)
    with caplog.at_level(logging.WARNING):
        assert gate.raise_("k", "error", "m") is True
    assert "kept in memory only" in caplog.text
    assert gate.raise_("k", "error", "m") is False
    assert gate.clear("k", "back after {minutes} min") == "back after 0 min"


def test_a_clock_set_back_never_gives_a_negative_duration(gate, clock):
    gate.raise_("k", "error", "m")
    clock.now -= 3600
    assert gate.clear("k", "back after {duration}") == "back after 0 s"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (44.6, "45 s"), (59.4, "59 s"), (59.6, "1 min"), (7 * 60 + 20, "7 min"), (3599, "1 h"),
    (3600 + 5 * 60, "1 h 5 min"), (2 * 3600, "2 h"), (86400, "1 d"), (3 * 86400 + 4 * 3600 + 10, "3 d 4 h"),
])
def test_durations_are_short(seconds, text):
    assert describe_duration(seconds) == text
