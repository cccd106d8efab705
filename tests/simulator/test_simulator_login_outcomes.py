"""How a login ends, as IBC tells it: 2FA approved, 2FA timed out, credentials rejected, existing session.

The orchestrator reads these IBC log lines from the container, so the exact lines
and their order are the contract; the API must never serve after a failed login.
"""

from __future__ import annotations

import signal
import socket
import time

import pytest

from src.simulator import TWOFA_TIMEOUT_EXIT, GatewaySimulator
from tests.helpers.simulator import running_simulator
from tests.integration.docker_env import container_state, docker, simulator_gateway, tws_handshake
from tests.simulator.test_simulator_protocol import assert_closed_without_reply, connect_client, open_api

STARTED = ["IBC: Login dialog displayed"]
TWOFA_PENDING = [
    "IBC: Second Factor Authentication dialog event: Opened",
    "IBC: Second Factor Authentication dialog opened",
    "IBC: Second Factor Authentication initiated",
]
LOGGED_IN = ["IBC: Login has completed", "IBC: Configuration tasks completed"]
STOPPED_BY_SIGNAL = ["IBC: SIGTERM received, shutting down", "IBC: Gateway simulator stopped"]


def ibc_lines(lines: list[str]) -> list[str]:
    """The IBC messages without their timestamps, the simulator's start line left out."""
    messages = [line.rstrip("\n").split(" ", 2)[2] for line in lines]
    return [m for m in messages if m.startswith("IBC: ") and "Starting Gateway simulator" not in m]


def assert_not_serving(port: int, seconds: float) -> None:
    """For `seconds`, every API connection is closed before the version reply."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open_api(port) as sock:
            assert_closed_without_reply(sock)
        time.sleep(0.1)


def test_2fa_then_ok_logs_in_after_the_approval(run_cli) -> None:
    sim = run_cli("--login-outcome", "2fa-then-ok", "--twofa-delay", "0.8")
    port = sim.port
    pending_at = time.monotonic()
    sim.wait_for("IBC: Second Factor Authentication initiated")
    assert_not_serving(port, 0.3)
    sim.wait_for("IBC: Login has completed", timeout=5)
    assert time.monotonic() - pending_at >= 0.8
    with connect_client(port, 3):
        pass
    sim.process.send_signal(signal.SIGTERM)
    lines = sim.finish()
    assert sim.process.returncode == 0
    assert ibc_lines(lines) == STARTED + TWOFA_PENDING + [
        "IBC: Second Factor Authentication dialog event: Closed",
        "IBC: Second Factor Authentication dialog closed",
    ] + LOGGED_IN + STOPPED_BY_SIGNAL


def test_2fa_timeout_exits_87_like_ibc(run_cli) -> None:
    sim = run_cli("--login-outcome", "2fa-timeout", "--twofa-delay", "0.6")
    port = sim.port
    sim.wait_for("IBC: Second Factor Authentication initiated")
    assert_not_serving(port, 0.3)
    lines = sim.finish(timeout=5)
    assert sim.process.returncode == TWOFA_TIMEOUT_EXIT == 87
    assert time.time() - sim.started_at >= 0.6
    assert ibc_lines(lines) == STARTED + TWOFA_PENDING + [
        "IBC: IBC closing after Second Factor Authentication dialog timeout",
        "IBC: Exiting with exit code=1111",
        "IBC: Gateway simulator stopped",
    ]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


@pytest.mark.parametrize(("outcome", "dialog"), [
    ("rejected", [
        "IBC: detected dialog entitled: Login failed; event=Opened",
        "IBC: Login failed",
        "IBC: Ensure login frame visible",
    ]),
    ("existing-session", [
        "IBC: detected dialog entitled: Existing session detected; event=Opened",
        "IBC: User must choose whether to continue with this session",
    ]),
])
def test_failed_login_stays_up_and_never_serves(run_cli, outcome, dialog) -> None:
    sim = run_cli("--login-outcome", outcome, "--login-delay", "0.2", "--twofa-delay", "0")
    port = sim.port
    sim.wait_for(dialog[-1])
    assert_not_serving(port, 1.0)
    assert sim.process.poll() is None  # IBC does not retry and does not exit
    sim.process.send_signal(signal.SIGTERM)
    assert ibc_lines(sim.finish()) == STARTED + dialog + STOPPED_BY_SIGNAL
    assert sim.process.returncode == 0


def test_outcome_and_delay_from_the_environment(run_cli) -> None:
    sim = run_cli(env={"SIM_LOGIN_OUTCOME": "2fa-timeout", "SIM_TWOFA_DELAY": "0.2"})
    sim.wait_for("login outcome: 2fa-timeout")
    assert "IBC: Second Factor Authentication initiated" in "".join(sim.finish())
    assert sim.process.returncode == 87


def test_bad_outcome_from_the_environment_is_a_usage_error(run_cli) -> None:
    sim = run_cli(env={"SIM_LOGIN_OUTCOME": "maybe"})
    assert sim.process.wait(timeout=5) == 2


def test_in_process_outcomes() -> None:
    with running_simulator(login_outcome="rejected") as sim:
        assert not sim.wait_logged_in(timeout=0.5)
        assert sim.exit_code is None
    with running_simulator(login_outcome="2fa-timeout", twofa_delay=0.1) as sim:
        deadline = time.monotonic() + 5
        while sim.exit_code is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert sim.exit_code == 87 and not sim.logged_in
    with running_simulator(login_outcome="2fa-then-ok", twofa_delay=0.1) as sim:
        assert sim.wait_logged_in(timeout=5)


def test_invalid_outcome_arguments() -> None:
    with pytest.raises(ValueError):
        GatewaySimulator(login_outcome="sometimes")
    with pytest.raises(ValueError):
        GatewaySimulator(twofa_delay=-1)


@pytest.mark.docker
def test_in_a_real_container_2fa_timeout_exits_87_and_rejected_stays_up() -> None:
    """What the orchestrator will see: `docker inspect` exit code 87, and IBC's lines in `docker logs`."""
    with simulator_gateway(wait_healthy=False, login_outcome="2fa-timeout", twofa_delay=1) as gw:
        deadline = time.monotonic() + 30
        while (state := container_state(gw.container))["Status"] != "exited":
            assert time.monotonic() < deadline, state
            time.sleep(0.2)
        logs = docker("logs", gw.container).stdout
    assert state["ExitCode"] == 87
    assert ibc_lines(logs.splitlines())[-3:-1] == [
        "IBC: IBC closing after Second Factor Authentication dialog timeout", "IBC: Exiting with exit code=1111"]

    with simulator_gateway(wait_healthy=False, login_outcome="rejected", login_delay=0.2) as gw:
        deadline = time.monotonic() + 30
        while "IBC: Ensure login frame visible" not in docker("logs", gw.container).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        with pytest.raises(ConnectionError):
            tws_handshake(gw.port, timeout=3)
        state = container_state(gw.container)
    assert state["Status"] == "running" and state["Health"]["Status"] == "starting"
