"""The trading gate's rules, one by one, counting the orders that reached the (fake) Gateway client."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest

from src.broker.connection import StrategyAPI
from src.broker.gate import Authority, OrderRefused, TradingDisabled, TradingGate
from src.firewall.plan import authority_of
from src.gameplan.schema import Gameplan
from testkit.plans import valid_plan

TODAY = date(2026, 12, 1)
REPO_SRC = Path(__file__).resolve().parents[2] / "src"


ACCOUNT = "DU123456"


@dataclass
class Contract:  # ib_async's attribute names
    symbol: str
    secType: str = "STK"  # noqa: N815
    currency: str = "USD"
    conId: int = 0  # noqa: N815


@dataclass
class Order:
    action: str
    totalQuantity: float  # noqa: N815 (ib_async's name)
    account: str = ""


@dataclass
class Position:
    contract: Contract
    position: float
    account: str = ACCOUNT


@dataclass
class OrderStatus:
    remaining: float


@dataclass
class Trade:
    contract: Contract
    order: Order
    orderStatus: OrderStatus  # noqa: N815


@dataclass
class FakeClient:
    """Records what reached the Gateway; one managed account unless told otherwise."""

    sent: list[tuple[str, str, float]] = field(default_factory=list)
    cancelled: list[object] = field(default_factory=list)
    held: list[Position] = field(default_factory=list)
    working: list[Trade] = field(default_factory=list)
    accounts: list[str] = field(default_factory=lambda: [ACCOUNT])

    def placeOrder(self, contract, order):  # noqa: N802
        self.sent.append((contract.symbol, order.action, order.totalQuantity))
        self.working.append(Trade(contract, order, OrderStatus(order.totalQuantity)))
        return "trade"

    def cancelOrder(self, order):  # noqa: N802
        self.cancelled.append(order)

    def positions(self):
        return self.held

    def openTrades(self):  # noqa: N802
        return self.working

    def managedAccounts(self):  # noqa: N802
        return self.accounts


def plan(**changes) -> Gameplan:
    raw = valid_plan(TODAY)
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            raw[outer] = {**raw[outer], inner: value}
        else:
            raw[key] = value
    return Gameplan.model_validate_json(json.dumps(raw))


def gate(client: FakeClient, the_plan: Gameplan | None = None, *, today: date = TODAY,
         state: str = "connected", days: dict[str, date] | None = None) -> TradingGate:
    """A gate on `the_plan`; `days["today"]` is its clock, for a test to move."""
    the_plan = the_plan or plan()
    days = days if days is not None else {"today": today}
    return TradingGate(client, authority_of(the_plan, "ab" * 32), today=lambda: days["today"],
                       connection_state=lambda: state)


def test_an_order_within_the_plan_reaches_the_gateway():
    client = FakeClient()
    g = gate(client)
    assert g.place_order(Contract("SPY"), Order("BUY", 10)) == "trade"
    assert client.sent == [("SPY", "BUY", 10)] and g.placed == 1 and g.refused == 0


@pytest.mark.parametrize(("the_plan", "order", "why"), [
    (lambda: plan(strategy="C", symbols=[], position_size_multiplier=0, vix_source_verified=True,
                  key_levels={}),
     ("SPY", "BUY", 1), "no trading authority"),
    (plan, ("TSLA", "BUY", 1), "'TSLA' is not in the plan's symbols"),
    (plan, ("SPY", "BUY", 10_000), "would be 10000, beyond hard_limits.max_single_position"),
    (plan, ("SPY", "BUY", 0), "positive number of shares"),
    (plan, ("SPY", "SHORT", 1), "not a BUY/SELL order"),
    (plan, ("SPY", "BUY", float("nan")), "positive number of shares"),
    (plan, ("SPY", "BUY", 1.5), "positive number of shares"),
    (plan, ("ſpy", "BUY", 1), "is not in the plan's symbols"),
])
def test_each_refusal_sends_nothing_and_says_why(the_plan, order, why, caplog):
    client = FakeClient()
    g = gate(client, the_plan())
    symbol, action, quantity = order
    with pytest.raises(OrderRefused) as refused:
        g.place_order(Contract(symbol), Order(action, quantity))
    assert why in refused.value.reason and isinstance(refused.value, TradingDisabled)
    assert client.sent == [] and g.refused == 1
    assert any(r.levelname == "ERROR" and "Order REFUSED" in r.getMessage() for r in caplog.records)


def test_authority_ends_at_the_date_change_in_new_york():
    client, days = FakeClient(), {"today": TODAY}
    g = gate(client, days=days)
    g.place_order(Contract("SPY"), Order("BUY", 1))
    days["today"] = TODAY + timedelta(days=1)
    with pytest.raises(OrderRefused, match="authority ended"):
        g.place_order(Contract("SPY"), Order("BUY", 1))
    assert len(client.sent) == 1 and not g.authorized_now()


@pytest.mark.parametrize("state", ["degraded", "reconnecting", "connecting"])
def test_no_order_while_the_connection_is_not_up(state):
    client = FakeClient()
    with pytest.raises(OrderRefused, match=f"connection is {state}"):
        gate(client, state=state).place_order(Contract("SPY"), Order("BUY", 1))
    assert client.sent == []


def test_the_position_an_order_would_leave_is_bounded_too():
    limit = plan().hard_limits.max_single_position
    client = FakeClient(held=[Position(Contract("SPY"), limit - 1)])
    g = gate(client)
    with pytest.raises(OrderRefused, match="beyond hard_limits.max_single_position"):
        g.place_order(Contract("SPY"), Order("BUY", 2))
    g.place_order(Contract("SPY"), Order("SELL", 2))  # reducing is fine
    assert client.sent == [("SPY", "SELL", 2)]


def test_working_orders_count_towards_the_limit():
    """The issue's reproduction: three BUY 10 QQQ back to back against max_single_position 10."""
    client = FakeClient()
    g = gate(client)
    g.place_order(Contract("QQQ"), Order("BUY", 10))
    for _ in range(2):
        with pytest.raises(OrderRefused, match="working buys 10"):
            g.place_order(Contract("QQQ"), Order("BUY", 10))
    assert client.sent == [("QQQ", "BUY", 10)]


