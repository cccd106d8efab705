"""Positions and working orders, as the Gateway reports them: the firewall's `BookView`.

Fed from two sides: the firewall's own API session (positions, a snapshot of every open order,
contract ids) and the traffic it relays (orders it allowed, their orderStatus and errors). Every
count errs on the side of more exposure, never less:

* an allowed order counts as working at once, with all its shares, until the Gateway says it is
  done, or an open-orders snapshot asked for more than SETTLE seconds after it no longer lists it
  (an order can end without a status the firewall reads; a snapshot asked for at once could race
  the order itself, on another connection);
* a fill moves shares from "working" to "filled, not yet in a positions snapshot": they keep
  counting until a positions snapshot requested after the fill has arrived;
* meanwhile a streamed position update may or may not hold that fill already: both readings are
  possible positions, and the rules must pass for each;
* an order another client placed (TWS itself, the mobile app) counts from the last snapshot.

No I/O here; `seq` orders events so that a snapshot only settles what happened before it was asked for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from src.firewall.rules import Leg

DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
# Errors on an order id after which it is not working (rejected, cancelled, no such contract,
# duplicate id): the order never went live or has ended.
ENDING_ERRORS = frozenset({103, 110, 200, 201, 202, 203, 321, 10147, 10148})
SETTLE = 5.0


@dataclass
class Working:
    """An order that may still fill: its account, what it moves, how much of it is left."""

    account: str
    legs: tuple[Leg, ...]
    quantity: float
    seq: int
    placed_at: float = 0.0  # monotonic seconds
    filled: float = 0.0

    @property
    def fraction_left(self) -> float:
        return max(0.0, (self.quantity - self.filled) / self.quantity) if self.quantity else 0.0


@dataclass
class Book:
    """The firewall's view; `seq` ticks on every event."""

    positions: dict[tuple[str, str], float] = field(default_factory=dict)  # the last snapshot
    streamed: dict[tuple[str, str], float] = field(default_factory=dict)  # updates since it
    con_ids: dict[str, int | None] = field(default_factory=dict)
    orders: dict[tuple[int, int], Working] = field(default_factory=dict)  # relayed: (client id, order id)
    external: dict[tuple[int, int], Working] = field(default_factory=dict)  # from the last snapshot
    unconfirmed: dict[tuple[str, str], list[tuple[int, float]]] = field(default_factory=dict)
    opened: dict[tuple[date, str, str], float] = field(default_factory=dict)
    trades: dict[tuple[date, str], int] = field(default_factory=lambda: defaultdict(int))
    seq: int = 0

    def tick(self) -> int:
        self.seq += 1
        return self.seq

    # --- BookView -----------------------------------------------------------------------------

    def positions_of(self, account: str, symbol: str) -> tuple[float, ...]:
        key = (account, symbol)
        unconfirmed = self.unconfirmed.get(key)
        settled = self.positions.get(key, 0.0) + (sum(q for _, q in unconfirmed) if unconfirmed else 0.0)
        streamed = self.streamed.get(key)
        return (settled,) if streamed is None or streamed == settled else (settled, streamed)

    def working(self, account: str, symbol: str, buy: bool, *, excluding: tuple[int, int] | None) -> float:
        total = 0.0
        for key, order in (*self.orders.items(), *self.external.items()):
            if key == excluding or order.account != account:
                continue
            for leg in order.legs:
                if leg.symbol == symbol and leg.buy == buy:
                    total += leg.quantity * order.fraction_left
        return total

    def con_id(self, symbol: str) -> int | None:
        return self.con_ids.get(symbol)

    def opened_today(self, day: date, account: str, symbol: str) -> float:
        return self.opened.get((day, account, symbol), 0.0)

    def day_trades(self, day: date, account: str) -> int:
        return self.trades.get((day, account), 0)

    # --- what the relay tells ------------------------------------------------------------------

    def place(self, client_id: int, order_id: int, account: str, legs: tuple[Leg, ...], quantity: float,
              day: date, now: float) -> None:
        """An allowed order is on its way: working at once (a modification replaces the order)."""
        self.orders[(client_id, order_id)] = Working(account, legs, quantity, self.tick(), now)
        self.external.pop((client_id, order_id), None)
        self.count_day(day, account, legs)

    def count_day(self, day: date, account: str, legs: tuple[Leg, ...]) -> None:
        """Today's opened shares per symbol, and the day trades: closing what was opened today."""
        for leg in legs:
            key = (day, account, leg.symbol)
            signed = leg.quantity if leg.buy else -leg.quantity
            opened = self.opened.get(key, 0.0)
            if opened and (opened > 0) != (signed > 0):
                self.trades[(day, account)] += 1
            self.opened[key] = opened + signed

    def status(self, client_id: int, order_id: int, status: str, filled: float | None) -> None:
        """orderStatus for a relayed order: fills move to 'unconfirmed'; a done order stops working."""
        order = self.orders.get((client_id, order_id))
        if order is None:
            return
        if filled is not None and filled > order.filled:
            seq = self.tick()
            share = (filled - order.filled) / order.quantity if order.quantity else 0.0
            for leg in order.legs:
                signed = leg.quantity * share * (1 if leg.buy else -1)
                self.unconfirmed.setdefault((order.account, leg.symbol), []).append((seq, signed))
            order.filled = filled
        if status in DONE:
            del self.orders[(client_id, order_id)]

    def error(self, client_id: int, order_id: int, code: int) -> None:
        if code in ENDING_ERRORS:
            order = self.orders.get((client_id, order_id))
            if order is not None and order.filled == 0:
                del self.orders[(client_id, order_id)]

    # --- what the firewall's own session tells --------------------------------------------------

    def set_position(self, account: str, symbol: str, quantity: float) -> None:
        """A streamed update: one more possible value until the next snapshot settles it."""
        self.streamed[(account, symbol)] = quantity

    def positions_snapshot(self, asked_at: int, positions: dict[tuple[str, str], float]) -> None:
        """A complete positions answer to a request made at `asked_at`: fills seen before it are in it."""
        self.positions = dict(positions)
        self.streamed.clear()
        for key in list(self.unconfirmed):
            kept = [(s, q) for s, q in self.unconfirmed[key] if s > asked_at]
            if kept:
                self.unconfirmed[key] = kept
            else:
                del self.unconfirmed[key]

    def orders_snapshot(self, asked_at: float, live: Iterable[tuple[tuple[int, int], Working]]) -> None:
        """Every open order, asked for at monotonic time `asked_at`: relayed orders placed more than
        SETTLE s before it and not listed are done; listed ones no relay knows of are other clients'."""
        listed = dict(live)
        for key in [k for k, o in self.orders.items() if o.placed_at < asked_at - SETTLE and k not in listed]:
            del self.orders[key]
        self.external = {k: o for k, o in listed.items() if k not in self.orders}

    @property
    def fills_pending(self) -> bool:
        """Fills wait for a positions snapshot (the upstream session asks for one)."""
        return bool(self.unconfirmed)
