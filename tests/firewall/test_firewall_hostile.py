"""Hostile clients against the firewall in front of the simulator.

Each test lets one misbehaving client at the firewall (garbage instead of the opening, versions out
of range, absurd frame lengths, a silent connection, truncated or padded placeOrders, a client that
asks for much and reads nothing), then checks that (i) a well-behaved ib_async client still connects
through the same firewall and its order reaches the simulator, and (ii) nothing else reached the
simulator: `sim.orders` holds the good order only. Every socket has a timeout; nothing loops unbounded.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ib_async import IB, MarketOrder, Stock

from src.simulator.server import GatewaySimulator
from src.tws import wire
from testkit.firewall import FirewallThread, running_firewall
from testkit.plans import put_in_force
from tests.helpers.simulator import running_simulator

ACCOUNT = "DU123456"
BOT = 1
VERSION = wire.MAX_TEXT_VERSION
TIMEOUT = 5.0


@dataclass
class Served:
    sim: GatewaySimulator
    fw: FirewallThread


@contextmanager
def served(tmp_path: Path, **sim: Any) -> Iterator[Served]:
    put_in_force(tmp_path)
    with running_simulator(**sim) as simulator, running_firewall(simulator.port, tmp_path) as fw:
        yield Served(simulator, fw)


def wait(condition: Callable[[], object], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def closed_by_peer(sock: socket.socket, timeout: float = TIMEOUT) -> bool:
    """True once the peer closes (EOF or reset), reading and dropping whatever it sent before."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(1 << 16):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False


class Frames:
    """The frames a raw client receives, read with a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = wire.FrameBuffer()

    def until(self, want: Callable[[list[str]], bool], timeout: float = TIMEOUT) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            while (payload := self.buffer.next_payload()) is not None:
                fields = wire.fields_of(payload)
                if fields and want(fields):
                    return fields
            left = deadline - time.monotonic()
            assert left > 0, "no such message in time"
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 16)
            assert data, "the firewall closed the connection"
            self.buffer.feed(data)


def handshake(sock: socket.socket, client_id: int) -> Frames:
    """A valid opening and startApi; returns once the session is up (nextValidId arrived)."""
    frames = Frames(sock)
    sock.sendall(wire.opening(157, VERSION))
    assert frames.until(lambda f: True)[0] == str(VERSION)
    sock.sendall(wire.start_api(client_id))
    frames.until(lambda f: f[0] == str(wire.NEXT_VALID_ID))
    return frames


def place_order_fields(order_id: int) -> list[str]:
    """BUY 1 SPY for ACCOUNT, as ib_async's Client serializes it at VERSION (see tests/tws/test_orders.py)."""
    from ib_async.client import Client

    client = Client(object())
    client._serverVersion = VERSION
    client.connState = Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append  # type: ignore[method-assign]
    client.placeOrder(order_id, Stock("SPY", "SMART", "USD"), MarketOrder("BUY", 1, account=ACCOUNT))
    [message] = sent
    return message.split("\0")[:-1]


def good_client_works(s: Served) -> None:
    """(i) an ib_async bot connects through the firewall and its order reaches the simulator;
    (ii) it is the only order that did."""
    wait(lambda: BOT not in s.sim.client_ids)
    ib = IB()
    try:
        ib.connect("127.0.0.1", s.fw.port, clientId=BOT, timeout=TIMEOUT)
        ib.placeOrder(Stock("SPY", "SMART", "USD"), MarketOrder("BUY", 1, account=ACCOUNT))
        wait(lambda: ib.sleep(0.01) or s.sim.orders)
        ib.sleep(0.1)
    finally:
        ib.disconnect()
    assert [(o["client_id"], o["action"], o["quantity"], o["symbol"], o["account"]) for o in s.sim.orders] == \
        [(BOT, "BUY", 1.0, "SPY", ACCOUNT)]


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\0\0\0\x05hello", b"APIX" + b"\0" * 64,
                                     b"\xff" * 4096], ids=["http", "frame-first", "api-typo", "binary"])
def test_garbage_instead_of_the_opening_closes_that_connection_only(tmp_path: Path, garbage: bytes) -> None:
    with served(tmp_path) as s:
        sock = raw(s.fw.port)
        try:
            sock.sendall(garbage)
            assert closed_by_peer(sock)
        finally:
            sock.close()
        good_client_works(s)