@pytest.mark.parametrize(("contract", "why"), [
    (Contract("SPY", secType="OPT"), "security type 'OPT'"),
    (Contract("SPY", currency="EUR"), "currency 'EUR'"),
])
def test_only_the_plans_stocks_in_dollars(contract, why):
    client = FakeClient()
    with pytest.raises(OrderRefused, match=why):
        gate(client).place_order(contract, Order("BUY", 1))
    assert client.sent == []


def test_the_account_is_one_the_gateway_manages_and_named_when_it_manages_several():
    client = FakeClient(accounts=[ACCOUNT, "DU999"])
    g = gate(client)
    with pytest.raises(OrderRefused, match="names no account"):
        g.place_order(Contract("SPY"), Order("BUY", 1))
    with pytest.raises(OrderRefused, match="not managed"):
        g.place_order(Contract("SPY"), Order("BUY", 1, account="U0000000"))
    order = Order("BUY", 1, account="DU999")
    g.place_order(Contract("SPY"), order)
    single = FakeClient()
    named = Order("BUY", 1)
    gate(single).place_order(Contract("SPY"), named)
    assert client.sent == [("SPY", "BUY", 1)] and named.account == ACCOUNT  # the one account, named for it


def test_a_symbol_in_earnings_blackout_is_refused():
    # the schema rejects a plan listing a symbol in both lists; an Authority built by hand still refuses it
    client = FakeClient()
    auth = authority_of(plan(), "ab" * 32)
    auth = Authority(**{**auth.__dict__, "blackout": frozenset({"SPY"})})
    g = TradingGate(client, auth, today=lambda: TODAY, connection_state=lambda: "connected")
    with pytest.raises(OrderRefused, match="earnings_blackout"):
        g.place_order(Contract("SPY"), Order("BUY", 1))
    assert client.sent == []


def test_the_drawdown_governor_allows_only_reducing_orders_without_a_flip():
    client = FakeClient(held=[Position(Contract("SPY"), 5)])
    g = gate(client, plan(**{"hard_limits.weekly_drawdown_governor_active": True}))
    with pytest.raises(OrderRefused, match="weekly_drawdown_governor_active"):
        g.place_order(Contract("SPY"), Order("BUY", 1))
    with pytest.raises(OrderRefused, match="weekly_drawdown_governor_active"):
        g.place_order(Contract("SPY"), Order("SELL", 8))  # long 5 -> short 3: a flip
    g.place_order(Contract("SPY"), Order("SELL", 1))
    assert client.sent == [("SPY", "SELL", 1)]


def test_day_trades_beyond_pdt_trades_remaining_are_refused():
    client = FakeClient()
    g = gate(client, plan(**{"hard_limits.pdt_trades_remaining": 0}))
    g.place_order(Contract("SPY"), Order("BUY", 2))
    with pytest.raises(OrderRefused, match="day trade"):
        g.place_order(Contract("SPY"), Order("SELL", 2))
    assert client.sent == [("SPY", "BUY", 2)]


def test_cancelling_is_allowed_while_connected_only():
    client = FakeClient()
    gate(client).cancel_order("order-1")
    with pytest.raises(OrderRefused):
        gate(client, state="degraded").cancel_order("order-2")
    assert client.cancelled == ["order-1"]


def test_the_strategy_api_hands_out_the_real_client_and_authority_cannot_be_set():
    """With the guarantee at the wire (the firewall), a strategy gets ib_async's IB itself."""
    broker = type("Broker", (), {"ib": object(), "state": "connected"})()
    api = StrategyAPI(broker, gate(FakeClient()))  # type: ignore[arg-type]
    assert api.ib is broker.ib
    public = [name for name in dir(api) if not name.startswith("_")]
    assert "broker" not in public and "gate" not in public
    with pytest.raises(AttributeError):
        api.trading_authorized = True  # type: ignore[misc]
    with pytest.raises(AttributeError):
        api.ib = object()  # type: ignore[misc]  # a read-only property


def test_only_the_gate_calls_place_order_in_src():
    callers = [path.relative_to(REPO_SRC).as_posix() for path in REPO_SRC.rglob("*.py")
               if re.search(r"\.placeOrder\(", path.read_text())]
    assert callers == ["broker/gate.py"]
