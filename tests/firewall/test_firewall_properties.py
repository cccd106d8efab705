"""The firewall's rules, proven by hypothesis against an oracle written here (not the rules' own helpers).

Rules level (`judge`, pure, many examples): random authorities, books, situations and orders, with
lookalike symbols ("spy", "ſpy", "SPY ", "SPY\\u200b"), odd quantities ("nan", "1e400", "abc"...),
odd actions, accounts, risky features, conIds and combo legs. `judge` never raises; it allows an
order exactly when the oracle does (allowed => every condition below holds, and the other way round).

Wire level (fewer examples, each a simulator and a firewall): random sequences of placeOrder frames
that ib_async's own Client serialized, some of their fields mutated, sent by a raw socket client.
What reached the simulator is exactly what the journal records as allowed, and each allowed order
satisfies the oracle given the positions the simulator reported before it.

Profiles: tests/conftest.py (HYPOTHESIS_PROFILE=ci by default, long for 10 000 examples).
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from src.firewall.rules import Authority, Situation, judge
from src.tws import wire
from src.tws.orders import RISKY_FEATURES, ComboLeg, Contract, PlaceOrder, decode_place_order
from testkit.firewall import running_firewall
from testkit.plans import put_in_force, valid_plan
from tests.helpers.simulator import running_simulator

TODAY = date(2026, 2, 10)
POOL = ["SPY", "spy", "\u017fpy", "SPY ", "SPY\u200b", "QQQ", "BRK.B", "NVDA"]
ORDER_SYMBOLS = [*POOL, "TSLA", ""]
CON_IDS = {symbol: 1000 + i for i, symbol in enumerate(POOL)}  # one conId per spelling, as a Gateway would
WRONG_CON_ID = 999_999
ACCOUNTS = ["DU1", "DU2"]
QUANTITY_TEXTS = ["nan", "NaN", "inf", "-inf", "-5", "0", "-0", "1.5", "1e400", "1e15", "", "abc", "5.0", "1e1",
                  "0x10", " 5", "10.000000001"]
OFTEN = st.sampled_from([True] * 9 + [False])
RARELY = st.sampled_from([False] * 9 + [True])


def mostly(good: Any, other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` seven times in eight, else anything `other` draws: enough allowed orders to check."""
    return st.sampled_from([True] * 7 + [False]).flatmap(lambda yes: st.just(good) if yes else other)


# --- the oracle --------------------------------------------------------------------------------------

def ascii_only(text: str) -> bool:
    return all(ord(c) < 128 for c in text)


def whole_positive(text: str) -> Decimal | None:
    """A finite, whole, positive number written in decimal, or None (independent of rules.quantity)."""
    if text != text.strip() or text.lower().startswith(("0x", "-0x")):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0 or value != value.to_integral_value():
        return None
    return value


def side(action: str) -> bool | None:
    """True for a buy, False for a sell, None for anything else (SSHORT, empty, non-ASCII)."""
    if not ascii_only(action):
        return None
    return {"BUY": True, "SELL": False}.get(action.upper())


@dataclass
class FakeBook:
    """A BookView from plain dicts: positions, working shares per side, conIds, today's opened shares."""

    positions: dict[tuple[str, str], float] = field(default_factory=dict)
    working_shares: dict[tuple[str, str, bool], float] = field(default_factory=dict)
    con_ids: dict[str, int | None] = field(default_factory=dict)
    opened: dict[tuple[str, str], float] = field(default_factory=dict)
    trades: dict[str, int] = field(default_factory=dict)

    def positions_of(self, account: str, symbol: str) -> tuple[float, ...]:
        return (self.positions.get((account, symbol), 0.0),)

    def working(self, account: str, symbol: str, buy: bool, *, excluding: tuple[int, int] | None) -> float:
        return self.working_shares.get((account, symbol, buy), 0.0)

    def con_id(self, symbol: str) -> int | None:
        return self.con_ids.get(symbol)

    def opened_today(self, day: date, account: str, symbol: str) -> float:
        return self.opened.get((account, symbol), 0.0) if day == TODAY else 0.0

    def day_trades(self, day: date, account: str) -> int:
        return self.trades.get(account, 0) if day == TODAY else 0


