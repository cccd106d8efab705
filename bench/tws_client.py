"""A raw TWS API client for the firewall benchmark: one blocking socket, frames read with `src.tws.wire`.

TCP_NODELAY, no event loop, in the caller's thread: its own cost is small and the same whether it talks to
the simulator directly or through the firewall. It does what the benchmark times: the handshake, an order's
round trip (placeOrder → orderStatus, then cancelOrder → Cancelled), and reading a numbered market-data burst.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from src.tws import wire

ACCOUNT = "DU123456"
CLIENT_VERSIONS = (157, wire.MAX_TEXT_VERSION)  # what ib_async announces
TIMEOUT = 10.0  # seconds for any one answer
QUIET = 2.0  # a burst whose messages stopped coming for this long, once all were sent, is over
READ_SIZE = 1 << 20


def _serialized(call: Callable[[Any], None], version: int) -> list[str]:
    """The fields ib_async's Client writes for `call(client)` at server `version` (nothing is sent)."""
    from ib_async.client import Client

    client = Client(object())  # type: ignore[arg-type]
    client._serverVersion = version
    client.connState = Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append  # type: ignore[method-assign]
    call(client)
    [message] = sent
    return message.split("\0")[:-1]


class RawClient:
    """One API connection on a blocking socket; frames read with `src.tws.wire.FrameBuffer`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.frames = wire.FrameBuffer()
        self.version = 0
        self.next_order_id = 0
        self._place: list[str] = []
        self._cancel: list[str] = []

    def close(self) -> None:
        self.sock.close()

    def next_payload(self, deadline: float) -> bytes:
        while (payload := self.frames.next_payload()) is None:
            self._read(deadline)
        return payload

    def until(self, prefixes: tuple[bytes, ...], deadline: float) -> bytes:
        """The first frame whose payload starts with one of `prefixes` (frames before it dropped)."""
        while True:
            while (payload := self.frames.next_payload()) is not None:
                if payload.startswith(prefixes):
                    return payload
            self._read(deadline)

    def _read(self, deadline: float) -> None:
        if time.perf_counter() > deadline:
            raise TimeoutError("no answer in time")
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise ConnectionError("the peer closed the connection")
        self.frames.feed(data)

    # --- orders -----------------------------------------------------------------------------------------

    def prepare_orders(self) -> None:
        """The placeOrder and cancelOrder fields ib_async writes at this session's version."""
        from ib_async import LimitOrder, Stock

        order = LimitOrder("BUY", 1, 1.0, account=ACCOUNT)
        self._place = _serialized(lambda c: c.placeOrder(0, Stock("SPY", "SMART", "USD"), order), self.version)
        self._cancel = _serialized(lambda c: c.cancelOrder(0), self.version)

    def round_trip(self) -> dict[str, Any]:
        """placeOrder → its first orderStatus; then cancelOrder → orderStatus Cancelled, then error 202."""
        order_id = self.next_order_id
        self.next_order_id += 1
        place = self._place.copy()
        place[1] = str(order_id)
        cancel = self._cancel.copy()
        cancel[2] = str(order_id)
        place_frame, cancel_frame = wire.encode(*place), wire.encode(*cancel)
        key = str(order_id).encode()
        status, refused = b"3\0" + key + b"\0", b"4\x002\x00" + key + b"\0"
        start = time.perf_counter()
        self.sock.sendall(place_frame)
        first = self.until((status, refused), start + TIMEOUT)
        placed = time.perf_counter()
        fields = wire.fields_of(first)
        sample: dict[str, Any] = {"order_id": order_id, "seconds": placed - start}
        if first.startswith(refused):
            return {**sample, "error": f"order {order_id} refused: error {fields[3]} {wire.clip(fields[4], 200)}"}
        sample["status"] = fields[2]
        start = time.perf_counter()
        self.sock.sendall(cancel_frame)
        cancelled = wire.fields_of(self.until((status, refused), start + TIMEOUT))
        sample["cancel_seconds"] = time.perf_counter() - start
        if cancelled[0] == "4":
            return {**sample, "error": f"cancel of {order_id}: error {cancelled[3]} {wire.clip(cancelled[4], 200)}"}
        sample["cancel_status"] = cancelled[2]
        self.until((refused,), time.perf_counter() + TIMEOUT)  # 202 "Order Canceled": nothing left in flight
        ok = sample["status"] == "Submitted" and sample["cancel_status"] == "Cancelled"
        return sample if ok else {**sample, "error": f"order {order_id}: statuses {sample['status']}, "
                                                     f"{sample['cancel_status']}"}

    # --- a market-data burst ----------------------------------------------------------------------------

    def read_burst(self, req_id: int, count: int, sent: Future[int], called: float) -> dict[str, Any]:
        """Read the burst's ticks (`sent`: the simulator's future, returned at `called`) and check their
        sequence numbers; timed from the read that brought the first tick to the last tick read."""
        prefix = f"1\0{6}\0{req_id}\0".encode()
        seen = bytearray(count + 2)
        received = reordered = duplicates = highest = 0
        first_at: float | None = None
        last_at = called
        deadline = called + 30.0 + count / 10_000
        self.sock.settimeout(0.25)
        try:
            while received < count:
                try:
                    data = self.sock.recv(READ_SIZE)
                except TimeoutError:
                    now = time.perf_counter()
                    if now > deadline or (sent.done() and now - last_at > QUIET):
                        break
                    continue
                read_at = time.perf_counter()
                if not data:
                    raise ConnectionError("the peer closed the connection during the burst")
                if first_at is None and received == 0:
                    first_at = read_at  # corrected below if this read held none of the burst
                self.frames.feed(data)
                _, payloads = self.frames.take()
                for payload in payloads:
                    if not payload.startswith(prefix):
                        continue
                    seq = int(payload.split(b"\0", 6)[5])
                    if not 0 < seq <= count or seen[seq]:
                        duplicates += 1
                        continue
                    seen[seq] = 1
                    received += 1
                    if seq < highest:
                        reordered += 1
                    else:
                        highest = seq
                if received == 0:
                    first_at = None
                last_at = time.perf_counter()
        finally:
            self.sock.settimeout(TIMEOUT)
        seconds = last_at - first_at if first_at is not None else None
        sample = {"messages": count, "received": received, "lost": count - received, "reordered": reordered,
                  "duplicates": duplicates, "seconds": seconds,
                  "per_second": received / seconds if seconds else None,
                  "first_after_s": first_at - called if first_at is not None else None}
        try:
            sample["sent"] = sent.result(QUIET)  # handed to the socket: done once the last drain returned
        except Exception as exc:  # noqa: BLE001 (the simulator's failure is this sample's error)
            sample["error"] = f"the simulator's burst: {type(exc).__name__}: {exc}"
        return sample


def handshake(port: int, client_id: int) -> tuple[float, RawClient]:
    """Connect, open, startApi; the seconds until nextValidId and managedAccounts were both read."""
    start = time.perf_counter()
    deadline = start + TIMEOUT
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    client = RawClient(sock)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(wire.opening(*CLIENT_VERSIONS))
        hello = wire.fields_of(client.next_payload(deadline))
        sock.sendall(wire.start_api(client_id))
        seen: set[int | None] = set()
        while not {wire.NEXT_VALID_ID, wire.MANAGED_ACCTS} <= seen:
            payload = client.next_payload(deadline)
            kind = wire.message_id(payload)
            seen.add(kind)
            if kind == wire.NEXT_VALID_ID:
                client.next_order_id = int(wire.fields_of(payload)[2])
        seconds = time.perf_counter() - start
        client.version = int(hello[0])
    except BaseException:
        client.close()
        raise
    return seconds, client
