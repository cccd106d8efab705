"""The health probe tells a logged-in Gateway from everything that merely looks up."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time

import pytest

from src.orchestration import health
from src.orchestration.config import REPO_ROOT
from src.orchestration.health import GatewayHealthChecker
from src.tws import wire
from tests.helpers.listeners import (
    accept_and_close, accept_and_stay_silent, answer_absurd_frame, answer_garbage, tcp_listener,
)
from tests.helpers.simulator import running_simulator


def probe(port: int, timeout: float = 2.0, client_id: int = 999):
    return GatewayHealthChecker("127.0.0.1", port, timeout=timeout, client_id=client_id).check_handshake()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_logged_in_simulator_is_healthy_with_its_accounts():
    with running_simulator(accounts=("DU111", "DU222")) as sim:
        result = probe(sim.port)
    assert result.ok, result.describe()
    assert result.accounts == ("DU111", "DU222") and result.server_version == 178


@pytest.mark.parametrize(("before_login", "reason"), [
    ("close", health.CLOSED_BEFORE_VERSION),
    ("silent", health.NO_REPLY),
    ("refuse", health.REFUSED),
])
def test_a_gateway_still_logging_in_is_not_healthy(before_login, reason):
    with running_simulator(login_delay=30, before_login=before_login) as sim:
        result = probe(sim.port, timeout=0.5)
    assert result.reason == reason and not result.ok


def test_socat_like_port_is_open_but_not_healthy():
    with running_simulator(login_delay=30, before_login="close") as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=0.5):
            pass  # the spec's port check (a TCP connect) is fooled...
        checker = GatewayHealthChecker("127.0.0.1", sim.port, timeout=0.5)
        assert checker.check_handshake().reason == health.CLOSED_BEFORE_VERSION  # ...the handshake is not


@pytest.mark.parametrize(("mode", "reason"), [
    ("silent", health.NO_REPLY),
    ("no-accounts", health.NO_ACCOUNTS),
    ("client-id-in-use", health.CLIENT_ID_TAKEN),
])
def test_logged_in_but_not_serving_properly(mode, reason):
    with running_simulator(mode=mode) as sim:
        result = probe(sim.port, timeout=0.5)
    assert result.reason == reason, result.describe()


def test_probe_with_the_bots_client_id_is_refused_while_the_bot_is_connected():
    with running_simulator() as sim:
        with socket.create_connection(("127.0.0.1", sim.port)) as bot:
            bot.sendall(wire.opening(157, 178))
            bot.recv(1024)
            bot.sendall(wire.start_api(1))
            time.sleep(0.1)
            assert probe(sim.port, client_id=1).reason == health.CLIENT_ID_TAKEN
            assert probe(sim.port, client_id=999).ok


def test_nothing_listening_is_refused():
    assert probe(free_port()).reason == health.REFUSED


@pytest.mark.parametrize(("behaviour", "reason"), [
    (accept_and_close, health.CLOSED_BEFORE_VERSION),
    (accept_and_stay_silent, health.NO_REPLY),
    (answer_garbage, health.PROTOCOL_ERROR),
    (answer_absurd_frame, health.PROTOCOL_ERROR),
])
def test_hostile_listeners_are_never_healthy_and_the_probe_is_bounded(behaviour, reason):
    with tcp_listener(behaviour) as port:
        started = time.monotonic()
        result = probe(port, timeout=0.6)
        elapsed = time.monotonic() - started
    assert result.reason == reason, result.describe()
    assert elapsed < 0.6 + 1.5  # one 0.6 s deadline for the whole probe: not the default 5 s, not for ever


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "src.orchestration.health", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=30)


def test_cli_tells_socat_from_a_logged_in_gateway():
    with running_simulator(login_delay=30) as sim:
        socat = run_cli("--port", str(sim.port), "--timeout", "1")
    with running_simulator() as sim:
        ready = run_cli("--port", str(sim.port), "--timeout", "1")
    assert socat.returncode == 1 and socat.stdout.startswith("UNHEALTHY 127.0.0.1:")
    assert "closed_before_version" in socat.stdout and socat.stdout.count("\n") == 1
    assert ready.returncode == 0 and ready.stdout.startswith("HEALTHY 127.0.0.1:")
    assert "DU123456" in ready.stdout


@pytest.mark.parametrize(("args", "complaint"), [
    (["--port", "70000"], "argument --port: '70000' is not an integer from 1 to 65535"),
    (["--port", "0"], "argument --port: '0' is not an integer from 1 to 65535"),
    (["--port", "http"], "argument --port: 'http' is not an integer from 1 to 65535"),
    (["--timeout", "-1"], "argument --timeout: '-1' is not a number of seconds > 0 and <= 60"),
    (["--timeout", "nan"], "argument --timeout: 'nan' is not a number of seconds > 0 and <= 60"),
    (["--timeout", "1e9"], "argument --timeout: '1e9' is not a number of seconds > 0 and <= 60"),
    (["--client-id", "-5"], "argument --client-id: '-5' is not an integer from 0 to 2147483647"),
    (["--host", "a..b"], "argument --host: 'a..b' is not a host name or IP address"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_cli_usage_errors_are_one_line_and_exit_1_never_2(args, complaint):
    """Exit 2 means "Strategy C" across the project; a bad argument is a failure like any other."""
    done = run_cli(*args)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"python -m src.orchestration.health: error: {complaint} (see --help)\n"


def test_the_simulator_image_holds_everything_the_health_cli_imports(tmp_path):
    """The simulator's Dockerfile copies health.py (and what it imports) into a base with only the standard
    library: copy what its COPY lines name, run the CLI with no site-packages, and it must answer."""
    dockerfile = (REPO_ROOT / "docker" / "simulator" / "Dockerfile").read_text()
    allowed = [line[1:].rstrip("/") for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]  # the build context is an allowlist
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            for pattern in sources:
                assert pattern.rstrip("/") in allowed, f".dockerignore leaves {pattern} out of the build context"
                for source in REPO_ROOT.glob(pattern.rstrip("/")):
                    target = tmp_path / source.relative_to(REPO_ROOT)
                    if source.is_dir():
                        shutil.copytree(source, target, dirs_exist_ok=True)
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy(source, target)
    done = subprocess.run([sys.executable, "-S", "-s", "-E", "-m", "src.orchestration.health", "--port", "1",
                           "--timeout", "0.5"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and done.stdout.startswith("UNHEALTHY 127.0.0.1:1: "), done.stderr


def test_a_gateway_that_lost_ibkr_is_not_healthy_though_its_api_answers():
    """It tells every new client 1100: the probe hears it on its one extra round trip and says why."""
    from src.orchestration.health import IB_LOST, OK, GatewayHealthChecker

    with running_simulator() as sim:
        probe = GatewayHealthChecker("127.0.0.1", sim.port, timeout=5, client_id=0)
        assert probe.check_handshake().reason == OK
        sim.connectivity_lost()
        lost = probe.check_handshake()
        assert lost.reason == IB_LOST and not lost.ok and "1100" in lost.describe()
        sim.connectivity_restored()
        assert probe.check_handshake().reason == OK


def test_account_ids_with_control_characters_reach_no_log_as_they_came():
    from src.orchestration.health import GatewayHealthChecker

    with running_simulator(accounts=("DU1\x1b[31m", "DU2\n")) as sim:
        result = GatewayHealthChecker("127.0.0.1", sim.port, timeout=5, client_id=0).check_handshake()
    assert result.ok and result.accounts == ("DU1?[31m", "DU2")
    assert all(c.isprintable() for c in result.describe())
