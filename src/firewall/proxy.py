"""The relay: one per client connection, between a bot and the Gateway.

Client -> Gateway: the opening's version range is clamped to what the firewall reads
(`orders.MIN_VERSION`..`MAX_VERSION`; a client accepts a lower version); startApi tells the
client id; every placeOrder is decoded and judged (`rules.judge`), exerciseOptions is refused,
everything else passes unchanged. Gateway -> client: after its hello, the bytes go to the client
as read, before anything is read of them; then orderStatus and errors for this client's
orders update the book, in the same callback (before any other order is judged).

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
from typing import cast

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

    def client_protocol(self) -> asyncio.Protocol:
        """A new client connection's protocol (`loop.create_server(firewall.client_protocol, ...)`)."""
        return Relay(self)

    def authority(self, client_id: int) -> Authority | None:
        return authorities_for(self.bot_client_id, self.plan().authority).get(client_id)

    def plan_sha256(self) -> str | None:
        return self.plan().sha256

    def decide(self, client_id: int | None, order: PlaceOrder) -> Verdict:
        """Judge and journal one order: what must happen before it may reach the Gateway. `settle` does the
        rest once it has been forwarded (or refused)."""
        in_force = self.plan()  # once per order (no system call while change notices come; else one stat call)
        authority = authorities_for(self.bot_client_id, in_force.authority).get(client_id) \
            if client_id is not None else None
        today = self.today()  # once per order: the New York date (a zoneinfo conversion)
        verdict = judge(order, client_id, authority, self.book, self.situation(today))
        if authority is None and client_id == self.bot_client_id:
            verdict = Verdict(in_force.reason, verdict.account)  # why the bot has none
        c = order.contract
        try:
            self.journal.write({
                "decision": "allowed" if verdict.reason is None else "refused", "reason": verdict.reason or "",
                "client_id": client_id, "order_id": order.order_id,
                "account": wire.clip(verdict.account or order.account),
                "contract": {"symbol": wire.clip(c.symbol), "sec_type": wire.clip(c.sec_type, 8),
                             "currency": wire.clip(c.currency, 8), "con_id": c.con_id,
                             "legs": [[leg.con_id, wire.clip(leg.ratio, 12), wire.clip(leg.action, 8)]
                                      for leg in order.legs]},
                "action": wire.clip(order.action, 12), "quantity": wire.clip(order.total_quantity, 32),
                "what_if": order.what_if, "plan_sha256": authority.sha256 if authority else in_force.sha256,
                "day": today.isoformat(),
                "legs": [[leg.symbol, "BUY" if leg.buy else "SELL", leg.quantity] for leg in verdict.legs],
            })
        except OSError as exc:
            if verdict.reason is None:
                verdict = Verdict(f"the decision cannot be journalled ({exc.strerror or exc})", verdict.account)
        return verdict

    def settle(self, client_id: int | None, order: PlaceOrder, verdict: Verdict) -> None:
        """What follows a decision, after the order went to the Gateway (or its refusal to the client), in the
        same callback: no other order is judged before the book holds this one. Off the order's round trip."""
        if verdict.reason is None and verdict.legs and client_id is not None:
            # the open-order snapshots take the working-order pace at the ticker's next beat (<= HEARTBEAT s)
            self.book.place(client_id, order.order_id, verdict.account, verdict.legs, float(order.total_quantity),
                            self.today(), self.clock())
        self.counts["allowed" if verdict.reason is None else "refused"] += 1
        # an allowed order is in the journal already: its log line only at DEBUG
        level = logging.DEBUG if verdict.reason is None else logging.WARNING
        if log.isEnabledFor(level):
            c = order.contract
            log.log(level, "Firewall: order %s: client %s order %d %s %s %s %s: %s",
                    "ALLOWED" if verdict.reason is None else "REFUSED", client_id, order.order_id,
                    wire.clip(order.action, 12), wire.clip(order.total_quantity, 32), wire.clip(c.symbol),
                    wire.clip(c.sec_type, 8), verdict.reason or "every rule allows it")

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