def oracle(order: PlaceOrder, authority: Authority | None, book: FakeBook, situation: Situation) -> list[str]:
    """Every condition an allowed order must meet that this order does not: empty means allowed."""
    failed: list[str] = []
    if authority is None or not authority.authorized:
        return ["no authority"]
    if authority.trading_date != situation.today:
        failed.append("plan not for today")
    if not situation.synced or not situation.ib_connected:
        failed.append("gateway session")
    account = order.account
    if not account and len(situation.managed_accounts) == 1:
        [account] = situation.managed_accounts
    if account not in situation.managed_accounts or (situation.expected_accounts
                                                     and account not in situation.expected_accounts):
        failed.append("account")
    if order.risky:
        failed.append("risky")
    shares = whole_positive(order.total_quantity)
    buy = side(order.action)
    if shares is None or buy is None:
        return [*failed, "quantity or action"]
    c = order.contract
    moves: list[tuple[str, bool, Decimal]] = []  # (symbol, buy, shares) per leg
    if c.sec_type == "BAG":
        by_con_id = {book.con_ids[s]: s for s in authority.symbols if book.con_ids.get(s)}
        if not order.legs or c.currency != "USD":
            return [*failed, "combo"]
        for leg in order.legs:
            ratio, leg_buy = whole_positive(leg.ratio), side(leg.action)
            if leg.con_id not in by_con_id or ratio is None or leg_buy is None:
                return [*failed, "combo leg"]
            moves.append((by_con_id[leg.con_id], leg_buy == buy, ratio * shares))
    else:
        symbol = c.symbol
        if order.legs or not (ascii_only(symbol) and symbol in authority.symbols) or c.sec_type != "STK" \
                or c.currency != "USD":
            return [*failed, "contract"]
        unset = c.strike in ("", "0", "0.0") and c.right in ("", "?", "0") and c.multiplier in ("", "1")
        if c.last_trade_date or not unset or c.sec_id or c.sec_id_type or c.local_symbol not in ("", symbol):
            return [*failed, "stock fields"]
        if c.con_id and c.con_id != book.con_ids.get(symbol):
            return [*failed, "conId"]
        moves.append((symbol, buy, shares))
    limit = authority.max_single_position
    totals: dict[tuple[str, bool], Decimal] = {}
    for symbol, leg_buy, quantity in moves:
        totals[(symbol, leg_buy)] = totals.get((symbol, leg_buy), Decimal(0)) + quantity
    for (symbol, leg_buy), quantity in totals.items():
        if symbol in authority.blackout:
            failed.append("blackout")
        held = Decimal(str(book.positions.get((account, symbol), 0.0)))
        working = Decimal(str(book.working_shares.get((account, symbol, leg_buy), 0.0)))
        sign = 1 if leg_buy else -1
        after = held + sign * (working + quantity)
        if quantity > limit or abs(after) > limit:
            failed.append("max_single_position")
        if authority.drawdown_governor and not (abs(after) < abs(held) and (after == 0 or (after > 0) == (held > 0))):
            failed.append("drawdown governor")
        opened = book.opened.get((account, symbol), 0.0)
        if opened and (opened > 0) != leg_buy and book.trades.get(account, 0) >= authority.pdt_trades_remaining:
            failed.append("pdt")
    return failed


# --- rules level ------------------------------------------------------------------------------------------

