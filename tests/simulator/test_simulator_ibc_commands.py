"""The simulator's IBC command server: IBC's answers and log lines, RESTART keeps the session (the API away
for the restart delay, back logged in with no second factor), STOP is a tidy exit."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from src.orchestration.health import GatewayHealthChecker
from src.simulator import ibc_commands
from testkit.docker import free_port
from tests.helpers.simulator import running_simulator


@pytest.mark.parametrize(("line", "reply", "action"), [
    ("RESTART\n", "OK RESTART in progress", ibc_commands.RESTART),
    ("STOP\n", "OK Shutting down: STOP command", ibc_commands.STOP),
    ("RECONNECTACCOUNT\n", "OK ", ibc_commands.RECONNECT),
    ("ENABLEAPI\n", "ERROR ENABLEAPI is not valid for the IB Gateway", ibc_commands.NOTHING),
    ("FROBNICATE\n", "ERROR Command invalid", ibc_commands.NOTHING),
])
def test_answers_are_ibcs(line, reply, action):
    said = ibc_commands.answer(line)
    assert (said.reply, said.action) == (reply, action)
    assert said.logs[0] == f"IBC: CommandServer received command: {line.strip()}"


def command(port: int, line: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(line.encode() + b"\n")
        return sock.makefile().readline().rstrip("\n")


def test_restart_drops_the_api_for_the_delay_and_comes_back_logged_in(caplog):
    port = free_port()
    with caplog.at_level(logging.INFO), running_simulator(command_port=port, restart_delay=1.0) as sim:
        probe = GatewayHealthChecker("127.0.0.1", sim.port, timeout=2, client_id=0)
        assert probe.check_handshake().ok
        assert command(port, "RESTART") == "OK RESTART in progress"
        deadline = time.monotonic() + 30
        while "API: open again" not in caplog.text:  # away for the delay (closed on accept), then back
            assert time.monotonic() < deadline, "the API did not come back"
            time.sleep(0.05)
        assert probe.check_handshake().ok and sim.soft_restarts == 1
    text = caplog.text
    assert text.index("API: closed") < text.index("API: open again")  # it did go away, then came back
    assert "RestartTask: verb = RESTART" in text and "Second Factor" not in text


def test_stop_is_a_tidy_logout_and_ends_the_simulated_ibc(caplog):
    port = free_port()
    with caplog.at_level(logging.INFO), running_simulator(command_port=port) as sim:
        assert command(port, "STOP") == "OK Shutting down: STOP command"
        deadline = time.monotonic() + 5
        while sim.exit_code is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert sim.exit_code == 0 and "exiting via [File, Close] menu" in caplog.text


@pytest.mark.parametrize("line", ["SIMOUTAGE freeze 0", "SIMOUTAGE freeze nan", "SIMOUTAGE melt 5",
                                  "SIMOUTAGE freeze 1e9", "SIMOUTAGE freeze"])
def test_a_simulated_outage_command_that_is_not_well_formed_is_invalid(line):
    assert ibc_commands.answer(line).action == ibc_commands.NOTHING


def test_a_simulated_outage_begins_at_once_and_ends_after_its_seconds(caplog):
    """The soak's fault injection (scripts/soak.sh): the simulator's own verb on the command channel."""
    port = free_port()
    with caplog.at_level(logging.INFO), running_simulator(command_port=port) as sim:
        probe = GatewayHealthChecker("127.0.0.1", sim.port, timeout=2, client_id=0)
        assert command(port, "SIMOUTAGE closed 1") == "OK outage closed for 1s"
        deadline = time.monotonic() + 10
        while "outage (closed) ends" not in caplog.text:
            assert time.monotonic() < deadline, "the outage did not end"
            time.sleep(0.05)
        assert probe.check_handshake().ok
    assert "API: closed" in caplog.text
