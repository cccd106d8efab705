"""The firewall in front of the simulator, driven by a plain ib_async script (no code of ours in the bot).

Each test counts what reached the simulator (`sim.orders`), not what the client was told: the
reproductions of "The order firewall" issue, each refused at the wire, and the allowed ones through.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from ib_async import IB, Bag, ComboLeg, LimitOrder, MarketOrder, Option, Order, Stock

from src.gameplan.loader import trading_date
from src.simulator.market import UNIVERSE
from src.simulator.server import GatewaySimulator
from src.core.statefiles import PLAN_FILE
from testkit.firewall import FirewallThread, running_firewall
from testkit.plans import put_in_force, strategy_c_plan, valid_plan
from tests.helpers.simulator import running_simulator

ACCOUNT, OTHER = "DU123456", "DU234567"
BOT = 1


@dataclass
class World:
    sim: GatewaySimulator
    fw: FirewallThread
    ib: IB
    state: Path

    def place(self, contract: Any, order: Order) -> None:
        if not order.account:
            order.account = ACCOUNT
        self.ib.placeOrder(contract, order)

    def settle(self, count: int) -> None:
        """Wait until `count` decisions are journalled and what was allowed had time to reach the simulator."""
        wait(lambda: len(self.fw.decisions()) >= count)
        allowed = sum(d["decision"] == "allowed" for d in self.fw.decisions())
        wait(lambda: len(self.sim.orders) >= allowed)
        self.ib.sleep(0.05)

    def reached(self) -> list[tuple[str, float, str]]:
        return [(o["action"], o["quantity"], o["symbol"]) for o in self.sim.orders]


def wait(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@contextmanager
def world(tmp_path: Path, client_id: int = BOT, plan: dict[str, Any] | None = None, **sim: Any) -> Iterator[World]:
    put_in_force(tmp_path, **(plan or {}))
    with running_simulator(**sim) as simulator, running_firewall(simulator.port, tmp_path) as fw:
        ib = IB()
        ib.connect("127.0.0.1", fw.port, clientId=client_id, timeout=10)
        try:
            yield World(simulator, fw, ib, tmp_path)
        finally:
            ib.disconnect()


def stock(symbol: str, currency: str = "USD") -> Stock:
    return Stock(symbol, "SMART", currency)


def test_an_allowed_order_reaches_the_gateway_and_is_journalled(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.place(stock("SPY"), MarketOrder("BUY", 5))
        w.settle(1)
        assert w.reached() == [("BUY", 5.0, "SPY")]
        [decision] = w.fw.decisions()
        assert decision["decision"] == "allowed" and decision["client_id"] == BOT
        assert decision["plan_sha256"] and decision["account"] == ACCOUNT


def test_back_to_back_orders_count_the_working_ones(tmp_path: Path) -> None:
    """Three BUY 10 QQQ against max_single_position 10: one reaches the Gateway."""
    with world(tmp_path) as w:
        for _ in range(3):
            w.place(stock("QQQ"), MarketOrder("BUY", 10))
        w.settle(3)
        assert w.reached() == [("BUY", 10.0, "QQQ")]


def test_resting_limit_orders_that_top_up_stop_at_the_limit(tmp_path: Path) -> None:
    with world(tmp_path, fills="never") as w:
        for _ in range(11):
            w.place(stock("SPY"), LimitOrder("BUY", 1, 1.0))
        w.settle(11)
        assert w.reached() == [("BUY", 1.0, "SPY")] * 10


@pytest.mark.parametrize("contract", [
    Option("SPY", "20270115", 500, "C", "SMART"),
    stock("SPY", "EUR"),
    Stock("ſpy", "SMART", "USD"),  # 'ſ'.upper() == 'S'
    Stock("spy", "SMART", "USD"),
    stock("TSLA"),
    stock("NVDA"),  # in earnings_blackout
], ids=["option-on-spy", "spy-in-eur", "long-s-spy", "lowercase-spy", "not-in-plan", "blackout"])
def test_a_contract_that_is_not_a_plan_stock_is_refused(tmp_path: Path, contract: Any) -> None:
    with world(tmp_path) as w:
        w.place(contract, MarketOrder("BUY", 1))
        w.settle(1)
        assert w.reached() == []
        assert w.fw.decisions()[0]["decision"] == "refused"


def test_a_combo_with_a_leg_outside_the_plan_is_refused(tmp_path: Path) -> None:
    tsla, spy_id = UNIVERSE["TSLA"].con_id, UNIVERSE["SPY"].con_id
    bag = Bag(symbol="SPY", exchange="SMART", currency="USD",
              comboLegs=[ComboLeg(conId=spy_id, ratio=1, action="BUY", exchange="SMART"),
                         ComboLeg(conId=tsla, ratio=1, action="SELL", exchange="SMART")])
    with world(tmp_path) as w:
        w.place(bag, MarketOrder("BUY", 1))
        w.settle(1)
        assert w.reached() == []
        assert "combo leg conId" in w.fw.decisions()[0]["reason"]


@pytest.mark.parametrize("quantity", [math.nan, math.inf, -5, 0, 1.5, 1e15])
def test_a_quantity_that_is_not_a_whole_positive_number_is_refused(tmp_path: Path, quantity: float) -> None:
    with world(tmp_path) as w:
        w.place(stock("SPY"), MarketOrder("BUY", quantity))
        w.settle(1)
        assert w.reached() == []


def test_the_drawdown_governor_never_lets_a_long_become_a_short(tmp_path: Path) -> None:
    plan = {"hard_limits": {**_limits(), "weekly_drawdown_governor_active": True}}
    with world(tmp_path, plan=plan, positions={ACCOUNT: {"SPY": 10}}) as w:
        w.place(stock("SPY"), MarketOrder("SELL", 15))
        w.place(stock("SPY"), MarketOrder("BUY", 1))
        w.settle(2)
        w.place(stock("SPY"), MarketOrder("SELL", 4))
        w.settle(3)
        assert w.reached() == [("SELL", 4.0, "SPY")]


def test_accounts_are_checked_and_limits_apply_per_account(tmp_path: Path) -> None:
    with world(tmp_path, positions={OTHER: {"SPY": 10}}) as w:
        w.place(stock("SPY"), MarketOrder("BUY", 1, account="U9999999"))
        w.place(stock("SPY"), MarketOrder("BUY", 1, account=OTHER))  # OTHER holds 10 already
        w.place(stock("SPY"), MarketOrder("BUY", 10, account=ACCOUNT))  # ACCOUNT holds none
        w.settle(3)
        assert w.reached() == [("BUY", 10.0, "SPY")]
        reasons = [d["reason"] for d in w.fw.decisions()]
        assert "not managed" in reasons[0] and "max_single_position" in reasons[1]


def test_a_client_that_is_not_the_bot_has_no_order_authority(tmp_path: Path) -> None:
    with world(tmp_path, client_id=7) as w:
        w.place(stock("SPY"), MarketOrder("BUY", 1))
        w.settle(1)
        assert w.reached() == []
        assert "client id 7 has no order authority" in w.fw.decisions()[0]["reason"]


def test_strategy_c_refuses_everything_and_a_new_plan_is_taken_up_on_the_same_connection(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        put_in_force(tmp_path, strategy_c_plan(trading_date()))
        wait(lambda: w.fw.firewall is not None and w.fw.firewall.plan_sha256() is not None
             and w.fw.firewall.authority(BOT) is not None and not w.fw.firewall.authority(BOT).authorized, 2.0)
        w.place(stock("SPY"), MarketOrder("BUY", 1))
        w.settle(1)
        put_in_force(tmp_path)
        wait(lambda: w.fw.firewall.authority(BOT) is not None and w.fw.firewall.authority(BOT).authorized, 2.0)
        w.place(stock("SPY"), MarketOrder("BUY", 2))
        w.settle(2)
        assert w.reached() == [("BUY", 2.0, "SPY")]
        assert w.ib.isConnected()


class SilentWatch:
    """A directory watch whose notices never come (a share that does not report outside changes)."""

    def __init__(self) -> None:
        self.reader, self.writer = os.pipe()  # never written: never readable

    def fileno(self) -> int:
        return self.reader

    def read(self) -> frozenset[str]:
        return frozenset()

    def close(self) -> None:
        os.close(self.reader)
        os.close(self.writer)


@pytest.mark.parametrize("notices", ["delivered", "unavailable"])
def test_the_order_right_after_a_hand_over_is_judged_under_the_new_plan(
        tmp_path: Path, notices: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strategy C handed over, and an order placed the same instant: refused, whether the firewall learns of
    the change from a change notice (inotify) or looks at the plan's sha256 file for every order."""
    from src.firewall import __main__ as firewall_main

    if notices == "unavailable":
        monkeypatch.setattr(firewall_main, "open_watch", lambda directory, names: None)
    with world(tmp_path) as w:
        assert w.fw.firewall is not None
        w.place(stock("SPY"), MarketOrder("BUY", 1))
        w.settle(1)
        put_in_force(tmp_path, strategy_c_plan(trading_date()))
        w.place(stock("SPY"), MarketOrder("BUY", 1))  # no wait: the very next message on the connection
        w.settle(2)
        put_in_force(tmp_path)
        w.place(stock("SPY"), MarketOrder("BUY", 2))
        w.settle(3)
        assert w.reached() == [("BUY", 1.0, "SPY"), ("BUY", 2.0, "SPY")]
        assert w.fw.decisions()[1]["reason"].startswith("no trading authority under the plan in force")


