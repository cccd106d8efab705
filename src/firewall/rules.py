"""The rules an order must pass to reach the Gateway: pure, no I/O, no clock of its own.

`judge` takes one decoded placeOrder, the authority of the client that sent it (None: no order
authority), what the Gateway reports (a `BookView`) and the moment (`Situation`), and returns the
reason for a refusal, or None when every rule allows the order. Any doubt is a refusal:

* authority: the client's plan grants trading authority and is for today's New York date;
* the Gateway's session: the firewall's own session is synced, and 1100 is not in force;
* the contract: a plan symbol exactly as written (ASCII, no case folding), STK in USD, no
  expiry/strike/right/multiplier/security id, a conId (if given) equal to the symbol's own; a
  combo (BAG) only when every leg is a plan symbol and passes as an order of its own;
* features that move a position other than by the order's shares (FA allocation, hedges,
  delta-neutral legs, cash quantity, scale orders): refused;
* the account: one the Gateway manages (and in EXPECTED_ACCOUNTS when set); limits are per account;
* the quantity: finite, positive, whole; the position plus the working orders on the same side
  plus this order stays within hard_limits.max_single_position;
* the drawdown governor: only orders that reduce a position without flipping it;
* earnings_blackout; PDT: closing a position opened the same day is a day trade, none beyond
  hard_limits.pdt_trades_remaining.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple, Protocol

from src.tws.orders import PlaceOrder

MAX_QUANTITY_TEXT = 32
STOCK, BAG, DOLLARS = "STK", "BAG", "USD"
EMPTY_NUMBERS = frozenset({"", "0", "0.0", "1.7976931348623157E308"})


@dataclass(frozen=True)
class Authority:
    """What one plan in force allows (the firewall's, and the bot's early check's)."""

    trading_date: date
    strategy: str
    authorized: bool
    symbols: frozenset[str]
    blackout: frozenset[str]
    max_single_position: int
    pdt_trades_remaining: int
    drawdown_governor: bool
    sha256: str


class Situation(NamedTuple):
    """The moment an order is judged (NamedTuples here, not frozen dataclasses: built for every order)."""

    today: date
    synced: bool  # the firewall's own session has the Gateway's positions and orders
    ib_connected: bool  # no 1100 in force
    managed_accounts: frozenset[str]
    expected_accounts: frozenset[str] = frozenset()


class BookView(Protocol):
    """What the rules read of positions and working orders (see book.Book)."""

    def positions_of(self, account: str, symbol: str) -> tuple[float, ...]:
        """Every value the position may have now (more than one while a fill is being settled)."""
        ...

    def working(self, account: str, symbol: str, buy: bool, *, excluding: tuple[int, int] | None) -> float: ...

    def con_id(self, symbol: str) -> int | None: ...

    def opened_today(self, day: date, account: str, symbol: str) -> float: ...

    def day_trades(self, day: date, account: str) -> int: ...


class Leg(NamedTuple):
    """One position an order moves: a symbol, a side and a number of shares."""

    symbol: str
    buy: bool
    quantity: float


class Verdict(NamedTuple):
    """A judgement: `reason` is None when allowed; `legs` are what it moves (for the book)."""

    reason: str | None
    account: str = ""
    legs: tuple[Leg, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.reason is None


def quantity(text: str) -> float | None:
    """A whole, positive, finite number of shares, or None."""
    if not text or len(text) > MAX_QUANTITY_TEXT:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value <= 0 or not value.is_integer() or value >= 1e12:
        return None
    return value


def plan_refusal(authority: Authority | None, situation: Situation, client_id: int | None) -> str | None:
    """The rules that do not depend on the order itself."""
    if authority is None:
        return f"client id {client_id} has no order authority" if client_id is not None else \
            "no startApi yet: no client id, no order authority"
    if not authority.authorized:
        return f"no trading authority under the plan in force (strategy {authority.strategy})"
    if authority.trading_date != situation.today:
        return (f"the plan in force is for {authority.trading_date}, today is {situation.today} (New York): "
                "authority ended")
    if not situation.synced:
        return "the firewall has not synced positions and orders with the Gateway: cannot judge"
    if not situation.ib_connected:
        return "the Gateway has lost connectivity to IBKR (1100 in force)"
    return None


def judge(order: PlaceOrder, client_id: int | None, authority: Authority | None, book: BookView,
          situation: Situation) -> Verdict:
    """Every rule, in order; the first that fails is the reason."""
    reason = plan_refusal(authority, situation, client_id)
    if reason is not None or authority is None:
        return Verdict(reason or "no authority")
    account, reason = _account(order.account, situation)
    if reason is not None:
        return Verdict(reason, account)
    if order.risky:
        return Verdict(f"the order uses {', '.join(order.risky)}: not allowed through the firewall", account)
    shares = quantity(order.total_quantity)
    action = order.action.upper() if order.action.isascii() else order.action
    if shares is None or action not in ("BUY", "SELL"):
        return Verdict(f"not a BUY/SELL order of a whole, positive number of shares "
                       f"(action {_show(order.action)}, quantity {_show(order.total_quantity)})", account)
    legs, reason = _legs(order, action == "BUY", shares, authority, book)
    if reason is not None:
        return Verdict(reason, account)
    if order.what_if:  # a margin query moves nothing
        return Verdict(None, account, ())
    key = (client_id, order.order_id) if client_id is not None else None
    for leg in legs:
        reason = _limits(leg, account, authority, book, situation.today, key)
        if reason is not None:
            return Verdict(reason, account, legs)
    return Verdict(None, account, legs)


def _account(account: str, situation: Situation) -> tuple[str, str | None]:
    managed = situation.managed_accounts
    if not account:
        if len(managed) != 1:
            return "", "the order names no account and the Gateway manages several: name one"
        account = next(iter(managed))
    if account not in managed:
        return account, f"account {_show(account)} is not managed by this Gateway login"
    if situation.expected_accounts and account not in situation.expected_accounts:
        return account, f"account {_show(account)} is not in EXPECTED_ACCOUNTS"
    return account, None


def _legs(order: PlaceOrder, buy: bool, shares: float, authority: Authority,
          book: BookView) -> tuple[tuple[Leg, ...], str | None]:
    c = order.contract
    if c.sec_type == BAG:
        if not order.legs:
            return (), "a combo (BAG) order without legs"
        if c.currency != DOLLARS:
            return (), f"currency {_show(c.currency)}: only {DOLLARS}"
        legs = []
        for leg in order.legs:
            symbol = _symbol_of(leg.con_id, authority, book)
            ratio = quantity(leg.ratio)
            leg_action = leg.action.upper() if leg.action.isascii() else leg.action
            if symbol is None:
                return (), f"combo leg conId {leg.con_id} is not a plan symbol's stock"
            if ratio is None or leg_action not in ("BUY", "SELL"):
                return (), f"combo leg {symbol}: not a BUY/SELL leg with a whole, positive ratio"
            legs.append(Leg(symbol, (leg_action == "BUY") == buy, ratio * shares))
        return _merged(legs), None
    if order.legs:
        return (), f"combo legs on a {_show(c.sec_type)} contract"
    symbol = c.symbol
    if not (symbol.isascii() and symbol in authority.symbols):
        return (), f"{_show(symbol) or 'a contract without a symbol'} is not in the plan's symbols"
    if c.sec_type != STOCK:
        return (), f"security type {_show(c.sec_type)}: only {STOCK} for {symbol}"
    if c.currency != DOLLARS:
        return (), f"currency {_show(c.currency)}: only {DOLLARS} for {symbol}"
    if c.last_trade_date or c.right not in ("", "?", "0") or c.strike not in EMPTY_NUMBERS \
            or c.multiplier not in ("", "1") or c.sec_id_type or c.sec_id:
        return (), f"{symbol}: expiry, strike, right, multiplier or security id set on a stock"
    if c.local_symbol not in ("", symbol):
        return (), f"{symbol}: local symbol {_show(c.local_symbol)} is another contract"
    if c.con_id:
        known = book.con_id(symbol)
        if known is None:
            return (), f"{symbol}: conId {c.con_id} cannot be checked (the Gateway has not resolved {symbol})"
        if known != c.con_id:
            return (), f"conId {c.con_id} is not {symbol}'s ({known})"
    return (Leg(symbol, buy, shares),), None


def _merged(legs: list[Leg]) -> tuple[Leg, ...]:
    """Legs on the same symbol and side add up: a combo repeating a leg moves the sum."""
    total: dict[tuple[str, bool], float] = {}
    for leg in legs:
        total[(leg.symbol, leg.buy)] = total.get((leg.symbol, leg.buy), 0.0) + leg.quantity
    return tuple(Leg(symbol, buy, quantity) for (symbol, buy), quantity in total.items())


def _symbol_of(con_id: int, authority: Authority, book: BookView) -> str | None:
    for symbol in authority.symbols:
        if con_id and book.con_id(symbol) == con_id:
            return symbol
    return None


def _limits(leg: Leg, account: str, authority: Authority, book: BookView, today: date,
            key: tuple[int, int] | None) -> str | None:
    symbol, limit = leg.symbol, authority.max_single_position
    if symbol in authority.blackout:
        return f"{symbol} is in the plan's earnings_blackout"
    working = book.working(account, symbol, leg.buy, excluding=key)
    signed = leg.quantity if leg.buy else -leg.quantity
    for held in book.positions_of(account, symbol):  # each value it may have: every one must pass
        after = held + (working if leg.buy else -working) + signed
        if leg.quantity > limit or abs(after) > limit:
            return (f"{symbol} in {account}: position {held:g} + working {'buys' if leg.buy else 'sells'} "
                    f"{working:g} + this order would be {after:g}, beyond hard_limits.max_single_position {limit}")
        if authority.drawdown_governor and not (abs(after) < abs(held)
                                                and (after == 0 or (after > 0) == (held > 0))):
            return ("hard_limits.weekly_drawdown_governor_active: only orders that reduce a position without "
                    f"flipping it ({symbol} in {account}: {held:g} -> {after:g})")
    opened = book.opened_today(today, account, symbol)
    if opened and (opened > 0) != leg.buy and book.day_trades(today, account) >= authority.pdt_trades_remaining:
        return (f"closing today's {symbol} position would be a day trade; hard_limits.pdt_trades_remaining is "
                f"{authority.pdt_trades_remaining}")
    return None


def _show(text: str, limit: int = 24) -> str:
    shown = "".join(c if " " <= c <= "~" else "?" for c in text[:limit])
    return repr(shown if len(text) <= limit else f"{shown}...")


def authorities_for(bot_client_id: int, authority: Authority | None) -> Mapping[int, Authority]:
    """Authority per client id: the bot's client id gets the plan in force, any other none.
    (One place to give each bot its own plan later.)"""
    return {bot_client_id: authority} if authority is not None else {}