class Relay(asyncio.Protocol):
    """One client connection and its own connection to the Gateway, as two asyncio protocols.

    Protocols, not streams: a frame is judged and forwarded in the callback that read it, with no task to wake
    between the socket and the decision (each such hop costs a turn of the event loop on both legs of an order's
    round trip). Flow control is the transports' own: a side whose writes back up pauses reading the other side.
    """

    def __init__(self, firewall: Firewall) -> None:
        self.fw = firewall
        self.transport: asyncio.Transport | None = None  # the client's
        self.up: asyncio.Transport | None = None  # the Gateway's, once connected
        self.peer = "?"
        self.client_id: int | None = None
        self.in_session = False
        self.version = 0
        self.frames = wire.FrameBuffer(opening=True, limit=CLIENT_FRAME_LIMIT)
        self.versions: tuple[int, int] | None = None  # the client's opening, once read
        self.opening_timer: asyncio.TimerHandle | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.closed = False

    # --- the client's connection -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP server's: always a Transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"
        self.fw.counts["connections"] += 1
        self.opening_timer = asyncio.get_running_loop().call_later(OPENING_WITHIN, self.close,
                                                                   "no opening within %g s" % OPENING_WITHIN)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        frames = self.frames
        frames.feed(data)
        try:
            if self.up is None:
                if self.versions is None:
                    self._opening()
                return  # held until the Gateway's side is connected (the client's reading is paused meanwhile)
            self._forward()
        except wire.ProtocolError as exc:
            self.close(str(exc))

    def eof_received(self) -> bool:
        self.close("the client closed")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(f"the client's connection was lost ({exc})" if exc else "")

    def pause_writing(self) -> None:  # the client reads slower than the Gateway writes
        if self.up is not None:
            self.up.pause_reading()

    def resume_writing(self) -> None:
        if self.up is not None and not self.closed:
            self.up.resume_reading()

    def close(self, why: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        if why:
            log.info("Firewall: client %s closed: %s", self.peer, wire.clip(why, 80))
        if self.opening_timer is not None:
            self.opening_timer.cancel()
        if self.connecting is not None and not self.connecting.done():
            self.connecting.cancel()
        for transport in (self.transport, self.up):
            if transport is not None:
                transport.close()
        if self.fw.sessions is not None:
            self.fw.sessions.closed(id(self))

    def _opening(self) -> None:
        payload = self.frames.next_payload()
        if payload is None:
            return
        if self.opening_timer is not None:
            self.opening_timer.cancel()
        low, high = wire.parse_version_range(payload)
        if high < MIN_VERSION or low > MAX_VERSION:
            raise wire.ProtocolError(f"client versions {low}..{high} outside {MIN_VERSION}..{MAX_VERSION}")
        self.versions = (low, min(high, MAX_VERSION))
        if self.transport is not None:
            self.transport.pause_reading()  # nothing more is read until there is somewhere to send it
        self.connecting = asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        await self._until_judging()
        loop = asyncio.get_running_loop()
        try:
            up, _ = await asyncio.wait_for(loop.create_connection(lambda: GatewaySide(self), *self.fw.gateway),
                                           CONNECT_WITHIN)
        except (OSError, TimeoutError) as exc:
            # as socat does in front of a Gateway that is not up: accept, then close
            self.close(f"the Gateway does not accept connections ({wire.clip(exc, 60)})")
            return
        if self.closed or self.versions is None or self.transport is None:
            up.close()
            return
        self.up = up
        self.up.write(wire.opening(*self.versions))
        try:
            self._forward()  # whatever the client sent behind its opening
        except wire.ProtocolError as exc:
            self.close(str(exc))
            return
        if not self.closed:
            self.transport.resume_reading()

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

    def _forward(self) -> None:
        out = bytearray()
        frames = self.frames
        while (payload := frames.next_payload()) is not None:
            kind = wire.message_id(payload)
            if kind == wire.PLACE_ORDER:
                out = self._place_order(payload, out)
            elif self._judge(kind, payload):
                out += wire.encode_raw(payload)
        if out and self.up is not None:
            self.up.write(out)

    def _judge(self, kind: int | None, payload: bytes) -> bool:
        """True to forward this client message (of message id `kind`, not a placeOrder); False when it was
        refused here."""
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

    def _place_order(self, payload: bytes, out: bytearray) -> bytearray:
        """Judge one placeOrder; allowed, it goes to the Gateway at once, with what `out` held before it
        (the messages before an order reach the Gateway before it), and the book is updated after the send.
        What is still to be sent, after it."""
        fields = wire.fields_of(payload)
        try:
            order = decode_place_order(fields, self.version)
        except OrderDecodeError as exc:
            raw_id = fields[1] if len(fields) > 1 else ""
            why = f"placeOrder cannot be read: {exc}"
            self.fw.refuse_unreadable(self.client_id, raw_id, why)
            self._reject(int(raw_id) if raw_id.isdigit() and len(raw_id) < 12 else -1, why)
            return out
        verdict = self.fw.decide(self.client_id, order)
        if verdict.reason is None:
            out += wire.encode_raw(payload)
            if self.up is not None:
                self.up.write(out)
            out = bytearray()
        else:
            self._reject(order.order_id, verdict.reason)
        self.fw.settle(self.client_id, order, verdict)
        return out

    def _reject(self, req_id: int | str, reason: str) -> None:
        if self.transport is not None:
            self.transport.write(wire.error(self.version, req_id, wire.ORDER_REJECTED, REFUSAL_PREFIX + reason))

    # --- Gateway -> client -------------------------------------------------------------------------

    def from_gateway(self, data: bytes, frames: wire.FrameBuffer) -> None:
        """The Gateway's bytes, as read. Once its hello is read, they go to the client as they came, before
        anything is read of them (the observed messages are read after, in the same callback)."""
        if self.closed or self.transport is None:
            return
        if self.version:
            self.transport.write(data)
            frames.feed(data)
            payloads = frames.skim(OBSERVED)  # only these are copied: a market-data burst is not
        else:
            frames.feed(data)
            hello = frames.next_payload()
            if hello is None:
                return
            fields = wire.fields_of(hello)
            version = int(fields[0]) if fields and fields[0].isdigit() and len(fields[0]) < 5 else 0
            if not MIN_VERSION <= version <= MAX_VERSION:
                raise wire.ProtocolError(f"the Gateway chose server version {wire.clip(fields[:1])}, outside "
                                         f"{MIN_VERSION}..{MAX_VERSION}")
            self.version = version
            raw, payloads = frames.take_where(OBSERVED)  # what came with the hello
            self.transport.write(wire.encode_raw(hello) + raw)
        for payload in payloads:
            if payload[:2] == b"9\0":
                if not self.in_session:
                    self._session_opened()
            else:
                self._observe(payload)

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


class GatewaySide(asyncio.Protocol):
    """The relay's connection to the Gateway: its bytes go to `Relay.from_gateway`; flow control both ways."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.frames = wire.FrameBuffer()

    def data_received(self, data: bytes) -> None:
        try:
            self.relay.from_gateway(data, self.frames)
        except wire.ProtocolError as exc:
            self.relay.close(str(exc))

    def eof_received(self) -> bool:
        self.relay.close("the Gateway closed the connection")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.close(f"the Gateway's connection was lost ({exc})" if exc else "the Gateway closed the connection")

    def pause_writing(self) -> None:  # the Gateway reads slower than the client writes
        if self.relay.transport is not None:
            self.relay.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.relay.transport is not None and not self.relay.closed:
            self.relay.transport.resume_reading()
