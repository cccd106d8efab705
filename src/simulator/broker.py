"""The simulator's book: every order received, the executions, and each account's positions.

One ``Broker`` per simulator, shared by all its API connections and read from other
threads (``GatewaySimulator.orders``/``positions``), so every access holds its lock.
No I/O here: ``session.py`` turns what happens into messages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .market import UNIVERSE, Instrument

#: Statuses after which an order can change no more.
DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive", "Rejected"})
FIRST_PERM_ID = 1_100_000_001


@dataclass
class Order:
    """An order as the Gateway holds it (the quantities are shares)."""

    client_id: int
    order_id: int
    account: str
    symbol: str
    action: str
    quantity: float
    order_type: str
    limit: float | None = None
    aux: float | None = None
    tif: str = "DAY"
    parent_id: int = 0
    transmit: bool = True
    order_ref: str = ""
    instrument: Instrument | None = None
    perm_id: int = 0
    status: str = "PendingSubmit"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    error: int | None = None  # the error code of a rejection

    @property
    def buy(self) -> bool:
        return self.action == "BUY"

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def done(self) -> bool:
        return self.status in DONE


@dataclass
class Execution:
    exec_id: str
    order: Order
    shares: float
    price: float
    time: float
    commission: float
    realized_pnl: float | None  # None for an opening trade (TWS sends "unset")


@dataclass
class Position:
    quantity: float = 0.0
    avg_cost: float = 0.0
    realized_pnl: float = 0.0


@dataclass
class _Record:
    """One placeOrder as received, and the order it created or modified."""

    received: dict[str, Any]
    order: Order = field(repr=False)


class Broker:
    def __init__(self, accounts: Sequence[str], fill_policy: str = "immediate",
                 positions: Mapping[str, Mapping[str, float]] | None = None):
        self.accounts = tuple(accounts)
        self.fill_policy = fill_policy
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._records: list[_Record] = []
        self._orders: dict[tuple[int, int], Order] = {}
        self._executions: list[Execution] = []
        self._positions: dict[tuple[str, str], Position] = {}
        self._next_perm_id = FIRST_PERM_ID
        self._exec_seq = 0
        self._highest_order_id = 0
        for account, holdings in (positions or {}).items():
            for symbol, quantity in holdings.items():
                if symbol not in UNIVERSE:
                    raise ValueError(f"initial position in {symbol!r}, which is not in the simulator's universe")
                self._positions[(account, symbol)] = Position(float(quantity), UNIVERSE[symbol].price)

    # --- what tests read --------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """Every placeOrder received, oldest first, each with its order's status now."""
        with self.lock:
            return [{**r.received, "status": r.order.status, "filled": r.order.filled,
                     "avg_fill_price": r.order.avg_fill_price, "error": r.order.error} for r in self._records]

    def wait_for_records(self, count: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self._records) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            return self.records()

    def holdings(self) -> dict[str, dict[str, float]]:
        with self.lock:
            result: dict[str, dict[str, float]] = {}
            for (account, symbol), position in sorted(self._positions.items()):
                if position.quantity:
                    result.setdefault(account, {})[symbol] = position.quantity
            return result

    # --- what sessions do -------------------------------------------------------------------

    @property
    def next_order_id(self) -> int:
        with self.lock:
            return self._highest_order_id + 1

    def find(self, client_id: int, order_id: int) -> Order | None:
        with self.lock:
            return self._orders.get((client_id, order_id))

    def receive(self, order: Order, received: dict[str, Any]) -> tuple[Order, str]:
        """Record a placeOrder: ``new`` (stored), ``modify`` (a live order of that id, changed and
        returned) or ``duplicate`` (the id belongs to a done order: nothing stored)."""
        with self.changed:
            self._highest_order_id = max(self._highest_order_id, order.order_id)
            existing = self._orders.get((order.client_id, order.order_id))
            if existing is None:
                kind = "new"
                order.perm_id = self._next_perm_id
                self._next_perm_id += 1
                self._orders[(order.client_id, order.order_id)] = order
            elif not existing.done:
                kind = "modify"
                for name in ("quantity", "order_type", "limit", "aux", "tif", "transmit", "order_ref"):
                    setattr(existing, name, getattr(order, name))
                order = existing
            else:
                kind = "duplicate"
            received.update(perm_id=order.perm_id, modification=kind == "modify")
            self._records.append(_Record(received, order))
            self.changed.notify_all()
            return order, kind

    def set_status(self, order: Order, status: str, error: int | None = None) -> None:
        with self.changed:
            order.status = status
            if error is not None:
                order.error = error
            self.changed.notify_all()

    def children(self, order: Order) -> list[Order]:
        with self.lock:
            return [o for o in self._orders.values()
                    if o.client_id == order.client_id and o.parent_id == order.order_id]

    def active(self, client_id: int | None = None) -> list[Order]:
        """Orders still working (not done, and transmitted), by order id."""
        with self.lock:
            return sorted((o for o in self._orders.values()
                           if not o.done and o.status != "PendingSubmit"
                           and (client_id is None or o.client_id == client_id)),
                          key=lambda o: (o.client_id, o.order_id))

    def executions(self, client_id: int | None = None) -> list[Execution]:
        with self.lock:
            return [e for e in self._executions if client_id is None or e.order.client_id == client_id]

    def fill(self, order: Order, price: float) -> Execution:
        """Fill the rest of ``order`` at ``price``: the order, the position and the cash change."""
        if order.instrument is None:
            raise ValueError(f"order {order.order_id} has no instrument to fill")
        with self.changed:
            shares = order.quantity - order.filled
            signed = shares if order.buy else -shares
            position = self._positions.setdefault((order.account, order.instrument.symbol), Position())
            realized = _apply(position, signed, price)
            commission = round(min(max(1.0, 0.005 * shares), 0.01 * shares * price), 2)  # IBKR Fixed
            order.avg_fill_price = price
            order.last_fill_price = price
            order.filled = order.quantity
            order.status = "Filled"
            self._exec_seq += 1
            execution = Execution(f"{order.perm_id:08x}.{self._exec_seq:08x}.01.01", order, shares, price,
                                  time.time(), commission, realized)
            self._executions.append(execution)
            self.changed.notify_all()
            return execution

    def position(self, account: str, symbol: str) -> Position:
        with self.lock:
            found = self._positions.get((account, symbol), Position())
            return Position(found.quantity, found.avg_cost, found.realized_pnl)

    def positions(self, account: str | None = None) -> list[tuple[str, Instrument, Position]]:
        """(account, instrument, position) for every position held or once held, in order."""
        with self.lock:
            return [(a, UNIVERSE[s], Position(p.quantity, p.avg_cost, p.realized_pnl))
                    for (a, s), p in sorted(self._positions.items()) if account in (None, a)]


def _apply(position: Position, signed: float, price: float) -> float | None:
    """Add ``signed`` shares at ``price``; the realized P&L if this closes shares, else None."""
    old = position.quantity
    if old == 0 or (old > 0) == (signed > 0):  # opening or adding
        total = old + signed
        position.avg_cost = round((old * position.avg_cost + signed * price) / total, 6)
        position.quantity = total
        return None
    closed = min(abs(signed), abs(old))
    realized = closed * (price - position.avg_cost) * (1 if old > 0 else -1)
    position.realized_pnl += realized
    position.quantity = old + signed
    if position.quantity == 0:
        position.avg_cost = 0.0
    elif (position.quantity > 0) != (old > 0):  # flipped: the rest opened at this price
        position.avg_cost = price
    return round(realized, 2)
