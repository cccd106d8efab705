"""Whatever answers on the Gateway's API port, only a logged-in TWS API server counts as the Gateway.

Hostile listeners stand on GATEWAY_PORT (one that never answers, one that answers garbage, one
announcing a 4 GB frame, an unrelated HTTP server) while Docker says the Gateway container is
running: the orchestrator trusts the handshake, not the container, and each probe stays bounded.
With real Docker, a port already held by an unrelated process stops the Gateway from starting.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from testkit.docker import container_state, free_port
from testkit.stack import Run, wait_until
from tests.helpers.listeners import accept_and_stay_silent, answer_absurd_frame, answer_garbage, tcp_listener

TIMEOUT = 1.5  # GATEWAY_HEALTH_TIMEOUT per attempt


@pytest.fixture
def unrelated_server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A real unrelated process (Python's HTTP server) holding a 127.0.0.1 port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: any(c.laddr.port == port for c in psutil.Process(proc.pid).net_connections()),
                   10, "the HTTP server to listen")
        yield port, proc
    finally:
        proc.kill()
        proc.wait()


def assert_never_healthy(run: Run, verdict: str, waits: int = 2) -> None:
    """Exit 1 after one restart (a logged-in Gateway's IBC soft restart first: one wait more), the probe's
    verdict in the reason, every wait on its deadline."""
    assert run.code == 1, run.stderr
    assert run.path.count("GATEWAY_WAITING") == waits and run.path[-2:] == ["GATEWAY_TIMEOUT", "FAILURE"]
    assert verdict in run.record["reason"] and "after one restart" in run.record["reason"]
    # on its deadline: the last probe may end 0.5 s past it by design; a probe that ignored
    # HEALTH_CHECK_TIMEOUT=1 (the default is 5 s) or hung on the listener would end far later
    assert all(w <= TIMEOUT + 2.0 for w in run.seconds_in("GATEWAY_WAITING")), run.seconds_in("GATEWAY_WAITING")
    assert run.record["bot_pid"] is None
    assert "Startup failed" in run.alerts[-1] and verdict in run.alerts[-1]


@pytest.mark.parametrize(("behaviour", "verdict"), [
    (accept_and_stay_silent, "no_reply: the version reply not received before the probe timeout"),
    (answer_garbage, "protocol_error: absurd frame length 1213486160 bytes"),  # b"HTTP" read as a length
    (answer_absurd_frame, "protocol_error: absurd frame length 4294967295 bytes"),
], ids=["accepts-never-answers", "garbage", "4GB-frame"])
def test_a_hostile_listener_on_the_api_port_is_never_the_gateway(world, behaviour, verdict):
    with tcp_listener(behaviour) as port:
        run = world.orchestrate(GATEWAY_PORT=str(port), GATEWAY_HEALTH_TIMEOUT=str(TIMEOUT))
    assert_never_healthy(run, verdict)


def test_an_unrelated_process_on_the_api_port_is_never_the_gateway_and_is_left_alone(world, unrelated_server):
    port, server = unrelated_server
    run = world.orchestrate(GATEWAY_PORT=str(port), GATEWAY_HEALTH_TIMEOUT=str(TIMEOUT))
    assert_never_healthy(run, "no_reply")  # it waits for an HTTP request line that never comes
    assert server.poll() is None  # not killed, not disturbed


@pytest.mark.docker
def test_a_healthy_gateway_container_does_not_make_a_silent_port_healthy(stack):
    """The real simulator container is up and `healthy` on its own port; GATEWAY_PORT is a silent listener."""
    stack.up()
    with tcp_listener(accept_and_stay_silent) as port:
        run = stack.orchestrate(GATEWAY_PORT=str(port), GATEWAY_HEALTH_TIMEOUT=str(TIMEOUT),
                                HEALTH_CHECK_TIMEOUT="1")
    assert_never_healthy(run, "no_reply", waits=3)  # the Gateway logged in: IBC's soft restart came first
    assert run.record["soft_restart"]["answer"] == "OK RESTART in progress"
    assert container_state(stack.container)["Health"]["Status"] in ("healthy", "starting")


@pytest.mark.docker
def test_a_port_held_by_an_unrelated_process_stops_the_gateway_from_starting(stack, unrelated_server):
    port, server = unrelated_server
    stack.port = port  # Compose publishes the Gateway there: Docker cannot bind it
    run = stack.orchestrate()
    assert run.code == 1, run.stderr
    assert run.path[-2:] == ["GATEWAY_STARTING", "FAILURE"]
    assert "the Gateway could not be started" in run.record["reason"]
    assert "address already in use" in run.record["reason"] or "port is already allocated" in run.record["reason"]
    assert "Startup failed" in run.alerts[-1] and run.record["bot_pid"] is None
    assert server.poll() is None
