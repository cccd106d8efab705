"""The relay: one per client connection, between a bot and the Gateway.

Client -> Gateway: the opening's version range is clamped to what the firewall reads
(`orders.MIN_VERSION`..`MAX_VERSION`; a client accepts a lower version); startApi tells the
client id; every placeOrder is decoded and judged (`rules.judge`), exerciseOptions is refused,
everything else passes unchanged. Gateway -> client: whole frames pass unchanged, in large
writes; orderStatus, openOrder and errors for this client's orders update the book.

A refused order never reaches the Gateway: the client gets error 201 "Order rejected - reason:"
for its order id, as from the Gateway, and the decision is journalled. Nothing a client sends
can stop the firewall: a malformed stream closes that client's connection only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from src.firewall.book import Book
from src.firewall.decisions import DecisionLog
from src.firewall.plan import InForce
from src.firewall.rules import Authority, Situation, Verdict, authorities_for, judge
from src.firewall.sessions import Sessions
from src.firewall.upstream import Upstream
from src.tws import wire
from src.tws.orders import MAX_VERSION, MIN_VERSION, OrderDecodeError, PlaceOrder, decode_place_order

log = logging.getLogger(__name__)

CLIENT_FRAME_LIMIT = 1 << 20  # no client request is anywhere near 1 MiB
OPENING_WITHIN = 10.0  # seconds a new connection has to send its opening
CONNECT_WITHIN = 5.0
SYNC_WITHIN = 10.0  # a new client waits this long for the firewall's own session to be able to judge orders
LINK_WITHIN = 5.0  # ... and at most this long for one attempt of that session to reach the Gateway, or fail
READ_SIZE = 1 << 16
REFUSAL_PREFIX = "Order rejected - reason:FIREWALL: "
OBSERVED = (b"3\0", b"4\0", b"9\0")  # orderStatus, errors, nextValidId: the Gateway's messages the relay reads


@dataclass
class Firewall:
    """What every relay shares: the Gateway's address, the book, the authority, the journal."""

    gateway: tuple[str, int]
    book: Book
    upstream: Upstream
    plan: Callable[[], InForce]  # the plan in force, as the firewall read it
    bot_client_id: int
    journal: DecisionLog
    today: Callable[[], date]
    expected_accounts: frozenset[str] = frozenset()
    sessions: Sessions | None = None  # the relayed sessions, for the orchestrator (None: not recorded)
    clock: Callable[[], float] = time.monotonic
    counts: dict[str, int] = field(default_factory=lambda: {"allowed": 0, "refused": 0, "connections": 0})

    def situation(self, today: date | None = None) -> Situation:
        return Situation(today or self.today(), self.upstream.synced, self.upstream.ib_connected,
                         self.upstream.accounts, self.expected_accounts)

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counts["connections"] += 1
        relay = Relay(self, reader, writer)
        try:
            await relay.run()
        except (OSError, asyncio.IncompleteReadError, TimeoutError, wire.ProtocolError) as exc:
            log.info("Firewall: client %s closed: %s", relay.peer, wire.clip(exc, 80))
        finally:
            relay.close()
            if self.sessions is not None:
                self.sessions.closed(id(relay))

    def authority(self, client_id: int) -> Authority | None:
        return authorities_for(self.bot_client_id, self.plan().authority).get(client_id)

    def plan_sha256(self) -> str | None:
        return self.plan().sha256

    def decide(self, client_id: int | None, order: PlaceOrder) -> Verdict:
        """Judge, journal, and (when allowed) book one order."""
        in_force = self.plan()  # once per order: the plan files are looked at (two stat calls) here only
        authority = authorities_for(self.bot_client_id, in_force.authority).get(client_id) \
            if client_id is not None else None
        today = self.today()  # once per order: the New York date (a zoneinfo conversion)
        verdict = judge(order, client_id, authority, self.book, self.situation(today))
        if authority is None and client_id == self.bot_client_id:
            verdict = Verdict(in_force.reason, verdict.account)  # why the bot has none
        c = order.contract
        record: dict[str, Any] = {
            "decision": "allowed" if verdict.allowed else "refused", "reason": verdict.reason or "",
            "client_id": client_id, "order_id": order.order_id, "account": wire.clip(verdict.account or order.account),
            "contract": {"symbol": wire.clip(c.symbol), "sec_type": wire.clip(c.sec_type, 8),
                         "currency": wire.clip(c.currency, 8), "con_id": c.con_id,
                         "legs": [[leg.con_id, wire.clip(leg.ratio, 12), wire.clip(leg.action, 8)]
                                  for leg in order.legs]},
            "action": wire.clip(order.action, 12), "quantity": wire.clip(order.total_quantity, 32),
            "what_if": order.what_if, "plan_sha256": authority.sha256 if authority else in_force.sha256,
            "day": today.isoformat(),
            "legs": [[leg.symbol, "BUY" if leg.buy else "SELL", leg.quantity] for leg in verdict.legs],
        }
        try:
            self.journal.write(record)
        except OSError as exc:
            if verdict.allowed:
                verdict = Verdict(f"the decision cannot be journalled ({exc.strerror or exc})", verdict.account)
        if verdict.allowed and verdict.legs and client_id is not None:
            shares = float(order.total_quantity)
            self.book.place(client_id, order.order_id, verdict.account, verdict.legs, shares, today, self.clock())
            self.upstream.wake.set()  # its snapshots now come at the working-order pace
        self.counts["allowed" if verdict.allowed else "refused"] += 1
        # an allowed order is in the journal already: its log line only at DEBUG (it costs the order path)
        level = logging.DEBUG if verdict.allowed else logging.WARNING
        if log.isEnabledFor(level):
            log.log(level, "Firewall: order %s: client %s order %d %s %s %s %s: %s", record["decision"].upper(),
                    client_id, order.order_id, record["action"], record["quantity"], record["contract"]["symbol"],
                    record["contract"]["sec_type"], verdict.reason or "every rule allows it")
        return verdict

    def refuse_unreadable(self, client_id: int | None, order_id: int | str, why: str) -> None:
        """A placeOrder (or exerciseOptions) that cannot be judged: journalled as refused."""
        try:
            self.journal.write({"decision": "refused", "reason": why, "client_id": client_id,
                                "order_id": wire.clip(order_id, 20), "plan_sha256": self.plan_sha256(),
                                "day": self.today().isoformat()})
        except OSError:
            pass
        self.counts["refused"] += 1
        log.warning("Firewall: order REFUSED: client %s order %s: %s", client_id, wire.clip(order_id, 20), why)


