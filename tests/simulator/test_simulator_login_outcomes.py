"""How a login ends, as IBC tells it: 2FA approved, 2FA timed out, credentials rejected, existing session.

The orchestrator reads these IBC log lines from the container, so the exact lines
and their order are the contract; the API must never serve after a failed login.
The lines are IBC 3.24.1's own texts: each outcome's lines are checked against the
IBC log excerpts of tests/fixtures/ibc, and classified as those are.
"""

from __future__ import annotations

import signal
import socket
import time

import pytest

from src.orchestration.gateway import ibc
from src.orchestration.health import CLOSED_BEFORE_VERSION, GatewayHealthChecker
from src.simulator import LOGIN_OUTCOMES, TWOFA_TIMEOUT_EXIT, GatewaySimulator
from testkit.docker import container_state, docker
from tests.helpers import ibclog
from tests.helpers.simulator import running_simulator
from tests.integration.docker_env import simulator_gateway
from tests.simulator.test_simulator_protocol import assert_closed_without_reply, connect_client, open_api

STARTED = [
    "IBC: Starting Gateway",
    "IBC: detected frame entitled: IBKR Gateway; event=Opened",
    "IBC: Login dialog WINDOW_OPENED: LoginState is LOGGED_OUT",
    "IBC: Login attempt: N",
]
TWOFA_PENDING = [
    "IBC: detected dialog entitled: Second Factor Authentication; event=Opened",
    "IBC: Second Factor Authentication initiated",
]
TWOFA_CLOSED = [
    "IBC: detected dialog entitled: Second Factor Authentication; event=Closed",
    "IBC: Duration since login: N seconds",
]
LOGGED_IN = ["IBC: Login has completed", "IBC: Configuration tasks completed"]
STOPPED_BY_SIGNAL = ["IBC: SIGTERM received, shutting down", "IBC: Gateway simulator stopped"]
BANNER = "!" * 79
# The simulator's own lines, which no IBC prints (its start, its stop, the signal it got).
SIMULATOR_ONLY = ("IBC: Starting Gateway simulator", "IBC: Gateway simulator stopped", "IBC: SIGTERM received",
                  "IBC: simulated crash", "API: ")
# Each outcome and the IBC log excerpt of the same outcome.
FIXTURE_OF = {
    "ok": "login_completed",
    "2fa-then-ok": "twofa_approved",
    "2fa-timeout": "twofa_exit_1111",
    "2fa-expired": "twofa_expired",
    "rejected": "credentials_rejected",
    "existing-session": "existing_session",
    "unknown-dialog": "unknown_dialog",
}


def ibc_lines(lines: list[str]) -> list[str]:
    """The IBC-style messages without their timestamps (numbers as N), the simulator's start line left out."""
    messages = ibclog.messages("".join(lines))
    return [m for m in messages if not m.startswith("API: ") and "Starting Gateway simulator" not in m]


