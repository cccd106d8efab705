"""The simulator's market-data burst (`GatewaySimulator.stream_ticks`), read with raw sockets.

The framing here is written independently of ``src.simulator.protocol`` (as in
test_simulator_protocol.py), so a mistake there cannot hide behind the same mistake here.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest

from src.simulator import GatewaySimulator
from tests.helpers.simulator import running_simulator

TIMEOUT = 5.0


def frame(*fields: object) -> bytes:
    payload = "".join(f"{field}\0" for field in fields).encode()
    return struct.pack(">I", len(payload)) + payload


class Reader:
    """Whole frames from a socket, as lists of fields, with a deadline per read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def fields(self) -> list[str]:
        while True:
            if len(self.buffer) >= 4:
                (length,) = struct.unpack(">I", self.buffer[:4])
                if len(self.buffer) >= 4 + length:
                    payload, self.buffer = self.buffer[4:4 + length], self.buffer[4 + length:]
                    return payload.decode().split("\0")[:-1]
            data = self.sock.recv(1 << 16)
            if not data:
                raise EOFError("the simulator closed the connection")
            self.buffer += data


def client(port: int, client_id: int, receive_buffer: int | None = None) -> tuple[socket.socket, Reader]:
    """A logged-in API client whose greeting (accounts, order id, 3 notices) has been read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    if receive_buffer is not None:  # before connecting: it sets the window the sender sees
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    versions = b"v157..178"
    sock.sendall(b"API\0" + struct.pack(">I", len(versions)) + versions)
    reader = Reader(sock)
    assert reader.fields()[0] == "178"
    sock.sendall(frame(71, 2, client_id, ""))
    greeting = [reader.fields() for _ in range(5)]
    assert [g[0] for g in greeting] == ["15", "9", "4", "4", "4"]
    return sock, reader


def test_a_burst_reaches_its_client_whole_and_in_order_and_no_one_else() -> None:
    count = 5_000
    with running_simulator() as sim:
        sock, reader = client(sim.port, 3)
        other, other_reader = client(sim.port, 4)
        with sock, other:
            sent = sim.stream_ticks(3, count, req_id=42)
            ticks = [reader.fields() for _ in range(count)]
            assert sent.result(TIMEOUT) == count
            other.sendall(frame(49, 1))  # reqCurrentTime: its answer is the first thing the other client gets
            assert other_reader.fields()[0] == "49"
    assert [t[:4] for t in ticks] == [["1", "6", "42", "4"]] * count
    assert [int(t[5]) for t in ticks] == list(range(1, count + 1))  # size = sequence number
    assert {t[6] for t in ticks} == {"0"} and {len(t) for t in ticks} == {7}
    cents = [round(float(t[4]) * 100) for t in ticks]
    assert cents == [10_000 + seq % 1000 for seq in range(1, count + 1)]
    assert ticks[0][4] == "100.01" and ticks[999][4] == "100.00"  # always two decimals


def test_the_session_still_answers_requests_after_a_burst() -> None:
    with running_simulator() as sim:
        sock, reader = client(sim.port, 5)
        with sock:
            assert sim.stream_ticks(5, 3).result(TIMEOUT) == 3
            sock.sendall(frame(8, 1, 1))  # reqIds
            replies = [reader.fields() for _ in range(4)]
    assert [r[0] for r in replies] == ["1", "1", "1", "9"]
    assert [r[2] for r in replies[:3]] == ["1", "1", "1"]  # req_id defaults to 1


def test_a_burst_for_a_client_id_without_a_session_fails_with_lookup_error() -> None:
    with running_simulator() as sim:
        sock, _ = client(sim.port, 6)
        with sock, pytest.raises(LookupError, match="client id 7"):
            sim.stream_ticks(7, 10).result(TIMEOUT)


def test_a_client_that_leaves_during_a_burst_ends_it_with_connection_error() -> None:
    with running_simulator() as sim:
        sock, _ = client(sim.port, 8, receive_buffer=4096)
        sent = sim.stream_ticks(8, 400_000)  # 10 MB, more than the socket buffers hold: it waits for the reader
        sock.close()
        with pytest.raises(ConnectionError):
            sent.result(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while 8 in sim.client_ids:  # the simulator forgot the client: it serves on
            assert time.monotonic() < deadline, "client 8 still registered"
            time.sleep(0.01)
        again, _ = client(sim.port, 8)
        again.close()


def test_a_burst_needs_a_serving_simulator_and_a_count() -> None:
    with pytest.raises(RuntimeError, match="not serving"):
        GatewaySimulator(port=0).stream_ticks(1, 10)
    with running_simulator() as sim, pytest.raises(ValueError, match="negative"):
        sim.stream_ticks(1, -1)
