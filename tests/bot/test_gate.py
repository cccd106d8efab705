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
from src.gameplan.schema import Gameplan
from testkit.plans import valid_plan

TODAY = date(2026, 12, 1)
REPO_SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Contract:
    symbol: str


@dataclass
class Order:
    action: str
    totalQuantity: float  # noqa: N815 (ib_async's name)


@dataclass
class Position:
    contract: Contract
    position: float


@dataclass
class FakeClient:
    """Records what reached the Gateway."""

    sent: list[tuple[str, str, float]] = field(default_factory=list)
    cancelled: list[object] = field(default_factory=list)
    held: list[Position] = field(default_factory=list)

    def placeOrder(self, contract, order):  # noqa: N802
        self.sent.append((contract.symbol, order.action, order.totalQuantity))
        return "trade"

    def cancelOrder(self, order):  # noqa: N802
        self.cancelled.append(order)

    def positions(self):
        return self.held


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
    return TradingGate(client, Authority.from_plan(the_plan, "ab" * 32), today=lambda: days["today"],
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
    (plan, ("TSLA", "BUY", 1), "TSLA is not in the plan's symbols"),
    (plan, ("SPY", "BUY", 10_000), "above hard_limits.max_single_position"),
    (plan, ("SPY", "BUY", 0), "positive quantity"),
    (plan, ("SPY", "SHORT", 1), "not a BUY/SELL order"),
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
    with pytest.raises(OrderRefused, match="would be"):
        g.place_order(Contract("SPY"), Order("BUY", 2))
    g.place_order(Contract("SPY"), Order("SELL", 2))  # reducing is fine
    assert client.sent == [("SPY", "SELL", 2)]


def test_a_symbol_in_earnings_blackout_is_refused():
    # the schema rejects a plan listing a symbol in both lists; an Authority built by hand still refuses it
    client = FakeClient()
    auth = Authority.from_plan(plan(), "ab" * 32)
    auth = Authority(**{**auth.__dict__, "blackout": frozenset({"SPY"})})
    g = TradingGate(client, auth, today=lambda: TODAY, connection_state=lambda: "connected")
    with pytest.raises(OrderRefused, match="earnings_blackout"):
        g.place_order(Contract("SPY"), Order("BUY", 1))
    assert client.sent == []


def test_the_drawdown_governor_allows_only_reducing_orders():
    client = FakeClient(held=[Position(Contract("SPY"), 5)])
    g = gate(client, plan(**{"hard_limits.weekly_drawdown_governor_active": True}))
    with pytest.raises(OrderRefused, match="weekly_drawdown_governor_active"):
        g.place_order(Contract("SPY"), Order("BUY", 1))
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


def test_the_strategy_api_hands_out_no_ib_and_authority_cannot_be_set():
    api = StrategyAPI(object(), gate(FakeClient()))  # type: ignore[arg-type]
    public = [name for name in dir(api) if not name.startswith("_")]
    assert "ib" not in public and "broker" not in public and "gate" not in public
    with pytest.raises(AttributeError):
        api.trading_authorized = True  # type: ignore[misc]
    with pytest.raises(AttributeError):
        api.ib = object()  # type: ignore[attr-defined]  # __slots__: no new attributes either


def test_only_the_gate_calls_place_order_in_src():
    callers = [path.relative_to(REPO_SRC).as_posix() for path in REPO_SRC.rglob("*.py")
               if re.search(r"\.placeOrder\(", path.read_text())]
    assert callers == ["broker/gate.py"]
