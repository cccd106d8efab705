"""The firewall's own API session with the Gateway: the Gateway's view that the rules read.

It logs in with its own client id and keeps, in the shared `Book`: every position (a
subscription, refreshed as a snapshot after fills), every open order (a snapshot, refreshed while
relayed orders are working), each plan symbol's conId, the managed accounts and whether 1100
(connectivity to IBKR lost) is in force. A reqCurrentTime heartbeat notices a Gateway that stopped
answering. `synced` is True only while connected, answering, and both snapshots have arrived since
the connection began: until then the rules refuse every order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from src.firewall.book import Book, Working
from src.firewall.rules import Leg
from src.tws import wire

log = logging.getLogger(__name__)

VERSIONS = (157, wire.MAX_TEXT_VERSION)
HEARTBEAT = 2.0  # seconds between reqCurrentTime
ANSWER_WITHIN = 6.0  # a Gateway that has not answered anything for this long is not answering
REFRESH = 0.25  # seconds between positions snapshots while fills wait to be settled
ORDERS_REFRESH = 5.0  # between open-order snapshots while relayed orders work (see book.SETTLE)
IDLE_REFRESH = 30.0  # between open-order snapshots otherwise (other clients' orders)
CONTRACT_REQ_BASE = 7_000_000


class Upstream:
    """One session at a time, reconnecting with backoff; the proxy reads `synced` and the book."""

    def __init__(self, host: str, port: int, client_id: int, book: Book,
                 symbols: Callable[[], Iterable[str]], clock: Callable[[], float] = time.monotonic) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.book = book
        self.symbols = symbols
        self.clock = clock
        self.accounts: frozenset[str] = frozenset()
        self.ib_connected = True
        self.connected = False
        self.version = 0
        self._positions_done = self._orders_done = False
        self._announced = False
        self._last_heard = 0.0
        self._writer: asyncio.StreamWriter | None = None
        self._pos_asked = -1
        self._orders_asked = 0.0
        self._pos_inflight = self._orders_inflight = False
        self._pos_pending: dict[tuple[str, str], float] = {}
        self._orders_pending: list[tuple[tuple[int, int], Working]] = []
        self._contract_reqs: dict[int, str] = {}
        self._resolved: dict[str, set[int]] = {}
        self._last_orders_snapshot = 0.0
        self.wake = asyncio.Event()
        self.ready = asyncio.Event()  # set while synced (orders can be judged): a new client waits for it
        self.retry_now = asyncio.Event()  # a client is waiting: reconnect now, not after the backoff
        self.link = asyncio.Event()  # set while the session is connected (the Gateway answered the handshake)
        self.settled = asyncio.Event()  # set when a connection attempt ends, either way (a waiting client's cue)

    @property
    def synced(self) -> bool:
        return (self.connected and self._positions_done and self._orders_done
                and self.clock() - self._last_heard < ANSWER_WITHIN)

    def describe(self) -> str:
        if not self.connected:
            return "not connected to the Gateway"
        if not (self._positions_done and self._orders_done):
            return "connected, positions and orders not synced yet"
        if self.clock() - self._last_heard >= ANSWER_WITHIN:
            return f"the Gateway has not answered for {ANSWER_WITHIN:g} s"
        return "synced" + ("" if self.ib_connected else ", 1100 in force")

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff = 0.2
            except (OSError, asyncio.IncompleteReadError, wire.ProtocolError, ValueError) as exc:
                if self.connected or backoff == 0.2:
                    log.warning("Firewall session with the Gateway %s:%d ended: %s", self.host, self.port,
                                wire.clip(exc, 120))
            finally:
                self._reset()
                self.settled.set()
            self.retry_now.clear()
            stopping = asyncio.ensure_future(stop.wait())
            waiting = asyncio.ensure_future(self.retry_now.wait())
            await asyncio.wait({stopping, waiting}, timeout=backoff, return_when=asyncio.FIRST_COMPLETED)
            for task in (stopping, waiting):
                task.cancel()
            backoff = min(backoff * 2, 5.0)

    def _announce(self) -> None:
        """One line each time the session becomes able to judge orders (the operator's, and a test's, signal)."""
        if self._positions_done and self._orders_done and not self._announced:
            self._announced = True
            self.ready.set()
            log.info("Firewall session synced: the Gateway's positions and open orders are known, orders are judged")

    def _reset(self) -> None:
        self._announced = False
        self.ready.clear()
        self.link.clear()
        self.connected = False
        self._positions_done = self._orders_done = False
        self._pos_inflight = self._orders_inflight = False
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def _session(self, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 5)
        self._writer = writer
        frames = wire.FrameBuffer()
        writer.write(wire.opening(*VERSIONS))
        hello = await self._next(reader, frames, 10)
        version = int(hello[0]) if hello and hello[0].isdigit() and len(hello[0]) < 5 else 0
        if not VERSIONS[0] <= version <= VERSIONS[1]:
            raise wire.ProtocolError(f"server version {wire.clip(hello[:1])} outside {VERSIONS}")
        self.version = version
        writer.write(wire.start_api(self.client_id))
        self.connected, self.ib_connected, self._last_heard = True, True, self.clock()
        self.link.set()
        self.settled.set()
        self._resolved.clear()
        self._ask_positions()
        self._ask_orders()
        self.resolve()
        log.info("Firewall session with the Gateway: connected (server version %d, client id %d)", version,
                 self.client_id)
        ticker = asyncio.ensure_future(self._ticker(stop))
        try:
            while not stop.is_set():
                fields = await self._next(reader, frames, None)
                self._last_heard = self.clock()
                self._on(fields)
        finally:
            ticker.cancel()

    async def _next(self, reader: asyncio.StreamReader, frames: wire.FrameBuffer, timeout: float | None) -> list[str]:
        while True:
            payload = frames.next_payload()
            if payload is not None:
                return wire.fields_of(payload)
            data = await (asyncio.wait_for(reader.read(65536), timeout) if timeout else reader.read(65536))
            if not data:
                raise ConnectionResetError("the Gateway closed the connection")
            frames.feed(data)

    async def _ticker(self, stop: asyncio.Event) -> None:
        """The session's timers: the heartbeat, the snapshots, the frozen-Gateway check. It sleeps until the
        next one is due (or `wake`: an order relayed, a fill to settle), so an idle firewall wakes a few times
        a minute, not several times a second."""
        last_beat = 0.0
        while not stop.is_set():
            now = self.clock()
            if now - last_beat >= HEARTBEAT:
                self._send(wire.REQ_CURRENT_TIME, 1)
                last_beat = now
            if self._writer is not None and now - self._last_heard >= ANSWER_WITHIN + HEARTBEAT * 2:
                self._writer.close()  # frozen: the read loop ends, the session starts over
                return
            if self.book.fills_pending:
                self._ask_positions()
            refresh = ORDERS_REFRESH if self.book.orders else IDLE_REFRESH
            if now - self._last_orders_snapshot >= refresh:
                self._ask_orders()
            due = min(last_beat + HEARTBEAT, self._last_orders_snapshot + refresh)
            sleep = REFRESH if self.book.fills_pending else max(REFRESH, due - self.clock())
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), sleep)
            except TimeoutError:
                pass

    def _send(self, *fields: object) -> None:
        if self._writer is not None:
            self._writer.write(wire.encode(*fields))

    def _ask_positions(self) -> None:
        if self._pos_inflight or self._writer is None:
            return
        self._pos_inflight, self._pos_asked, self._pos_pending = True, self.book.tick(), {}
        self._send(wire.CANCEL_POSITIONS, 1)
        self._send(wire.REQ_POSITIONS, 1)

    def _ask_orders(self) -> None:
        if self._orders_inflight or self._writer is None:
            return
        self._orders_inflight, self._orders_pending = True, []
        self._orders_asked = self._last_orders_snapshot = self.clock()
        self._send(wire.REQ_ALL_OPEN_ORDERS, 1)

    def resolve(self) -> None:
        """Ask the Gateway for the conId of every plan symbol not resolved yet (STK, SMART, USD)."""
        for symbol in self.symbols():
            if symbol in self._resolved or self._writer is None:
                continue
            req_id = CONTRACT_REQ_BASE + len(self._contract_reqs)
            self._contract_reqs[req_id] = symbol
            self._resolved[symbol] = set()
            tail = [""] if self.version >= 176 else []  # issuerId
            self._send(wire.REQ_CONTRACT_DATA, 8, req_id, 0, symbol, "STK", "", 0.0, "", "", "SMART", "", "USD",
                       "", "", 0, "", "", *tail)

    # --- what the Gateway says ----------------------------------------------------------------

    def _on(self, f: list[str]) -> None:
        kind = f[0] if f else ""
        if kind == "61" and len(f) >= 16:  # position: 61, 3, account, conId, symbol, secType, ..., pos, avgCost
            if f[5] == "STK" and f[11] == "USD":
                quantity = wire.parse_number(f[14])
                if quantity is not None:
                    self.book.set_position(f[2], f[4], quantity)
                    if self._pos_inflight:
                        self._pos_pending[(f[2], f[4])] = quantity
        elif kind == "62":
            if self._pos_inflight:
                self.book.positions_snapshot(self._pos_asked, {k: v for k, v in self._pos_pending.items() if v})
                self._pos_inflight, self._positions_done = False, True
                self._announce()
        elif kind == "5" and len(f) >= 26 and self._orders_inflight:
            self._open_order(f)
        elif kind == "53":
            if self._orders_inflight:
                self.book.orders_snapshot(self._orders_asked, self._orders_pending)
                self._orders_inflight, self._orders_done = False, True
                self._announce()
        elif kind == "3" and len(f) >= 10 and self._orders_inflight:
            self._snapshot_status(f)
        elif kind == "10":
            self._contract(f)
        elif kind == "15" and len(f) >= 3:
            self.accounts = frozenset(a.strip() for a in f[2].split(",") if a.strip())
        elif kind == "4" and len(f) >= 5:
            self._error(f)

    def _open_order(self, f: list[str]) -> None:
        order_id, client_id, quantity = _int(f[1]), _int(f[24]), wire.parse_number(f[14])
        if order_id is None or client_id is None or quantity is None:
            return
        if f[4] != "STK" or f[10] != "USD":
            return  # not a stock in dollars: no plan symbol's exposure
        leg = Leg(f[3], f[13].upper() == "BUY", quantity)
        self._orders_pending.append(((client_id, order_id), Working(f[20], (leg,), quantity, 0, self._orders_asked)))

    def _snapshot_status(self, f: list[str]) -> None:
        order_id, client_id, remaining = _int(f[1]), _int(f[9]), wire.parse_number(f[4])
        for key, order in self._orders_pending:
            if key == (client_id, order_id) and remaining is not None and order.quantity:
                order.filled = max(0.0, order.quantity - remaining)

    def _contract(self, f: list[str]) -> None:
        head = 2 if self.version < 164 else 1
        if len(f) < head + 12:
            return
        req_id, con_id = _int(f[head]), _int(f[head + 11])
        symbol = self._contract_reqs.get(req_id or -1)
        if symbol is None or con_id is None or f[head + 1] != symbol:
            return
        found = self._resolved.setdefault(symbol, set())
        found.add(con_id)
        self.book.con_ids[symbol] = con_id if len(found) == 1 else None  # ambiguous: no conId can be checked

    def _error(self, f: list[str]) -> None:
        code = _int(f[3])
        if code == wire.CONNECTIVITY_LOST:
            self.ib_connected = False
            log.warning("Firewall: the Gateway reports 1100 (connectivity to IBKR lost): orders are refused")
        elif code in (wire.CONNECTIVITY_RESTORED, wire.CONNECTIVITY_RESTORED_DATA_LOST):
            self.ib_connected = True
            log.info("Firewall: the Gateway reports %d (connectivity restored): resyncing", code)
            self._ask_positions()
            self._ask_orders()


def _int(text: str) -> int | None:
    body = text[1:] if text.startswith("-") else text
    return int(text) if body.isdigit() and len(body) <= 18 else None