@pytest.mark.parametrize("versions", [(1, 50), (200, 210), (179, 300), (0, 0)])
def test_an_opening_with_versions_outside_the_firewalls_range_is_closed(tmp_path: Path,
                                                                       versions: tuple[int, int]) -> None:
    with served(tmp_path) as s:
        sock = raw(s.fw.port)
        try:
            sock.sendall(wire.opening(*versions))
            assert closed_by_peer(sock)
        finally:
            sock.close()
        good_client_works(s)


@pytest.mark.parametrize("length", [0xFFFFFFFF, (2 << 20)], ids=["4GiB-length", "2MiB-frame"])
def test_a_frame_over_the_client_limit_closes_that_connection(tmp_path: Path, length: int) -> None:
    with served(tmp_path) as s:
        sock = raw(s.fw.port)
        try:
            handshake(sock, client_id=7)
            body = b"9\0" + b"A" * min(length - 2, (2 << 20) - 2) if length == (2 << 20) else b"9\0"
            try:
                sock.sendall(struct.pack(">I", length) + body)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass  # closed (or no longer read) while we were still writing: as good
            assert closed_by_peer(sock)
        finally:
            sock.close()
        good_client_works(s)


def test_a_half_open_connection_that_sends_nothing_does_not_block_others(tmp_path: Path) -> None:
    with served(tmp_path) as s:
        silent = raw(s.fw.port)
        half = raw(s.fw.port)
        try:
            half.sendall(b"AP")  # part of the prefix, then nothing
            good_client_works(s)  # while both are still open
            assert not closed_by_peer(silent, 0.05)
        finally:
            silent.close()
            half.close()


@pytest.mark.parametrize("change", ["truncated", "one-field-short", "extra-field", "extra-empty-field"])
def test_a_placeorder_that_cannot_be_read_completely_is_refused_with_201(tmp_path: Path, change: str) -> None:
    order_id = 41
    fields = place_order_fields(order_id)
    fields = {"truncated": fields[:30], "one-field-short": fields[:-1], "extra-field": [*fields, "1"],
              "extra-empty-field": [*fields, ""]}[change]
    with served(tmp_path) as s:
        sock = raw(s.fw.port)
        try:
            frames = handshake(sock, client_id=BOT)
            sock.sendall(wire.encode(*fields))
            error = frames.until(lambda f: f[0] == str(wire.ERR_MSG) and f[2] == str(order_id))
            assert error[3] == str(wire.ORDER_REJECTED) and "cannot be read" in error[4]
            time.sleep(0.1)
            assert s.sim.orders == []
            [decision] = s.fw.decisions()
            assert decision["decision"] == "refused" and str(decision["order_id"]) == str(order_id)
        finally:
            sock.close()
        good_client_works(s)


def test_a_client_that_asks_for_much_and_reads_nothing_does_not_stall_others(tmp_path: Path) -> None:
    """A slow reader: thousands of contract-details and snapshot requests, its socket never read."""
    with served(tmp_path) as s:
        slow = raw(s.fw.port)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            handshake(slow, client_id=7)
            requests = bytearray()
            for req_id in range(1, 3001):
                requests += wire.encode(wire.REQ_CONTRACT_DATA, 8, req_id, 0, "SPY", "STK", "", 0.0, "", "", "SMART",
                                        "", "USD", "", "", 0, "", "", "")
                if req_id % 10 == 0:  # reqMktData snapshot: 1, 11, reqId, contract, no combo, no DNC, ticks, snapshot
                    requests += wire.encode(wire.REQ_MKT_DATA, 11, 100_000 + req_id, 0, "SPY", "STK", "", 0.0, "",
                                            "", "SMART", "", "USD", "", "", 0, 0, "", 1, 0, "")
            slow.settimeout(TIMEOUT)
            sent = 0
            deadline = time.monotonic() + TIMEOUT
            while sent < len(requests) and time.monotonic() < deadline:  # the firewall may stop reading us
                try:
                    sent += slow.send(requests[sent:sent + 65536])
                except TimeoutError:
                    break
            time.sleep(0.3)  # let the replies pile up against the unread socket
            good_client_works(s)
            assert s.fw.firewall.counts["connections"] >= 2
        finally:
            slow.close()
