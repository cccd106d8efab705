"""Hostile input: each gives one bounded log line, never a traceback, and the next client is served."""

from __future__ import annotations

import logging
import signal
import socket
import struct

import pytest
from ib_async import IB, MarketOrder, Stock

from tests.helpers.simulator import running_simulator
from tests.simulator.test_simulator_ib_async import connect
from tests.simulator.test_simulator_protocol import (
    assert_closed_without_reply,
    connect_client,
    frame,
    open_api,
    recv_fields,
)
from tests.simulator.test_simulator_trading import errors_of, wait_until

LINE_LIMIT = 300  # characters: a line that echoes client data stays short
HUGE = "9" * 5000


def assert_bounded(lines: list[str]) -> None:
    assert lines, "nothing was logged"
    assert all(len(line) <= LINE_LIMIT for line in lines), max(lines, key=len)[:400]
    assert not any("Traceback" in line for line in lines)


def simulator_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    return [r.getMessage() for r in caplog.records if r.name.startswith("src.simulator.") or r.name == "asyncio"]


def still_serving(port: int) -> None:
    with connect_client(port, 77) as sock:
        sock.sendall(frame(49, 1))
        assert recv_fields(sock)[0] == "49"


def versions_frame(text: str) -> bytes:
    return b"API\0" + struct.pack(">I", len(text)) + text.encode()


@pytest.mark.parametrize("versions", [f"v{HUGE}..{HUGE}", f"v100..{HUGE}", f"v{HUGE}", "v1..2", "vX"])
def test_a_hostile_version_range_is_one_bounded_line(versions: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with running_simulator() as sim:
        with socket.create_connection(("127.0.0.1", sim.port), timeout=2) as sock:
            sock.sendall(versions_frame(versions))
            assert_closed_without_reply(sock)
        still_serving(sim.port)
        lines = [line for line in simulator_lines(caplog) if "not the TWS API protocol" in line]
    assert len(lines) == 1
    assert_bounded(lines)


def test_a_client_id_of_thousands_of_digits_is_one_bounded_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with running_simulator() as sim:
        with open_api(sim.port) as sock:
            assert recv_fields(sock)[0] == "178"
            sock.sendall(frame(71, 2, HUGE, ""))
            assert_closed_without_reply(sock)
        still_serving(sim.port)
        lines = [line for line in simulator_lines(caplog) if "startApi" in line]
    assert len(lines) == 1
    assert_bounded(lines)


def test_oversized_fields_get_answers_and_bounded_log_lines(ib: IB, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="src.simulator")  # DEBUG too: it names every request
    huge = "A" * 100_000
    with running_simulator() as sim:
        connect(ib, sim.port)
        errors = errors_of(ib)
        assert ib.qualifyContracts(Stock(huge, "SMART", "USD")) == [None]
        trade = ib.placeOrder(Stock(huge, "SMART", "USD"), MarketOrder(huge, 1, orderRef=huge))
        wait_until(ib, trade.isDone)
        with connect_client(sim.port, 5) as sock:  # unreadable message ids and a huge unknown one
            sock.sendall(frame(huge) + frame(HUGE) + frame(49, 1))
            replies = [recv_fields(sock) for _ in range(3)]
        [order] = sim.orders
        lines = simulator_lines(caplog)
    assert [code for _, code, _ in errors] == [200, 200]
    assert [r[3] if r[0] == "4" else r[0] for r in replies] == ["320", "320", "49"]
    assert all(len(r[4]) < 200 for r in replies[:2])  # the error text does not echo the field either
    assert len(order["symbol"]) < 64 and len(order["action"]) < 64 and len(order["order_ref"]) < 80
    assert any("ORDER received" in line for line in lines)
    assert_bounded(lines)


def test_cli_port_in_use_is_one_line_and_exit_1(run_cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sim = run_cli("--port", str(port))
        lines = sim.finish(timeout=10)
    assert sim.process.returncode == 1
    assert len(lines) == 1, lines
    assert lines[0].rstrip().endswith(f"API: cannot listen on 127.0.0.1:{port}: address already in use")
    assert_bounded(lines)


def test_cli_port_out_of_range_is_a_usage_error(run_cli) -> None:
    sim = run_cli("--port", "70000")  # not wrapped round to 4464, as the socket layer would
    lines = sim.finish(timeout=10)
    assert sim.process.returncode == 2
    assert lines[-1].rstrip().endswith("error: port must be 0..65535, not 70000")
    assert not any("Starting Gateway" in line for line in lines)


def test_cli_hostile_clients_leave_bounded_lines_and_no_traceback(run_cli) -> None:
    sim = run_cli("--log-level", "DEBUG")
    port = sim.port
    sim.wait_for("Configuration tasks completed")
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(versions_frame(f"v{HUGE}..{HUGE}"))
        assert_closed_without_reply(sock)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"API\0" + struct.pack(">I", 0xFFFFFFF))  # a frame bigger than TWS allows
        assert_closed_without_reply(sock)
    with connect_client(port, 3) as sock:
        sock.sendall(frame("x" * 50_000, "y" * 50_000) + frame(9, 8, 1, 0, "Z" * 50_000) + frame(49, 1))
        while recv_fields(sock)[0] != "49":
            pass
    still_serving(port)
    sim.process.send_signal(signal.SIGTERM)
    lines = sim.finish()
    assert sim.process.returncode == 0
    assert_bounded(lines)
    assert sum("not the TWS API protocol" in line for line in lines) == 2