def assert_not_serving(port: int, seconds: float) -> None:
    """For `seconds`, every API connection is closed before the version reply."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open_api(port) as sock:
            assert_closed_without_reply(sock)
        time.sleep(0.1)


def test_2fa_then_ok_logs_in_after_the_approval(run_cli) -> None:
    # the approval comes 2 s after the prompt: the 0.3 s look at the port ends well before it, even when
    # the prompt's line reaches the test late on a busy machine
    sim = run_cli("--login-outcome", "2fa-then-ok", "--twofa-delay", "2")
    port = sim.port
    pending = sim.wait_for("IBC: Second Factor Authentication initiated")
    assert_not_serving(port, 0.3)
    done = sim.wait_for("IBC: Login has completed", timeout=10)
    assert (ibclog.timestamp(done) - ibclog.timestamp(pending)).total_seconds() >= 2  # the simulator's clock
    with connect_client(port, 3):
        pass
    sim.process.send_signal(signal.SIGTERM)
    lines = sim.finish()
    assert sim.process.returncode == 0
    assert ibc_lines(lines) == STARTED + TWOFA_PENDING + TWOFA_CLOSED + LOGGED_IN + STOPPED_BY_SIGNAL


def test_2fa_timeout_exits_87_like_ibc(run_cli) -> None:
    sim = run_cli("--login-outcome", "2fa-timeout", "--twofa-delay", "2")  # still up after the 0.3 s look
    port = sim.port
    sim.wait_for("IBC: Second Factor Authentication initiated")
    assert_not_serving(port, 0.3)
    lines = sim.finish(timeout=10)
    assert sim.process.returncode == TWOFA_TIMEOUT_EXIT == 87
    assert time.time() - sim.started_at >= 2
    assert ibc_lines(lines) == STARTED + TWOFA_PENDING + TWOFA_CLOSED + [
        "IBC: If login has not completed, IBC will exit in N seconds",
        BANNER,
        "IBC: IBC closing because login has not completed after Second Factor Authentication",
        BANNER,
        "IBC: Exiting after error with exit code=N",
        "IBC returned exit status N",
        "Gateway finished",
        "IBC: Gateway simulator stopped",
    ]
    assert "IBC returned exit status 87\n" in lines  # printed as ibcstart.sh prints it: no timestamp
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


@pytest.mark.parametrize(("outcome", "dialog"), [
    ("rejected", ["IBC: detected dialog entitled: Unrecognized Username or Password; event=Opened"]),
    ("unknown-dialog", ["IBC: detected dialog entitled: Passkey Sign-In Required; event=Opened"]),
    ("existing-session", [
        "IBC: detected dialog entitled: Existing session detected; event=Opened",
        "IBC: User must choose whether to continue with this session (scenario N)",
    ]),
    ("2fa-expired", TWOFA_PENDING + TWOFA_CLOSED + [
        "IBC: Re-login after second factor authentication timeout not required"]),
])
def test_failed_login_stays_up_and_never_serves(run_cli, outcome, dialog) -> None:
    sim = run_cli("--login-outcome", outcome, "--login-delay", "0.2", "--twofa-delay", "0")
    port = sim.port
    sim.wait_for(dialog[-1].replace(" (scenario N)", ""))
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
    assert ibc_lines(logs.splitlines(keepends=True))[-5:-1] == [
        BANNER, "IBC: Exiting after error with exit code=N", "IBC returned exit status N", "Gateway finished"]

    with simulator_gateway(wait_healthy=False, login_outcome="rejected", login_delay=0.2) as gw:
        deadline = time.monotonic() + 30
        while "Unrecognized Username or Password" not in docker("logs", gw.container).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        probe = GatewayHealthChecker("127.0.0.1", gw.port, timeout=3).check_handshake()
        assert probe.reason == CLOSED_BEFORE_VERSION, probe.describe()  # the port answers, the API does not
        state = container_state(gw.container)
    assert state["Status"] == "running" and state["Health"]["Status"] == "starting"


# --- the same lines as IBC prints ---------------------------------------------------------------

def run_to_the_end(run_cli, outcome: str) -> list[str]:
    """The simulator's whole output for `outcome`: until it exits, or until its last login line (then SIGTERM)."""
    sim = run_cli("--login-outcome", outcome, "--twofa-delay", "0.2")
    if outcome in ("ok", "2fa-then-ok"):
        sim.wait_for("Configuration tasks completed")
    elif outcome != "2fa-timeout":
        last = {"rejected": "Unrecognized Username or Password", "existing-session": "User must choose",
                "unknown-dialog": "Passkey Sign-In Required",
                "2fa-expired": "Re-login after second factor authentication timeout not required"}[outcome]
        sim.wait_for(last)
    if outcome != "2fa-timeout":
        sim.process.send_signal(signal.SIGTERM)
    return sim.finish(timeout=5)


def test_every_outcome_has_its_ibc_log_excerpt() -> None:
    assert set(FIXTURE_OF) == set(LOGIN_OUTCOMES)


@pytest.mark.parametrize("outcome", sorted(FIXTURE_OF))
def test_the_simulator_prints_ibcs_real_lines_and_is_read_as_ibc_is(run_cli, outcome) -> None:
    output = run_to_the_end(run_cli, outcome)
    fixture = ibclog.load(FIXTURE_OF[outcome])
    known = {shape for name in ibclog.fixture_names() for shape in ibclog.shapes(ibclog.load(name))}
    ibc_output = [line for line in output if not ibclog.message_without_timestamp(line).startswith(SIMULATOR_ONLY)]
    # only texts IBC prints, each as IBC prints it: with IBC's timestamp, or raw as its scripts and banners
    assert ibclog.shapes("".join(ibc_output)) <= known
    # the lines that decide, in the same order, and so the same verdict
    assert marker_messages("".join(output)) == marker_messages(fixture)
    simulated, real = ibc.diagnose("".join(output)), ibc.diagnose(fixture)
    assert (simulated.kind, simulated.exit_code) == (real.kind, real.exit_code)


def marker_messages(log: str) -> list[str]:
    return ibclog.messages("\n".join(line for line in log.splitlines() if ibc.marker_for(line) is not None))
