"""The trading gate: the one place in `src/` where an order reaches the Gateway.

Authority is fixed when the gate is built, from the plan in force (the exact plan the
orchestrator validated, identified by its sha256), and checked again at every order:

* the plan grants trading authority (strategy A or B, multiplier > 0, no quarantine);
* the plan's date is today's trading date in New York: authority ends at the date change
  (under `--supervise` the bot runs for days);
* the bot's Gateway connection is `connected` and synced (not degraded, not reconnecting);
* the symbol is in `symbols` and not in `earnings_blackout`;
* the order's quantity, and the position it would leave, are within
  `hard_limits.max_single_position`;
* `hard_limits.weekly_drawdown_governor_active`: only orders that reduce a position;
* `hard_limits.pdt_trades_remaining`: an order that would close, the same day, a position
  opened through the gate that day counts as a day trade; none beyond the number left.

Each refusal is one ERROR line, a count (`refused`, shown in the heartbeat) and an
`OrderRefused` the strategy can catch. The gate stops mistakes; it cannot contain code in
the same Python process that sets out to get around it (that is what IBC's read-only API
setting is for).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from src.gameplan.schema import Gameplan

log = logging.getLogger(__name__)


class TradingDisabled(RuntimeError):
    """An order was refused: no trading authority, or a limit of the plan in force."""


class OrderRefused(TradingDisabled):
    """One order refused by the gate; `reason` says which rule."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Authority:
    """What the plan in force allows, frozen when the gate is built."""

    trading_date: date
    strategy: str
    authorized: bool
    symbols: frozenset[str]
    blackout: frozenset[str]
    max_single_position: int
    pdt_trades_remaining: int
    drawdown_governor: bool
    sha256: str

    @classmethod
    def from_plan(cls, plan: Gameplan, sha256: str) -> Authority:
        limits = plan.hard_limits
        return cls(plan.date, plan.strategy, bool(plan.trading_authorized), frozenset(plan.symbols),
                   frozenset(plan.earnings_blackout), int(limits.max_single_position),
                   int(limits.pdt_trades_remaining), bool(limits.weekly_drawdown_governor_active), sha256)


class OrderClient(Protocol):
    """The part of ib_async's IB the gate uses."""

    def placeOrder(self, contract: Any, order: Any) -> Any: ...  # noqa: N802 (ib_async's name)

    def cancelOrder(self, order: Any) -> Any: ...  # noqa: N802

    def positions(self) -> Any: ...


class TradingGate:
    """Checks every order against the plan in force; the only caller of `placeOrder` in src/."""

    __slots__ = ("__client", "__authority", "__today", "__state", "__lock", "__refused", "__placed",
                 "__day_opened", "__day_trades")

    def __init__(self, client: OrderClient, authority: Authority, *, today: Callable[[], date],
                 connection_state: Callable[[], str]) -> None:
        self.__client = client
        self.__authority = authority
        self.__today = today
        self.__state = connection_state
        self.__lock = threading.Lock()
        self.__refused = 0
        self.__placed = 0
        self.__day_opened: dict[tuple[date, str], int] = {}  # (day, symbol) -> signed qty opened that day
        self.__day_trades = 0

    @property
    def authority(self) -> Authority:
        return self.__authority

    @property
    def refused(self) -> int:
        return self.__refused

    @property
    def placed(self) -> int:
        return self.__placed

    def authorized_now(self) -> bool:
        """Whether an order could pass the plan-level rules at this moment (for the heartbeat)."""
        return self.__plan_refusal() is None

    def place_order(self, contract: Any, order: Any) -> Any:
        """Place `order` if every rule allows it; else OrderRefused (and nothing reaches the Gateway)."""
        with self.__lock:
            reason = self.__plan_refusal() or self.__order_refusal(contract, order)
            if reason:
                self.__refused += 1
                log.error("Order REFUSED: %s %s %s: %s", getattr(order, "action", "?"),
                          _quantity(order), getattr(contract, "symbol", "?"), reason)
                raise OrderRefused(reason)
            trade = self.__client.placeOrder(contract, order)
            self.__placed += 1
            self.__record(contract, order)
            log.info("Order placed: %s %s %s (plan %s, strategy %s)", getattr(order, "action", "?"),
                     _quantity(order), getattr(contract, "symbol", "?"), self.__authority.sha256[:12],
                     self.__authority.strategy)
            return trade

    def cancel_order(self, order: Any) -> Any:
        """Cancelling is always allowed while connected: it only ever reduces risk."""
        if self.__state() != "connected":
            raise OrderRefused(f"cannot cancel while the Gateway connection is {self.__state()}")
        return self.__client.cancelOrder(order)

    # --- the rules ------------------------------------------------------------------------

    def __plan_refusal(self) -> str | None:
        auth = self.__authority
        if not auth.authorized:
            return f"no trading authority under the plan in force (strategy {auth.strategy})"
        today = self.__today()
        if auth.trading_date != today:
            return f"the plan in force is for {auth.trading_date}, today is {today} (New York): authority ended"
        state = self.__state()
        if state != "connected":
            return f"the Gateway connection is {state}: trading paused until it is connected and synced"
        return None

    def __order_refusal(self, contract: Any, order: Any) -> str | None:
        auth = self.__authority
        symbol = str(getattr(contract, "symbol", "") or "").upper()
        if symbol not in auth.symbols:
            return f"{symbol or 'a contract without a symbol'} is not in the plan's symbols"
        if symbol in auth.blackout:
            return f"{symbol} is in the plan's earnings_blackout"
        quantity = _quantity(order)
        action = str(getattr(order, "action", "")).upper()
        if quantity is None or quantity <= 0 or action not in ("BUY", "SELL"):
            return f"not a BUY/SELL order with a positive quantity (action {action!r}, quantity {quantity!r})"
        if quantity > auth.max_single_position:
            return f"quantity {quantity:g} is above hard_limits.max_single_position {auth.max_single_position}"
        signed = quantity if action == "BUY" else -quantity
        held = self.__position(symbol)
        after = held + signed
        if abs(after) > auth.max_single_position:
            return (f"the position in {symbol} would be {after:g}, beyond hard_limits.max_single_position "
                    f"{auth.max_single_position}")
        reduces = abs(after) < abs(held)
        if auth.drawdown_governor and not reduces:
            return "hard_limits.weekly_drawdown_governor_active: only orders that reduce a position"
        opened = self.__day_opened.get((self.__today(), symbol), 0)
        if opened and (opened > 0) != (signed > 0) and self.__day_trades >= auth.pdt_trades_remaining:
            return (f"closing today's {symbol} position would be a day trade; "
                    f"hard_limits.pdt_trades_remaining is {auth.pdt_trades_remaining}")
        return None

    def __position(self, symbol: str) -> float:
        total = 0.0
        for position in self.__client.positions() or ():
            if str(getattr(getattr(position, "contract", None), "symbol", "")).upper() == symbol:
                total += float(getattr(position, "position", 0) or 0)
        return total

    def __record(self, contract: Any, order: Any) -> None:
        symbol = str(getattr(contract, "symbol", "")).upper()
        quantity = _quantity(order) or 0
        signed = quantity if str(getattr(order, "action", "")).upper() == "BUY" else -quantity
        key = (self.__today(), symbol)
        opened = self.__day_opened.get(key, 0)
        if opened and (opened > 0) != (signed > 0):
            self.__day_trades += 1
        self.__day_opened[key] = int(opened + signed)


def _quantity(order: Any) -> float | None:
    try:
        return float(getattr(order, "totalQuantity", None))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
