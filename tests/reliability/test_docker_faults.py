"""Docker faults, through the real CLI: a call that never returns, a socket the user may not use,
a daemon that stops in the middle of the Gateway wait, and a Gateway crash-looping under a restart
policy. Each ends with exit 1, one reason naming the cause, a critical alert, the journal entry,
and nothing left behind: no docker call still running, no bot, the lock released.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.orchestration.gateway.bringup import INSPECT_EVERY
from src.core.locks import PidLock
from src.core.statefiles import CHECKPOINT_FILE, ORCHESTRATOR_LOCK, READY_FILE
from testkit.docker import free_port
from testkit.gateway import SIM_COMPOSE_FILE
from testkit.stack import Run, Stack, wait_until
from tests.helpers.fake_docker import CANNOT_CONNECT, FakeDockerCLI, healthy_daemon, rule
from tests.integration.docker_env import require_docker

NOBODY = 65534
RESTART_ALWAYS = Path(__file__).parent / "compose" / "restart-always.yml"


def assert_failed_cleanly(stack: Stack, run: Run, reason: str) -> None:
    """What the operator sees after a Docker fault: exit 1, the reason everywhere, nothing running."""
    assert run.code == 1, run.stderr
    assert run.record["outcome"] == "failure" and reason in run.record["reason"]
    assert "Traceback" not in run.stderr and reason in run.stderr
    assert run.alerts and "Startup failed" in run.alerts[-1] and reason in run.alerts[-1]
    assert run.record["bot_pid"] is None and not (stack.state_dir / READY_FILE).exists()
    assert PidLock(stack.state_dir / ORCHESTRATOR_LOCK).holder() is None
    assert not (stack.state_dir / CHECKPOINT_FILE).exists()


@pytest.mark.parametrize(("hangs", "limit", "reason"), [
    ("version", "1", "'docker version --format' did not answer within 1 s: is the Docker daemon hung?"),
    ("container inspect", "1", "'docker container inspect' did not answer within 1 s: is the Docker daemon hung?"),
])
def test_a_docker_call_that_never_returns_is_cut_at_its_timeout(world, fake_docker, hangs, limit, reason):
    fake_docker.rules([rule(hangs, sleep=3600), *healthy_daemon()])
    run = world.orchestrate(DOCKER_COMMAND_TIMEOUT=limit)
    assert_failed_cleanly(world, run, f"Docker unavailable: {reason}")
    assert run.path[-2:] == ["DOCKER_UNAVAILABLE", "FAILURE"]
    # the hung call is abandoned at its timeout, not waited out (it sleeps an hour): the state that made
    # it lasted the timeout and a few ~20 ms fake calls, whatever the load
    assert run.record["transitions"][-2]["seconds"] < float(limit) + 4, run.record["transitions"]
    # the world fixture then proves the hung `docker` process was killed, not left sleeping


@pytest.fixture
def denied_socket() -> Iterator[str]:
    """A real Docker-like socket: root:root, mode 660, like docker.sock for a user outside the docker group."""
    directory = tempfile.mkdtemp(prefix="zt-denied-")
    os.chmod(directory, 0o755)
    path = Path(directory) / "docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    os.chmod(path, 0o660)
    try:
        yield f"unix://{path}"
    finally:
        server.close()
        shutil.rmtree(directory)


@pytest.mark.docker
def test_permission_denied_on_the_docker_socket_fails_at_once_with_the_fix(world, fake_docker, denied_socket):
    """The real docker CLI, run as an unprivileged user, meets the kernel's EACCES on the socket."""
    require_docker()
    if os.geteuid() != 0:  # we are already unprivileged: the real CLI can be used as it is
        fake_docker.rules([rule("*", exec_real=True)])
    else:  # root bypasses file modes: only the docker CLI drops to nobody
        fake_docker.rules([rule("*", as_user=NOBODY)])
    run = world.orchestrate(DOCKER_HOST=denied_socket, DOCKER_WAIT_TIMEOUT="30")
    assert_failed_cleanly(world, run, "Docker unavailable: permission denied on the Docker socket: "
                                      "add this user to the 'docker' group")
    # a permission problem is not waited out like a daemon that is starting (DOCKER_WAIT_TIMEOUT is 30 s)
    assert run.record["docker_wait_seconds"] < 10, run.record["docker_wait_seconds"]
    assert fake_docker.count("version") == 1  # asked once
    assert run.path == ["INITIALIZING", "DOCKER_UNAVAILABLE", "FAILURE"]


def test_a_daemon_that_stops_during_the_gateway_wait_fails_without_waiting_for_the_deadline(world, fake_docker):
    """The shared dockerd must not be stopped: a fake daemon stops answering mid-wait instead (and its
    `docker events` stream ends, as a real one does when its daemon dies)."""
    proc = world.launch(GATEWAY_PORT=str(free_port()), GATEWAY_HEALTH_TIMEOUT="60")  # refused: the wait goes on
    started = time.monotonic()
    world.wait_for_state("GATEWAY_WAITING")
    wait_until(lambda: fake_docker.count("events") and fake_docker.count("container inspect") >= 2)
    time.sleep(0.5)  # well into the wait: probes refused, the container inspected, events streaming
    fake_docker.rules([rule("*", stderr=CANNOT_CONNECT + "\n", code=1)])
    stopped = time.monotonic()
    run = world.finish(proc, started)
    assert_failed_cleanly(world, run, "Docker unavailable: the Docker daemon is not running or not reachable")
    assert run.path[-3:] == ["GATEWAY_WAITING", "DOCKER_UNAVAILABLE", "FAILURE"]
    # the safety re-inspection (or the event stream's end), not the 60 s deadline
    assert time.monotonic() - stopped < INSPECT_EVERY + 5
    assert not any(c.line.startswith(("restart ", "start ", "compose up")) for c in fake_docker.calls)


@pytest.mark.docker
def test_a_gateway_crash_looping_under_a_restart_policy_gets_one_restart_then_failure(stack, tmp_path):
    """`restart: always` + a simulator that crashes after 1 s: Docker restarts it forever, the orchestrator once."""
    spy = FakeDockerCLI(tmp_path / "spy", [rule("*", exec_real=True)])  # logs every docker call, Docker answers
    stack.sim = {"login_delay": 3600, "exit_after": 1}
    stack.extra = {"PATH": spy.path_with(), "COMPOSE_FILE": f"{SIM_COMPOSE_FILE}{os.pathsep}{RESTART_ALWAYS}"}
    run = stack.orchestrate(GATEWAY_HEALTH_TIMEOUT="30")  # the wrong answer, waiting a crash out, is 30 s
    assert_failed_cleanly(stack, run, "after one restart: operator needed")
    assert run.path.count("GATEWAY_UNHEALTHY") == 2 and run.path[-2:] == ["GATEWAY_TIMEOUT", "FAILURE"]
    # each wait ends at a crash (one every second or so; Docker's own quick restart may hide the first
    # from a look), not at the 30 s deadline
    assert all(seconds < 20 for seconds in run.seconds_in("GATEWAY_WAITING")), run.seconds_in("GATEWAY_WAITING")
    lifecycle = [c.line for c in spy.calls if c.line.startswith(("compose up", "start ", "restart ", "stop "))]
    assert len(lifecycle) == 2, lifecycle  # the create, then exactly one restart: no restart storm
    assert sum("the one automatic restart" in a for a in run.alerts) == 1