@st.composite
def authorities(draw: st.DrawFn) -> Authority | None:
    if draw(RARELY):
        return None
    return Authority(
        trading_date=TODAY - timedelta(days=draw(mostly(0, st.just(1)))),
        strategy="A", authorized=draw(OFTEN),
        symbols=frozenset(draw(mostly(["SPY", "QQQ", "BRK.B"], st.lists(st.sampled_from(POOL), max_size=5)))),
        blackout=frozenset(draw(mostly(["NVDA"], st.lists(st.sampled_from(POOL), max_size=2)))),
        max_single_position=draw(mostly(10, st.integers(0, 20))), pdt_trades_remaining=draw(st.integers(0, 3)),
        drawdown_governor=draw(RARELY), sha256="0" * 64)


@st.composite
def books(draw: st.DrawFn) -> FakeBook:
    small = mostly(0, st.integers(-30, 30) | st.sampled_from([-1, 1, 3, -3, 10, -10]))
    book = FakeBook(con_ids={s: (None if draw(RARELY) else CON_IDS[s]) for s in POOL})
    for account in ACCOUNTS:
        for symbol in POOL:
            book.positions[(account, symbol)] = float(draw(small))
            book.opened[(account, symbol)] = float(draw(mostly(0, st.sampled_from([-5, 3]))))
            for buy in (True, False):
                book.working_shares[(account, symbol, buy)] = float(draw(mostly(0, st.sampled_from([1, 5, 12]))))
        book.trades[account] = draw(st.integers(0, 4))
    return book


@st.composite
def situations(draw: st.DrawFn) -> Situation:
    managed = frozenset(draw(mostly(ACCOUNTS, st.lists(st.sampled_from(ACCOUNTS), max_size=2))))
    expected = frozenset(draw(mostly([], st.sampled_from([["DU1"], ["DU2"]]))))
    return Situation(TODAY, draw(OFTEN), draw(OFTEN), managed, expected)


@st.composite
def place_orders(draw: st.DrawFn) -> PlaceOrder:
    sec_type = draw(mostly("STK", st.sampled_from(["STK", "BAG", "BAG", "OPT", "FUT", "CASH", "stk"])))
    symbol = draw(mostly("SPY", st.sampled_from(ORDER_SYMBOLS)))
    con_id = draw(st.sampled_from([0, 0, CON_IDS.get(symbol, 0), WRONG_CON_ID]))
    extras = {"last_trade_date": "", "strike": "", "right": "", "multiplier": ""}
    if draw(RARELY) or sec_type in ("OPT", "FUT"):
        extras = {"last_trade_date": "20270115", "strike": draw(st.sampled_from(["500", ""])),
                  "right": draw(st.sampled_from(["C", ""])), "multiplier": draw(st.sampled_from(["100", ""]))}
    contract = Contract(con_id=con_id, symbol=symbol, sec_type=sec_type, **extras, exchange="SMART",
                        primary_exchange="", currency=draw(mostly("USD", st.sampled_from(["USD", "EUR"]))),
                        local_symbol=draw(mostly("", st.sampled_from([symbol, "SPY C500"]))), trading_class="",
                        sec_id_type="", sec_id=draw(mostly("", st.just("US78462F1030"))))
    legs: list[ComboLeg] = []
    if sec_type == "BAG" or draw(RARELY):
        leg_ids = st.sampled_from([*CON_IDS.values(), 0, WRONG_CON_ID])
        legs = draw(st.lists(st.builds(ComboLeg, con_id=leg_ids,
                                       ratio=st.sampled_from(["1", "1", "2", "0", "1.5", "-1", "", "nan"]),
                                       action=st.sampled_from(["BUY", "SELL", "sell", "SSHORT", ""]),
                                       exchange=st.just("SMART")),
                             max_size=3))
    whole = st.integers(1, 25).map(str)
    return PlaceOrder(
        order_id=draw(st.integers(1, 50)), contract=contract, legs=tuple(legs),
        action=draw(st.sampled_from(["BUY"] * 4 + ["SELL"] * 4 + ["SSHORT", "buy", "", "B\u016aY"])),
        total_quantity=draw(mostly("1", whole | whole | st.sampled_from(QUANTITY_TEXTS))), order_type="MKT",
        lmt_price="", aux_price="", tif="DAY", account=draw(mostly("DU1", st.sampled_from([*ACCOUNTS, "DU3", ""]))),
        order_ref="", transmit=True, parent_id=0, what_if=False,
        risky=draw(mostly((), st.sampled_from([(r,) for r in RISKY_FEATURES]))))