def test_change_notices_that_do_not_come_are_noticed_and_every_order_looks_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A state dir on a share whose changes raise no notice: the loop's own look (every PLAN_POLL s) finds the
    hand-over, says so, and from then on every order looks at the plan's sha256 file itself."""
    from src.firewall import __main__ as firewall_main

    monkeypatch.setattr(firewall_main, "open_watch", lambda directory, names: SilentWatch())
    with world(tmp_path) as w:
        assert w.fw.firewall is not None
        put_in_force(tmp_path, strategy_c_plan(trading_date()))
        wait(lambda: "came without a change notice" in caplog.text, 2 * firewall_main.PLAN_POLL + 2)
        assert not w.fw.firewall.authority(BOT).authorized
        put_in_force(tmp_path)
        w.place(stock("SPY"), MarketOrder("BUY", 1))  # the very next message: judged under the new plan
        w.settle(1)
        assert w.reached() == [("BUY", 1.0, "SPY")]


def test_plan_bytes_changed_after_validation_authorize_nothing(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """The file rewritten behind the orchestrator's back with another valid plan (TSLA allowed): its bytes no
    longer hash to the validated sha256, so neither the new plan nor the old one authorizes anything. Its change
    notice is not a missing one: the notices stay in use."""
    with world(tmp_path) as w:
        (tmp_path / PLAN_FILE).write_text(json.dumps({**valid_plan(trading_date()), "symbols": ["TSLA"]}))
        wait(lambda: w.fw.firewall is not None and w.fw.firewall.authority(BOT) is None, 2.0)
        w.place(stock("TSLA"), MarketOrder("BUY", 1))
        w.place(stock("SPY"), MarketOrder("BUY", 1))
        w.settle(2)
        assert w.reached() == []
        assert all("is not the plan the orchestrator validated" in d["reason"] for d in w.fw.decisions())
        assert "without a change notice" not in caplog.text


def test_yesterdays_plan_grants_nothing(tmp_path: Path) -> None:
    put_in_force(tmp_path, valid_plan(trading_date() - timedelta(days=1)))
    with running_simulator() as sim, running_firewall(sim.port, tmp_path) as fw:
        ib = IB()
        ib.connect("127.0.0.1", fw.port, clientId=BOT, timeout=10)
        ib.placeOrder(stock("SPY"), MarketOrder("BUY", 1, account=ACCOUNT))
        wait(lambda: fw.decisions())
        ib.disconnect()
        assert sim.orders == [] and "not usable (stale)" in fw.decisions()[0]["reason"]


def test_orders_are_refused_while_1100_is_in_force(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.sim.connectivity_lost()
        wait(lambda: not w.fw.upstream.ib_connected)
        w.place(stock("SPY"), MarketOrder("BUY", 1))
        w.settle(1)
        assert w.reached() == [] and "1100" in w.fw.decisions()[0]["reason"]


def test_exercise_options_is_refused_and_cancels_pass(tmp_path: Path) -> None:
    with world(tmp_path, fills="never") as w:
        w.ib.client.exerciseOptions(77, Option("SPY", "20270115", 500, "C", "SMART"), 1, 1, ACCOUNT, 0)
        trade = w.ib.placeOrder(stock("SPY"), LimitOrder("BUY", 1, 1.0, account=ACCOUNT))
        w.settle(2)
        w.ib.cancelOrder(trade.order)
        wait(lambda: w.ib.sleep(0.01) or trade.orderStatus.status == "Cancelled")
        assert w.reached() == [("BUY", 1.0, "SPY")]
        assert w.fw.decisions()[0]["decision"] == "refused"


def _limits() -> dict[str, Any]:
    from testkit.plans import valid_plan
    limits: dict[str, Any] = valid_plan()["hard_limits"]
    return limits


def test_a_read_only_gateway_answers_an_allowed_order_with_321_and_the_order_ends(tmp_path: Path) -> None:
    """The firewall allows it (the plan does), the Gateway refuses it (its API is read-only): the client sees
    the Gateway's error, the firewall's book does not count it as working, nothing was placed."""
    with world(tmp_path, read_only=True) as w:
        trade = w.ib.placeOrder(stock("SPY"), MarketOrder("BUY", 1, account=ACCOUNT))
        wait(lambda: (w.ib.sleep(0.02), any(entry.errorCode == 321 for entry in trade.log))[1], 5.0)
        assert w.fw.decisions()[0]["decision"] == "allowed" and w.sim.orders == []
        wait(lambda: not w.fw.firewall.book.orders, 5.0)
