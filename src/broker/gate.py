"""The runtime's early check: an order the plan in force does not allow is refused before it is sent.

The guarantee is the order firewall's (src/firewall), at the wire, for every bot: this check only
spares the strategy a round trip and gives it an exception it can catch (`OrderRefused`) instead of an
asynchronous error 201. It applies the same rules, from the same module (`src.firewall.rules.judge`),
to the bot's own view: the order as ib_async holds it, the bot's positions and open orders, the
connection state, today's New York date. Where the bot's view is thinner than the firewall's (it does
not know a symbol's conId, another client's orders), the firewall's verdict is the one that counts.

Each refusal is one ERROR line, a count (`refused`, shown in the heartbeat) and an `OrderRefused`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date
from typing import Any, Protocol

from src.firewall.rules import Authority, Leg, Situation, judge, plan_refusal
from src.tws.orders import ComboLeg, Contract, PlaceOrder

log = logging.getLogger(__name__)

__all__ = ["Authority", "OrderRefused", "TradingDisabled", "TradingGate"]


class TradingDisabled(RuntimeError):
    """An order was refused: no trading authority, or a limit of the plan in force."""


class OrderRefused(TradingDisabled):
    """One order refused by the gate; `reason` says which rule."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OrderClient(Protocol):
    """The part of ib_async's IB the gate uses."""

    def placeOrder(self, contract: Any, order: Any) -> Any: ...  # noqa: N802 (ib_async's name)

    def cancelOrder(self, order: Any) -> Any: ...  # noqa: N802

    def positions(self) -> Any: ...

    def openTrades(self) -> Any: ...  # noqa: N802

    def managedAccounts(self) -> Any: ...  # noqa: N802


# ib_async Order attributes that move a position other than by the order's shares: the wire decoder
# names the same features (`PlaceOrder.risky`), which the rules refuse.
_RISKY = (("faGroup", "FA allocation"), ("faProfile", "FA allocation"), ("faMethod", "FA allocation"),
          ("hedgeType", "hedge"), ("deltaNeutralOrderType", "delta-neutral order"), ("cashQty", "cash quantity"),
          ("scaleInitLevelSize", "scale order"), ("scalePriceIncrement", "scale order"))
_UNSET = (None, "", 0, 0.0, 1.7976931348623157e308, 2147483647)


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
        self.__day_opened: dict[tuple[date, str, str], float] = {}  # (day, account, symbol) -> signed opened
        self.__day_trades: dict[tuple[date, str], int] = {}

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
            reason = self.__plan_refusal()
            verdict = None
            if reason is None:
                wire_order = place_order_of(contract, order)
                verdict = judge(wire_order, None, self.__authority, _BotBook(self, wire_order.contract),
                                self.__situation())
                reason = verdict.reason
            if reason or verdict is None:
                self.__refused += 1
                log.error("Order REFUSED: %s %s %s: %s", getattr(order, "action", "?"),
                          getattr(order, "totalQuantity", "?"), getattr(contract, "symbol", "?"), reason)
                raise OrderRefused(reason or "refused")
            if not getattr(order, "account", ""):
                order.account = verdict.account  # the one account the rules judged it for
            trade = self.__client.placeOrder(contract, order)
            self.__placed += 1
            self.__record(verdict.account, verdict.legs)
            log.info("Order placed: %s %s %s in %s (plan %s, strategy %s)", getattr(order, "action", "?"),
                     getattr(order, "totalQuantity", "?"), getattr(contract, "symbol", "?"), verdict.account,
                     self.__authority.sha256[:12], self.__authority.strategy)
            return trade

    def cancel_order(self, order: Any) -> Any:
        """Cancelling is always allowed while connected: it only ever reduces risk."""
        if self.__state() != "connected":
            raise OrderRefused(f"cannot cancel while the Gateway connection is {self.__state()}")
        return self.__client.cancelOrder(order)

    # --- the bot's own view, for the rules ---------------------------------------------------------

    def __situation(self) -> Situation:
        accounts = frozenset(str(a) for a in (self.__client.managedAccounts() or ()))
        return Situation(self.__today(), self.__state() == "connected", True, accounts, frozenset())

    def __plan_refusal(self) -> str | None:
        state = self.__state()
        if state != "connected" and self.__authority.authorized and self.__authority.trading_date == self.__today():
            return f"the Gateway connection is {state}: trading paused until it is connected and synced"
        return plan_refusal(self.__authority, Situation(self.__today(), True, True, frozenset(), frozenset()), None)

    def _positions(self, account: str, symbol: str) -> float:
        return sum(float(getattr(p, "position", 0) or 0) for p in self.__client.positions() or ()
                   if getattr(p, "account", account) == account
                   and getattr(getattr(p, "contract", None), "symbol", None) == symbol)

    def _working(self, account: str, symbol: str, buy: bool) -> float:
        total = 0.0
        for trade in self.__client.openTrades() or ():
            order, contract = getattr(trade, "order", None), getattr(trade, "contract", None)
            status = getattr(getattr(trade, "orderStatus", None), "remaining", None)
            if (getattr(contract, "symbol", None) == symbol and getattr(order, "account", account) in (account, "")
                    and (str(getattr(order, "action", "")).upper() == "BUY") == buy):
                total += float(status if status is not None else getattr(order, "totalQuantity", 0) or 0)
        return total

    def _con_id(self, symbol: str) -> int | None:
        for held in self.__client.positions() or ():
            contract = getattr(held, "contract", None)
            if getattr(contract, "symbol", None) == symbol and getattr(contract, "secType", "STK") == "STK":
                return int(getattr(contract, "conId", 0) or 0) or None
        return None

    def _opened_today(self, day: date, account: str, symbol: str) -> float:
        return self.__day_opened.get((day, account, symbol), 0.0)

    def _day_trades(self, day: date, account: str) -> int:
        return self.__day_trades.get((day, account), 0)

    def __record(self, account: str, legs: tuple[Leg, ...]) -> None:
        today = self.__today()
        for leg in legs:
            key = (today, account, leg.symbol)
            opened = self.__day_opened.get(key, 0.0)
            signed = leg.quantity if leg.buy else -leg.quantity
            if opened and (opened > 0) != leg.buy:
                self.__day_trades[(today, account)] = self.__day_trades.get((today, account), 0) + 1
            self.__day_opened[key] = opened + signed