@given(order=place_orders(), authority=authorities(), book=books(), situation=situations(),
       client_id=st.sampled_from([1, 1, 1, None]))
def test_judge_allows_exactly_what_the_oracle_allows(order: PlaceOrder, authority: Authority | None, book: FakeBook,
                                                     situation: Situation, client_id: int | None) -> None:
    if client_id is None:
        authority = None  # the proxy has no authority for a connection without startApi
    verdict = judge(order, client_id, authority, book, situation)  # never raises
    failed = oracle(order, authority, book, situation)
    event("allowed" if verdict.allowed else "refused")
    if verdict.allowed:
        assert failed == [], f"allowed, but the oracle says: {failed}"
        assert verdict.account in situation.managed_accounts
        assert sum(leg.quantity for leg in verdict.legs) > 0
    else:
        assert failed, f"refused ({verdict.reason}) though the oracle finds nothing wrong"


@given(authority=authorities().filter(lambda a: a is not None), symbol=st.sampled_from(["SPY", "QQQ", "BRK.B"]),
       buy=st.booleans(), shares=st.integers(1, 10))
def test_an_allowed_order_stays_allowed_only_with_a_plan_symbol_as_written(
        authority: Authority, symbol: str, buy: bool, shares: int) -> None:
    """Changing one character of an allowed stock order's symbol (case, a look-alike, a space) refuses it,
    unless the plan lists that exact ASCII spelling too."""
    authority = replace(authority, authorized=True, trading_date=TODAY, symbols=authority.symbols | {symbol},
                        blackout=authority.blackout - {symbol}, max_single_position=10, drawdown_governor=False)
    book, situation = FakeBook(con_ids=dict(CON_IDS)), Situation(TODAY, True, True, frozenset({"DU1"}))
    contract = Contract(0, symbol, "STK", "", "", "", "", "SMART", "", "USD", "", "", "", "")
    order = PlaceOrder(1, contract, (), "BUY" if buy else "SELL", str(shares), "MKT", "", "", "DAY", "DU1", "", True,
                       0, False, ())
    assert judge(order, 1, authority, book, situation).allowed
    for other in {symbol.lower(), symbol + " ", symbol + "\u200b", symbol.replace("S", "\u017f"), " " + symbol,
                  symbol.replace("Q", "\u0051\u0301"), symbol.upper().replace("B", "\u0392")} - {symbol}:
        changed = order._replace(contract=contract._replace(symbol=other))
        allowed = judge(changed, 1, authority, book, situation).allowed
        expected = ascii_only(other) and other in authority.symbols and other not in authority.blackout
        assert allowed == expected, repr(other)


def test_a_combo_repeating_a_leg_cannot_exceed_the_limit() -> None:
    spy = CON_IDS["SPY"]
    authority = Authority(TODAY, "A", True, frozenset({"SPY"}), frozenset(), 10, 3, False, "0" * 64)
    book = FakeBook(con_ids={"SPY": spy})
    bag = Contract(0, "SPY", "BAG", "", "", "", "", "SMART", "", "USD", "", "", "", "")
    legs = (ComboLeg(spy, "1", "BUY", "SMART"), ComboLeg(spy, "1", "BUY", "SMART"))
    order = PlaceOrder(1, bag, legs, "BUY", "6", "MKT", "", "", "DAY", "DU1", "", True, 0, False, ())
    verdict = judge(order, 1, authority, book, Situation(TODAY, True, True, frozenset({"DU1"})))
    # 2 legs x 6 shares = 12 SPY bought, against max_single_position 10
    assert not verdict.allowed, f"allowed, moving {[(leg.symbol, leg.quantity) for leg in verdict.legs]}"