class Relay:
    """One client connection and its own connection to the Gateway."""

    def __init__(self, firewall: Firewall, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.fw = firewall
        self.reader, self.writer = reader, writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"
        self.client_id: int | None = None
        self.in_session = False
        self.version = 0
        self.up_writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        for w in (self.writer, self.up_writer):
            if w is not None:
                w.close()

    async def run(self) -> None:
        frames = wire.FrameBuffer(opening=True, limit=CLIENT_FRAME_LIMIT)
        deadline = self.fw.clock() + OPENING_WITHIN
        payload = None
        while payload is None:
            payload = frames.next_payload()
            if payload is None:
                left = deadline - self.fw.clock()
                data = await asyncio.wait_for(self.reader.read(READ_SIZE), max(left, 0.001))
                if not data:
                    return
                frames.feed(data)
        low, high = wire.parse_version_range(payload)
        if high < MIN_VERSION or low > MAX_VERSION:
            raise wire.ProtocolError(f"client versions {low}..{high} outside {MIN_VERSION}..{MAX_VERSION}")
        await self._until_judging()
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.fw.gateway), CONNECT_WITHIN)
        except (OSError, TimeoutError) as exc:
            log.info("Firewall: client %s: the Gateway does not accept connections (%s): closed", self.peer,
                     wire.clip(exc, 60))
            return  # as socat does in front of a Gateway that is not up: accept, then close
        self.up_writer = up_writer
        up_writer.write(wire.opening(low, min(high, MAX_VERSION)))
        down = asyncio.ensure_future(self._downstream(up_reader))
        up = asyncio.ensure_future(self._upstream(frames, up_writer))
        try:
            done, _ = await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in (down, up):
                task.cancel()
            await asyncio.gather(down, up, return_exceptions=True)

    async def _until_judging(self) -> None:
        """The whole path a bot uses, not half of it: a client arriving while the firewall's own session is
        connecting or syncing (a Gateway just logged in) waits for it, up to SYNC_WITHIN s, instead of being
        served by a firewall that would refuse its first orders as not synced. A Gateway that does not answer at
        all is not waited for: the client is then met as the Gateway meets it (closed)."""
        upstream = self.fw.upstream
        if upstream.ready.is_set():
            return
        if not upstream.link.is_set():  # one connection attempt, now (not after the backoff), and its outcome
            upstream.settled.clear()
            upstream.retry_now.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(upstream.settled.wait(), LINK_WITHIN)
        if upstream.link.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(upstream.ready.wait(), SYNC_WITHIN)

    # --- client -> Gateway -----------------------------------------------------------------------

    async def _upstream(self, frames: wire.FrameBuffer, up_writer: asyncio.StreamWriter) -> None:
        while True:
            out = bytearray()
            while (payload := frames.next_payload()) is not None:
                if self._judge(payload):
                    out += wire.encode_raw(payload)
            if out:
                up_writer.write(out)
                await up_writer.drain()
            data = await self.reader.read(READ_SIZE)
            if not data:
                return
            frames.feed(data)

    def _judge(self, payload: bytes) -> bool:
        """True to forward this client message; False when it was refused here."""
        kind = wire.message_id(payload)
        if kind == wire.PLACE_ORDER:
            return self._place_order(wire.fields_of(payload))
        if kind == wire.EXERCISE_OPTIONS:
            fields = wire.fields_of(payload)
            req_id = fields[2] if len(fields) > 2 and fields[2].lstrip("-").isdigit() and len(fields[2]) < 12 else -1
            self.fw.refuse_unreadable(self.client_id, req_id, "exerciseOptions can open a position: no rule allows it")
            self._reject(req_id, "exerciseOptions can open a position: no rule allows it")
            return False
        if kind == wire.START_API and self.client_id is None:
            fields = wire.fields_of(payload)
            if len(fields) > 2 and fields[2].isdigit() and len(fields[2]) <= 10:
                self.client_id = int(fields[2])
        return True

    def _place_order(self, fields: list[str]) -> bool:
        raw_id = fields[1] if len(fields) > 1 else ""
        try:
            order = decode_place_order(fields, self.version)
        except OrderDecodeError as exc:
            why = f"placeOrder cannot be read: {exc}"
            self.fw.refuse_unreadable(self.client_id, raw_id, why)
            order_id: int | str = int(raw_id) if raw_id.isdigit() and len(raw_id) < 12 else -1
            self._reject(order_id, why)
            return False
        verdict = self.fw.decide(self.client_id, order)
        if verdict.allowed:
            return True
        self._reject(order.order_id, verdict.reason or "refused")
        return False

    def _reject(self, req_id: int | str, reason: str) -> None:
        self.writer.write(wire.error(self.version, req_id, wire.ORDER_REJECTED, REFUSAL_PREFIX + reason))

    # --- Gateway -> client -------------------------------------------------------------------------

    async def _downstream(self, up_reader: asyncio.StreamReader) -> None:
        frames = wire.FrameBuffer()
        hello: bytes | None = None
        while hello is None:
            data = await up_reader.read(READ_SIZE)
            if not data:
                return
            frames.feed(data)
            hello = frames.next_payload()
        fields = wire.fields_of(hello)
        version = int(fields[0]) if fields and fields[0].isdigit() and len(fields[0]) < 5 else 0
        if not MIN_VERSION <= version <= MAX_VERSION:
            raise wire.ProtocolError(f"the Gateway chose server version {wire.clip(fields[:1])}, outside "
                                     f"{MIN_VERSION}..{MAX_VERSION}")
        self.version = version
        self.writer.write(wire.encode_raw(hello))
        observe = self._observe
        while True:
            raw, payloads = frames.take_where(OBSERVED)  # only these are copied: a market-data burst is not
            if raw:
                for payload in payloads:
                    if payload[:2] == b"9\0":
                        if not self.in_session:
                            self._session_opened()
                    else:
                        observe(payload)
                self.writer.write(raw)
                await self.writer.drain()
            data = await up_reader.read(READ_SIZE)
            if not data:
                return
            frames.feed(data)

    def _session_opened(self) -> None:
        """The Gateway answered this client's startApi (nextValidId): the handshake is complete."""
        self.in_session = True
        if self.fw.sessions is not None and self.client_id is not None:
            self.fw.sessions.opened(id(self), self.client_id, self.peer)

    def _observe(self, payload: bytes) -> None:
        """orderStatus and errors for this client's orders keep the book current."""
        if self.client_id is None:
            return
        f = wire.fields_of(payload)
        if f[0] == "3" and len(f) >= 5 and f[1].isdigit() and len(f[1]) < 12:
            try:
                filled = float(f[3])
            except ValueError:
                filled = None
            self.fw.book.status(self.client_id, int(f[1]), f[2], filled if filled == filled else None)
            if self.fw.book.fills_pending:
                self.fw.upstream.wake.set()  # a fill to settle: positions are asked for at once
        elif f[0] == "4" and len(f) >= 4 and f[2].isdigit() and len(f[2]) < 12 and f[3].isdigit() and len(f[3]) < 8:
            self.fw.book.error(self.client_id, int(f[2]), int(f[3]))