class _BotBook:
    """The rules' BookView over the bot's own state (see the module's docstring)."""

    def __init__(self, gate: TradingGate, contract: Contract) -> None:
        self.gate, self.contract = gate, contract

    def positions_of(self, account: str, symbol: str) -> tuple[float, ...]:
        return (self.gate._positions(account, symbol),)

    def working(self, account: str, symbol: str, buy: bool, *, excluding: tuple[int, int] | None) -> float:
        return self.gate._working(account, symbol, buy)

    def con_id(self, symbol: str) -> int | None:
        """The order's own conId for its symbol (a contract qualified by the Gateway), else one the bot holds a
        position in; None otherwise (a combo leg the bot cannot resolve is refused here: qualify it first)."""
        if self.contract.symbol == symbol and self.contract.con_id:
            return self.contract.con_id
        return self.gate._con_id(symbol)

    def opened_today(self, day: date, account: str, symbol: str) -> float:
        return self.gate._opened_today(day, account, symbol)

    def day_trades(self, day: date, account: str) -> int:
        return self.gate._day_trades(day, account)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else str(value)
    return str(value)


def place_order_of(contract: Any, order: Any) -> PlaceOrder:
    """The order as the rules read it, from ib_async's Contract and Order (attributes by their names)."""
    get = getattr
    c = Contract(int(get(contract, "conId", 0) or 0), _text(get(contract, "symbol", "")),
                 _text(get(contract, "secType", "")), _text(get(contract, "lastTradeDateOrContractMonth", "")),
                 "" if get(contract, "strike", 0.0) in (0, 0.0, None) else _text(get(contract, "strike", "")),
                 _text(get(contract, "right", "")), _text(get(contract, "multiplier", "")),
                 _text(get(contract, "exchange", "")), _text(get(contract, "primaryExchange", "")),
                 _text(get(contract, "currency", "")), _text(get(contract, "localSymbol", "")),
                 _text(get(contract, "tradingClass", "")), _text(get(contract, "secIdType", "")),
                 _text(get(contract, "secId", "")))
    legs = tuple(ComboLeg(int(get(leg, "conId", 0) or 0), _text(get(leg, "ratio", "")), _text(get(leg, "action", "")),
                          _text(get(leg, "exchange", ""))) for leg in get(contract, "comboLegs", None) or ())
    risky = tuple(dict.fromkeys(name for attr, name in _RISKY if get(order, attr, None) not in _UNSET))
    quantity = get(order, "totalQuantity", "")
    return PlaceOrder(int(get(order, "orderId", 0) or 0), c, legs, _text(get(order, "action", "")),
                      _text(quantity), _text(get(order, "orderType", "")), "", "", _text(get(order, "tif", "")),
                      _text(get(order, "account", "")), "", bool(get(order, "transmit", True)),
                      int(get(order, "parentId", 0) or 0), bool(get(order, "whatIf", False)), risky)