# --- wire level -------------------------------------------------------------------------------------------

VERSION = wire.MAX_TEXT_VERSION  # what the simulator serves behind the firewall
ACCOUNT, OTHER = "DU123456", "DU234567"
PLAN_SYMBOLS, BLACKOUT, LIMIT = frozenset({"SPY", "QQQ", "BRK.B"}), frozenset({"NVDA"}), 10


def ib_async_place_order(order_id: int, contract: Any, order: Any, version: int = VERSION) -> list[str]:
    """The fields ib_async's Client.placeOrder hands to its socket (see tests/tws/test_orders.py)."""
    from ib_async.client import Client

    client = Client(object())
    client._serverVersion = version
    client.connState = Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append  # type: ignore[method-assign]
    client.placeOrder(order_id, contract, order)
    [message] = sent
    return message.split("\0")[:-1]


@dataclass(frozen=True)
class WireOrder:
    symbol: str
    sec_type: str
    currency: str
    action: str
    quantity: str
    account: str
    mutate: tuple[int, str] | None  # (field index, new text) applied after ib_async serialized it

    def fields(self, order_id: int) -> list[str]:
        from ib_async import Contract as IbContract
        from ib_async import Order

        contract = IbContract(symbol=self.symbol, secType=self.sec_type, exchange="SMART", currency=self.currency)
        if self.sec_type == "OPT":
            contract.lastTradeDateOrContractMonth, contract.strike, contract.right = "20270115", 500.0, "C"
        quantity = float(self.quantity) if self.quantity not in ("", "abc") else 1.0
        fields = ib_async_place_order(order_id, contract, Order(action=self.action, totalQuantity=quantity,
                                                                 orderType="MKT", account=self.account))
        fields[17] = self.quantity if self.quantity in ("", "abc") else fields[17]
        if self.mutate is not None:
            index, text = self.mutate
            fields[index] = text
        return fields


wire_orders = st.builds(
    WireOrder,
    symbol=mostly("SPY", st.sampled_from(["QQQ", "QQQ", "BRK.B", "NVDA", "spy", "TSLA"])),
    sec_type=mostly("STK", st.just("OPT")),
    currency=mostly("USD", st.just("EUR")),
    action=st.sampled_from(["BUY"] * 4 + ["SELL"] * 4 + ["SSHORT"]),
    quantity=mostly("1", st.sampled_from(["2", "3", "5", "10", "11", "0", "-1", "1.5", "nan", "", "abc", "1e15"])),
    account=mostly(ACCOUNT, st.sampled_from([OTHER, "U999", ""])),
    mutate=mostly(None, st.tuples(
        st.sampled_from([3, 4, 11, 16, 17, 23]),  # symbol, secType, currency, action, totalQuantity, account
        st.sampled_from(["SPY", "spy", "\u017fpy", "SPY ", "STK", "OPT", "USD", "EUR", "BUY", "buy", "SELL",
                         "1e400", "inf", "-inf", "1e1", "7", "", ACCOUNT, "U999"]))),
)


