"""The production Compose layout with the simulator: the order firewall is the only way to the Gateway.

Real Docker Engine and Compose v2 (testkit.gateway.SimGateway): `apinet` publishes the firewall on
127.0.0.1:GATEWAY_PORT, the simulator listens in the shared namespace behind it. What counts is what
reached the simulator: its own log line for every order it received (`API: ORDER received: ...`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from ib_async import IB, MarketOrder, Stock

from src.core.statefiles import FIREWALL_DECISIONS_FILE
from src.tws import wire
from testkit.docker import container_state, docker
from testkit.gateway import SimGateway
from testkit.plans import put_in_force
from testkit.stack import wait_until
from tests.integration.docker_env import new_project, require_docker

pytestmark = pytest.mark.docker

ACCOUNT = "DU123456"
SYNCED = "Firewall session synced"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[SimGateway]:
    require_docker()
    put_in_force(tmp_path)  # today's Strategy A plan: SPY, QQQ, BRK.B
    gw = SimGateway(project=new_project(), state_dir=tmp_path, sim={"login_delay": 0})
    try:
        gw.up(60)
        wait_until(lambda: SYNCED in firewall_log(gw), 20, "the firewall's own session to sync")
        yield gw
    finally:
        gw.down()


def firewall_log(gw: SimGateway) -> str:
    return docker("logs", gw.firewall, check=False, timeout=30).stdout


def received(gw: SimGateway) -> list[tuple[str, str, str, str]]:
    """(client id, action, quantity, symbol) of every order the simulator received."""
    return re.findall(r"API: ORDER received: client (\d+) order \d+ (\w+) (\S+) (\S+)", gw.logs())


def decisions(gw: SimGateway) -> list[dict[str, object]]:
    path = gw.state_dir / FIREWALL_DECISIONS_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def namespace_address(gw: SimGateway) -> str:
    """The address of the namespace the simulator and the firewall share, as the host sees it."""
    return docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                  gw.network).stdout.strip()


def place(port: int, symbol: str, host: str = "127.0.0.1", client_id: int = 1) -> None:
    ib = IB()
    ib.connect(host, port, clientId=client_id, timeout=10)
    try:
        order = MarketOrder("BUY", 1)
        order.account = ACCOUNT
        ib.placeOrder(Stock(symbol, "SMART", "USD"), order)
        ib.sleep(0.3)
    finally:
        ib.disconnect()


def drained(sock: socket.socket) -> str:
    """Read until the peer closes the connection (or resets it)."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return "closed"


def test_only_the_firewall_reaches_the_gateway(gateway: SimGateway) -> None:
    address = namespace_address(gateway)
    assert address
    # every other way in: the Gateway's API ports (paper, live) and the image's old relay ports, on the
    # namespace's address, which the host can route to
    for port in (4002, 4001, 4004, 4003):
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=3).close()
    place(gateway.port, "SPY")  # allowed by the plan
    place(gateway.port, "TSLA")  # not in the plan: refused
    place(4000, "TSLA", host=address)  # the firewall on the namespace's address judges the same
    wait_until(lambda: len(decisions(gateway)) == 3, 10, "three decisions journalled")
    assert [d["decision"] for d in decisions(gateway)] == ["allowed", "refused", "refused"]
    wait_until(lambda: received(gateway), 10, "the allowed order at the simulator")
    assert received(gateway) == [("1", "BUY", "1", "SPY")]


def test_a_crashed_firewall_fails_closed_and_docker_brings_it_back(gateway: SimGateway) -> None:
    bot = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)  # a bot's session, mid-day
    bot.sendall(wire.opening(157, 178) + wire.start_api(1))
    assert bot.recv(4096)  # the Gateway's answer, through the firewall
    pid = int(docker("inspect", "--format", "{{.State.Pid}}", gateway.firewall).stdout)
    os.kill(pid, signal.SIGKILL)  # a crash (not `docker kill`): the restart policy applies
    # the bot's connection ends with the firewall: nothing it sends can reach the Gateway
    assert drained(bot) == "closed"
    restarts = lambda: int(docker("inspect", "--format", "{{.RestartCount}}", gateway.firewall).stdout)  # noqa: E731
    wait_until(lambda: restarts() >= 1 and (container_state(gateway.firewall) or {}).get("Status") == "running",
               20, "Docker to restart the firewall")
    wait_until(lambda: firewall_log(gateway).count(SYNCED) >= 2, 20,  # docker logs keeps the first run's lines
               "the restarted firewall synced")
    place(gateway.port, "SPY")
    wait_until(lambda: len(received(gateway)) == 1, 10, "the order through the restarted firewall")
    assert received(gateway) == [("1", "BUY", "1", "SPY")]
    assert [d["decision"] for d in decisions(gateway)] == ["allowed"]  # judged, and journalled across the crash
