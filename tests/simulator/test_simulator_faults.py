"""Runtime faults for the bot's new states: a frozen API, lost connectivity (1100, 1101/1102), broken
farms, dropped clients, a closed API; in process, through the CLI, and in a real container.

In process each fault is a method called from the test's thread while the simulator serves
in its own; through the CLI and Compose it is a timed outage (--outage-after/-for/-kind).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time

import pytest
from ib_async import IB, MarketOrder, Stock

from src.simulator import GatewaySimulator
from testkit.docker import wait_for_health
from tests.helpers.simulator import running_simulator
from tests.integration.docker_env import simulator_gateway
from tests.simulator.test_simulator_ib_async import connect
from tests.simulator.test_simulator_protocol import (
    assert_closed_without_reply,
    connect_client,
    frame,
    open_api,
    recv_fields,
    start_api,
)
from tests.simulator.test_simulator_trading import errors_of, wait_until

FARMS_OK, FARMS_BROKEN = [2104, 2106, 2158], [2103, 2105, 2157]


def current_time_within(ib: IB, seconds: float) -> object:
    """reqCurrentTime, given up after ``seconds`` (ib_async's own call would wait for ever)."""
    return ib.run(asyncio.wait_for(ib.reqCurrentTimeAsync(), seconds))


def codes(errors: list[tuple[int, int, str]]) -> list[int]:
    return [code for _, code, _ in errors]


def test_freeze_keeps_connections_open_and_answers_nothing_until_unfrozen(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        sim.freeze()
        with pytest.raises(asyncio.TimeoutError):
            current_time_within(ib, 0.5)
        assert ib.isConnected()  # the TCP connection is open: only the answers stopped
        with open_api(sim.port, timeout=0.3) as newcomer:  # accepted, and silent
            with pytest.raises(TimeoutError):
                newcomer.recv(1024)
            newcomer.settimeout(5)
            sim.unfreeze()
            assert recv_fields(newcomer)[0] == "178"  # what was held moves on
        assert current_time_within(ib, 5)


def test_connectivity_lost_then_restored_reaches_error_event_and_held_requests_complete(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        errors = errors_of(ib)
        sim.connectivity_lost()
        wait_until(ib, lambda: 1100 in codes(errors))
        assert current_time_within(ib, 5)  # the Gateway itself still answers (at once: 5 s is a look, not a bound)
        details = asyncio.ensure_future(ib.reqContractDetailsAsync(Stock("SPY", "SMART", "USD")))
        trade = ib.placeOrder(Stock("SPY", "SMART", "USD"), MarketOrder("BUY", 5))
        wait_until(ib, lambda: sim.orders)  # the order reached the Gateway ...
        ib.sleep(0.3)
        assert not details.done() and trade.orderStatus.status == "PendingSubmit"  # ... but not IB
        sim.connectivity_restored()
        wait_until(ib, lambda: details.done() and trade.isDone())
    assert codes(errors) == [1100, 1102]
    assert errors[1][2] == "Connectivity between IB and Trader Workstation has been restored - data maintained."
    assert len(details.result()) == 1 and trade.orderStatus.status == "Filled"


def test_restored_with_data_lost_is_1101_and_new_clients_hear_of_the_loss(ib: IB) -> None:
    with running_simulator() as sim:
        sim.connectivity_lost()
        errors = errors_of(ib)
        connect(ib, sim.port)  # connecting while IB is unreachable works, with a 1100 in the greeting
        sim.connectivity_restored(data_lost=True)
        wait_until(ib, lambda: 1101 in codes(errors))
    assert codes(errors) == [1100, *FARMS_OK, 1101]


def test_farm_notices(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        errors = errors_of(ib)
        sim.farm_broken()
        wait_until(ib, lambda: len(errors) == 3)
        sim.farm_ok()
        wait_until(ib, lambda: len(errors) == 6)
        assert current_time_within(ib, 5)  # notices only: requests are still answered
    assert codes(errors) == FARMS_BROKEN + FARMS_OK
    assert errors[0][2] == "Market data farm connection is broken:usfarm"


def greeting_notices(port: int) -> list[int]:
    with start_api(port, 1) as sock:
        greeting = [recv_fields(sock) for _ in range(5)]
    assert [m[0] for m in greeting] == ["15", "9", "4", "4", "4"]
    return [int(m[3]) for m in greeting[2:]]


def test_new_clients_get_broken_farm_notices_in_their_greeting() -> None:
    with running_simulator() as sim:
        sim.farm_broken()
        assert greeting_notices(sim.port) == FARMS_BROKEN
        sim.farm_ok()
        assert greeting_notices(sim.port) == FARMS_OK


def test_a_fault_called_before_start_applies_once_serving() -> None:
    sim = GatewaySimulator(port=0)
    sim.farm_broken()  # no event loop yet: the state is set at once
    with sim:
        assert greeting_notices(sim.port) == FARMS_BROKEN


def test_drop_clients_closes_every_connection_and_serves_new_ones(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        dropped = []
        ib.disconnectedEvent += lambda: dropped.append(True)
        sim.drop_clients()
        with pytest.raises(ConnectionError):  # ib_async's blocking calls raise when the peer closes
            wait_until(ib, lambda: False)
        assert dropped and not ib.isConnected()
        connect(ib, sim.port)
        assert current_time_within(ib, 5)


def test_a_closed_api_closes_connections_on_accept_until_opened() -> None:
    with running_simulator() as sim:
        first = connect_client(sim.port, 1)
        sim.close_api()
        with first:
            assert first.recv(1024) == b""
        with open_api(sim.port) as sock:
            assert_closed_without_reply(sock)
        sim.open_api()
        with connect_client(sim.port, 1) as sock:
            sock.sendall(frame(49, 1))
            assert recv_fields(sock)[0] == "49"


# --- timed outages ------------------------------------------------------------------------------


def test_a_timed_ib_lost_outage_sends_1100_then_1102_after_its_duration(ib: IB) -> None:
    # the outage starts 2 s in, so the client is connected before it even on a busy machine: its 1100
    # then comes when the outage starts, not in the greeting, and the gap to 1102 is the outage's length
    with running_simulator(outage_after=2.0, outage_for=0.6, outage_kind="ib-lost") as sim:
        errors = errors_of(ib)
        seen: dict[int, float] = {}
        ib.errorEvent += lambda req_id, code, text, contract: seen.setdefault(code, time.monotonic())
        connect(ib, sim.port)
        assert 1100 not in seen, "connected after the outage had started"
        wait_until(ib, lambda: 1102 in seen, timeout=15)
    assert [c for c in codes(errors) if c > 1000 and c < 2000] == [1100, 1102]
    assert seen[1102] - seen[1100] >= 0.55


@pytest.mark.parametrize("bad", [
    {"outage_after": 1},  # without a duration
    {"outage_for": 1},
    {"outage_after": -1, "outage_for": 1},
    {"outage_after": 1, "outage_for": 1, "outage_kind": "meteor"},
    {"fills": "sometimes"},
])
def test_invalid_fault_arguments_are_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        GatewaySimulator(**bad)


def read_until_code(sock: socket.socket, code: str, timeout: float = 5.0) -> list[list[str]]:
    """Messages read until an error/notice with ``code`` (included)."""
    sock.settimeout(timeout)
    messages = []
    while True:
        messages.append(recv_fields(sock))
        if messages[-1][:1] == ["4"] and messages[-1][3] == code:
            return messages


def test_cli_freeze_outage(run_cli) -> None:
    # 2 s in, 2 s long: connected before it, and still frozen when the test looks, on a busy machine too
    sim = run_cli("--outage-after", "2", "--outage-for", "2", "--outage-kind", "freeze")
    port = sim.port
    with connect_client(port, 1) as sock:
        read_until_code(sock, "1100")
        sim.wait_for("API: frozen")
        sock.sendall(frame(49, 1))
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1024)
        sock.settimeout(5)
        seen = []  # on the thaw: the held request's answer and 1102, in either order, and nothing else
        while not {"49", "1102"} <= set(seen):
            message = recv_fields(sock)
            seen.append(message[3] if message[0] == "4" else message[0])
        assert sorted(seen) == ["1102", "49"]
    sim.wait_for("API: simulated outage (freeze) ends")
    sim.process.send_signal(signal.SIGTERM)
    assert sim.process.wait(timeout=5) == 0


def test_cli_closed_outage_from_the_environment(run_cli) -> None:
    # 2 s in, 2 s long: connected before it, and still closed when the test looks, on a busy machine too
    sim = run_cli(env={"SIM_OUTAGE_AFTER": "2", "SIM_OUTAGE_FOR": "2", "SIM_OUTAGE_KIND": "closed"})
    port = sim.port
    with connect_client(port, 1) as sock:
        read_until_code(sock, "1100")
        assert sock.recv(1024) == b""  # then the connection is closed
    with open_api(port) as sock:
        assert_closed_without_reply(sock)
    sim.wait_for("API: simulated outage (closed) ends", timeout=5)
    with connect_client(port, 1) as sock:
        sock.sendall(frame(49, 1))
        assert recv_fields(sock)[0] == "49"


def test_cli_outage_needs_both_flags(run_cli) -> None:
    sim = run_cli("--outage-after", "1")
    assert sim.process.wait(timeout=5) == 2


@pytest.mark.docker
def test_in_a_real_container_an_ib_lost_outage_reaches_ib_async(ib: IB) -> None:
    """SIM_OUTAGE_* pass through the Compose override: 1100, then 1102, seen by a client on the host."""
    with simulator_gateway(wait_healthy=False, outage_after=10, outage_for=3, outage_kind="ib-lost") as gw:
        wait_for_health(gw.container, timeout=60)
        gw.wait_serving(30)  # the whole path: through the order firewall, once its own session is synced
        errors = errors_of(ib)
        connect(ib, gw.port)
        wait_until(ib, lambda: 1102 in codes(errors), timeout=40)
        assert current_time_within(ib, 5)
    assert [c for c in codes(errors) if 1000 < c < 2000] == [1100, 1102]