class RawClient:
    """A TWS API client on a plain socket: every read has a deadline."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.frames = wire.FrameBuffer()
        self.received: list[list[str]] = []

    def handshake(self, client_id: int = 1) -> int:
        self.sock.sendall(wire.opening(157, VERSION))
        version = int(self.read_until(lambda f: True)[0])
        self.sock.sendall(wire.start_api(client_id))
        self.read_until(lambda f: f[0] == str(wire.NEXT_VALID_ID))
        return version

    def read_until(self, want: Callable[[list[str]], bool], timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            while (payload := self.frames.next_payload()) is not None:
                fields = wire.fields_of(payload)
                self.received.append(fields)
                if fields and want(fields):
                    return fields
            left = deadline - time.monotonic()
            assert left > 0, "no such message in time"
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 16)
            assert data, "the firewall closed the connection"
            self.frames.feed(data)

    def close(self) -> None:
        self.sock.close()


def wait(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def wire_oracle(fields: list[str], positions: dict[str, dict[str, float]], governor: bool,
                opened: dict[tuple[str, str], float], trades: dict[str, int]) -> list[str]:
    """The oracle for a placeOrder as sent, given the simulator's positions and today's allowed orders."""
    order = decode_place_order(fields, VERSION)
    authority = Authority(TODAY, "A", True, PLAN_SYMBOLS, BLACKOUT, LIMIT, 3, governor, "")
    book = FakeBook(positions={(a, s): q for a, held in positions.items() for s, q in held.items()},
                    opened=opened, trades=trades)
    return oracle(order, authority, book, Situation(TODAY, True, True, frozenset({ACCOUNT, OTHER})))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(orders=st.lists(wire_orders, min_size=1, max_size=6), governor=RARELY,
       start=st.fixed_dictionaries({"SPY": st.integers(-10, 10), "QQQ": st.sampled_from([0, 0, 4, -4, 10])}))
def test_what_reaches_the_gateway_is_exactly_what_is_journalled_as_allowed(
        tmp_path_factory: pytest.TempPathFactory, orders: list[WireOrder], governor: bool,
        start: dict[str, int]) -> None:
    state = tmp_path_factory.mktemp("fw")
    put_in_force(state, hard_limits={**valid_plan()["hard_limits"],
                                               "weekly_drawdown_governor_active": governor})
    held = {ACCOUNT: {s: float(q) for s, q in start.items() if q}}
    with running_simulator(positions=held) as sim, running_firewall(sim.port, state) as fw:
        book = fw.firewall.book
        wait(lambda: all(book.con_id(s) for s in ("SPY", "QQQ")))  # the firewall resolved its plan symbols
        client = RawClient(fw.port)
        try:
            assert client.handshake() == VERSION
            opened: dict[tuple[str, str], float] = {}
            trades: dict[str, int] = {}
            sent: dict[int, list[str]] = {}
            for n, spec in enumerate(orders):
                order_id = 100 + n
                fields = spec.fields(order_id)
                positions = sim.positions
                client.sock.sendall(wire.encode(*fields))
                wait(lambda n=n: len(fw.decisions()) > n)
                decision = fw.decisions()[n]
                assert str(decision["order_id"]) == str(order_id)
                sent[order_id] = fields
                if decision["decision"] != "allowed":
                    client.read_until(lambda f, i=order_id: f[0] == "4" and f[2] == str(i) and f[3] == "201")
                    continue
                failed = wire_oracle(fields, positions, governor, opened, trades)
                assert failed == [], f"allowed {fields[2:24]} given {positions}, but the oracle says {failed}"
                for symbol, action, quantity in decision["legs"]:  # today's opened shares, as a PDT count
                    key = (decision["account"], symbol)
                    signed = quantity if action == "BUY" else -quantity
                    if opened.get(key) and (opened[key] > 0) != (signed > 0):
                        trades[decision["account"]] = trades.get(decision["account"], 0) + 1
                    opened[key] = opened.get(key, 0.0) + signed
                # settled: the simulator has it and has done with it, the firewall's book has caught up
                wait(lambda i=order_id: any(o["order_id"] == i and o["status"] in ("Filled", "Rejected", "Cancelled")
                                            for o in sim.orders))
                wait(lambda: not book.orders and not book.fills_pending)
            time.sleep(0.05)
            allowed = {int(d["order_id"]) for d in fw.decisions() if d["decision"] == "allowed"}
            reached = {o["order_id"] for o in sim.orders if o["client_id"] == 1}
            assert reached == allowed
            assert all(math.isfinite(o["quantity"]) and o["quantity"] > 0 for o in sim.orders)
            event(f"{len(allowed)} allowed of {len(orders)}")
        finally:
            client.close()
