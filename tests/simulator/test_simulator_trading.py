"""Beyond start-up, against the real client: contract details, market data, bars, orders, positions.

Every request gets an answer (data or an error) at once: nothing here waits out an
ib_async timeout, and each test bounds how long its answers may take.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock, StopOrder, TagValue

from tests.helpers.simulator import running_simulator
from tests.simulator.test_simulator_ib_async import connect

SPY_CON_ID = 756733
# Seconds: an answer that takes longer was waited out, not given. ib_async waits for ever for most
# answers (RequestTimeout 0: the test would hang) and 60 s for historical data; an answer given takes
# milliseconds, so this holds on a machine whose cores are all busy.
QUICK = 10.0


def wait_until(ib: IB, condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Let ib_async run until ``condition()`` holds; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        ib.sleep(0.02)


def errors_of(ib: IB) -> list[tuple[int, int, str]]:
    """A list that fills with (reqId, code, text) of every error/notice ib_async receives."""
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    return errors


def spy() -> Stock:
    return Stock("SPY", "SMART", "USD")


def qualified(ib: IB, contract: Stock) -> Stock:
    """ib_async keys tickers by contract id: market data needs a qualified contract."""
    assert ib.qualifyContracts(contract) == [contract]
    return contract


# --- contracts ----------------------------------------------------------------------------------


def test_qualify_a_known_and_an_unknown_symbol_answers_at_once(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        errors = errors_of(ib)
        known, unknown = spy(), Stock("NOSUCH", "SMART", "USD")
        started = time.monotonic()
        result = ib.qualifyContracts(known, unknown)
        elapsed = time.monotonic() - started
    assert elapsed < QUICK
    assert result == [known, None]
    assert (known.conId, known.primaryExchange, known.tradingClass) == (SPY_CON_ID, "ARCA", "SPY")
    assert [(code, text) for _, code, text in errors] == [
        (200, "No security definition has been found for the request")]


def test_contract_details_describe_the_stock(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        [details] = ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))
        assert ib.reqContractDetails(Stock("AAPL", "SMART", "EUR")) == []  # a field given must agree
        assert len(ib.reqContractDetails(Stock(conId=SPY_CON_ID))) == 1  # by contract id alone
    assert details.contract.conId == 265598 and details.contract.primaryExchange == "NASDAQ"
    assert details.longName == "APPLE INC" and details.minTick == 0.01 and details.timeZoneId == "US/Eastern"
    assert "SMART" in details.validExchanges.split(",") and "LMT" in details.orderTypes.split(",")
    assert ":0400-" in details.tradingHours or "CLOSED" in details.tradingHours


# --- market data --------------------------------------------------------------------------------


def test_snapshot_quote_is_synthetic_and_deterministic(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        contract = qualified(ib, spy())
        started = time.monotonic()
        [ticker] = ib.reqTickers(contract)
        elapsed = time.monotonic() - started
        [again] = ib.reqTickers(contract)
    assert elapsed < QUICK
    assert (ticker.bid, ticker.ask, ticker.last) == (499.99, 500.01, 500.0)
    assert (ticker.bidSize, ticker.askSize, ticker.volume) == (300, 400, 1_234_500)
    assert ticker.low < ticker.close < ticker.last < ticker.high
    assert (again.bid, again.ask, again.last) == (ticker.bid, ticker.ask, ticker.last)


def test_streaming_and_delayed_market_data(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        ticker = ib.reqMktData(qualified(ib, Stock("MSFT", "SMART", "USD")))
        wait_until(ib, lambda: ticker.last == 410.0)
        ib.cancelMktData(ticker.contract)
        ib.reqMarketDataType(3)
        delayed = ib.reqMktData(qualified(ib, spy()))
        wait_until(ib, lambda: delayed.last == 500.0)
        assert delayed.marketDataType == 3
        assert ib.reqCurrentTime()  # the cancel and the data type setting left the connection well


def test_market_data_for_an_unknown_contract_is_error_200(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        errors = errors_of(ib)
        ticker = ib.reqMktData(Stock("NOSUCH", "SMART", "USD", conId=999))
        wait_until(ib, lambda: errors, timeout=QUICK)
    assert errors[0][1] == 200
    assert ticker.last != ticker.last  # NaN: no data came


# --- historical bars ----------------------------------------------------------------------------


def test_historical_bars_are_deterministic(ib: IB) -> None:
    end = dt.datetime(2026, 3, 4, 15, 0, tzinfo=dt.timezone.utc)
    with running_simulator() as sim:
        connect(ib, sim.port)
        started = time.monotonic()
        bars = ib.reqHistoricalData(spy(), end, "1 D", "1 hour", "TRADES", useRTH=False)
        elapsed = time.monotonic() - started
        again = ib.reqHistoricalData(spy(), end, "2 D", "1 hour", "TRADES", useRTH=False)
        daily = ib.reqHistoricalData(spy(), end, "5 D", "1 day", "MIDPOINT", useRTH=True)
        epoch = ib.reqHistoricalData(spy(), end, "3600 S", "5 mins", "TRADES", useRTH=False, formatDate=2)
    assert elapsed < QUICK
    assert len(bars) == 24
    assert bars[-1].date == dt.datetime(2026, 3, 4, 14, 0, tzinfo=dt.timezone.utc)
    assert [b.date for b in bars] == [end - dt.timedelta(hours=24 - i) for i in range(24)]
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) and b.volume > 0 for b in bars)
    assert list(again[-24:]) == list(bars)  # a bar depends on its symbol and time only
    assert [b.date for b in daily] == [dt.date(2026, 2, 26), dt.date(2026, 2, 27), dt.date(2026, 3, 2),
                                       dt.date(2026, 3, 3), dt.date(2026, 3, 4)]  # weekdays only
    assert daily[-1].volume == -1  # MIDPOINT bars have no volume, as from TWS
    assert len(epoch) == 12 and epoch[-1].date == dt.datetime(2026, 3, 4, 14, 55, tzinfo=dt.timezone.utc)


def test_a_bad_historical_request_is_error_162_at_once(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        errors = errors_of(ib)
        started = time.monotonic()
        bars = ib.reqHistoricalData(spy(), "", "1 D", "7 mins", "TRADES", useRTH=True)
        unknown = ib.reqHistoricalData(Stock("NOSUCH", "SMART", "USD"), "", "1 D", "1 hour", "TRADES", True)
        elapsed = time.monotonic() - started
    assert elapsed < QUICK
    assert list(bars) == [] and list(unknown) == []
    assert [code for _, code, _ in errors] == [162, 200]
    assert "barSizeSetting" in errors[0][2]


# --- orders -------------------------------------------------------------------------------------


def test_an_order_is_submitted_then_filled_and_recorded(ib: IB, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="src.simulator")
    with running_simulator() as sim:
        connect(ib, sim.port, client_id=1)
        trade = ib.placeOrder(spy(), LimitOrder("BUY", 10, 501.0))
        wait_until(ib, trade.isDone)
        orders = sim.orders
    assert [entry.status for entry in trade.log] == ["PendingSubmit", "Submitted", "Submitted", "Filled"]
    assert trade.orderStatus.status == "Filled"
    assert (trade.orderStatus.filled, trade.orderStatus.remaining, trade.orderStatus.avgFillPrice) == (10, 0, 500.01)
    [fill] = trade.fills
    assert (fill.execution.side, fill.execution.shares, fill.execution.price) == ("BOT", 10, 500.01)
    assert fill.commissionReport.commission == 1.0
    order_id = trade.order.orderId
    assert [{k: o[k] for k in ("client_id", "order_id", "action", "symbol", "quantity", "order_type",
                               "limit_price", "status")} for o in orders] == [
        {"client_id": 1, "order_id": order_id, "action": "BUY", "symbol": "SPY", "quantity": 10.0,
         "order_type": "LMT", "limit_price": 501.0, "status": "Filled"}]
    received = [r.getMessage() for r in caplog.records if "ORDER received" in r.getMessage()]
    assert received == [f"API: ORDER received: client 1 order {order_id} BUY 10 SPY LMT limit 501"]
    assert all(r.levelno == logging.INFO for r in caplog.records if "ORDER" in r.getMessage())


def test_positions_follow_fills_and_reach_every_client(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port, client_id=1)
        ib.placeOrder(spy(), MarketOrder("BUY", 10))
        sell = ib.placeOrder(spy(), MarketOrder("SELL", 4))
        wait_until(ib, lambda: [p.position for p in ib.positions()] == [6])
        wait_until(ib, sell.isDone)
        [position] = ib.positions()
        other = IB()
        try:
            other.connect("127.0.0.1", sim.port, clientId=2, timeout=5)
            seen_by_other = [(p.account, p.contract.symbol, p.position) for p in other.positions()]
        finally:
            other.disconnect()
        held = sim.positions
        executions = ib.reqExecutions()
    assert [(f.execution.side, f.execution.shares) for f in executions] == [("BOT", 10), ("SLD", 4)]
    assert (position.account, position.contract.conId, position.avgCost) == ("DU123456", SPY_CON_ID, 500.01)
    assert sell.fills[0].commissionReport.realizedPNL == pytest.approx(4 * (499.99 - 500.01))
    assert seen_by_other == [("DU123456", "SPY", 6)]
    assert held == {"DU123456": {"SPY": 6}}


def test_a_single_account_portfolio_follows_fills(ib: IB) -> None:
    with running_simulator(accounts=("DU999999",), positions={"DU999999": {"AAPL": 5}}) as sim:
        connect(ib, sim.port)
        assert [(i.contract.symbol, i.position) for i in ib.portfolio()] == [("AAPL", 5)]
        ib.placeOrder(spy(), MarketOrder("SELL", 3))  # a short sale
        wait_until(ib, lambda: len(ib.portfolio()) == 2)
        assert {i.contract.symbol: i.position for i in ib.portfolio()} == {"AAPL": 5, "SPY": -3}
        assert sim.positions == {"DU999999": {"AAPL": 5, "SPY": -3}}


def test_a_resting_order_is_cancelled_and_bad_cancels_are_errors(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        errors = errors_of(ib)
        stop = ib.placeOrder(spy(), StopOrder("SELL", 10, 450.0))  # below the market: it rests
        wait_until(ib, lambda: stop.orderStatus.status == "Submitted")
        filled = ib.placeOrder(spy(), MarketOrder("BUY", 1))
        wait_until(ib, filled.isDone)
        ib.cancelOrder(stop.order)
        wait_until(ib, lambda: stop.orderStatus.status == "Cancelled")
        ib.cancelOrder(filled.order)
        ib.client.cancelOrder(987654)  # an order id this client never used
        wait_until(ib, lambda: len(errors) == 3)
        assert [o["status"] for o in sim.orders] == ["Cancelled", "Filled"]
    assert [(req_id, code) for req_id, code, _ in errors] == [
        (stop.order.orderId, 202), (filled.order.orderId, 10148), (987654, 10147)]
    assert errors[1][2].endswith("state: Filled.")


def test_modifying_a_resting_stop_to_a_triggered_price_fills_it(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        stop = ib.placeOrder(spy(), StopOrder("SELL", 3, 450.0))
        wait_until(ib, lambda: stop.orderStatus.status == "Submitted")
        stop.order.auxPrice = 510.0  # above the bid: a sell stop there triggers at once
        ib.placeOrder(spy(), stop.order)
        wait_until(ib, stop.isDone)
        orders = sim.orders
    assert stop.orderStatus.status == "Filled" and stop.orderStatus.avgFillPrice == 499.99
    assert [(o["aux_price"], o["modification"], o["status"]) for o in orders] == [
        (450.0, False, "Filled"), (510.0, True, "Filled")]


def test_a_bracket_fills_its_parent_and_rests_its_exits(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        parent, take_profit, stop_loss = (ib.placeOrder(spy(), o) for o in ib.bracketOrder("BUY", 10, 501, 520, 480))
        wait_until(ib, lambda: stop_loss.orderStatus.status == "Submitted")
        assert parent.orderStatus.status == "Filled"
        assert take_profit.orderStatus.status == "Submitted"
        ib.cancelOrder(parent.order)  # too late: it is filled; the exits stay
        assert [o["transmit"] for o in sim.wait_for_orders(3)] == [False, False, True]
        assert sim.positions == {"DU123456": {"SPY": 10}}


def test_with_fills_never_orders_rest_until_cancelled(ib: IB) -> None:
    with running_simulator(fills="never") as sim:
        connect(ib, sim.port)
        trade = ib.placeOrder(spy(), MarketOrder("BUY", 10))
        wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
        assert [t.order.orderId for t in ib.reqOpenOrders()] == [trade.order.orderId]
        ib.cancelOrder(trade.order)
        wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
        assert sim.positions == {}


def test_a_what_if_query_is_an_error_and_never_an_order(ib: IB) -> None:
    adaptive = {"algoStrategy": "Adaptive", "algoParams": [TagValue("adaptivePriority", "Normal")]}
    with running_simulator() as sim:
        connect(ib, sim.port)
        errors = errors_of(ib)
        started = time.monotonic()
        assert ib.whatIfOrder(spy(), MarketOrder("BUY", 5)) == []
        assert ib.whatIfOrder(spy(), LimitOrder("BUY", 5, 501.0, **adaptive)) == []  # past the algo fields
        elapsed = time.monotonic() - started
        trade = ib.placeOrder(spy(), LimitOrder("BUY", 2, 501.0, **adaptive))  # a real order with an algo fills
        wait_until(ib, trade.isDone)
        orders = sim.orders
    assert elapsed < QUICK
    assert [code for _, code, _ in errors] == [503, 503]
    assert [(o["order_id"], o["status"]) for o in orders] == [(trade.order.orderId, "Filled")]


def test_a_rejected_order_is_recorded_with_its_error(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port)
        errors = errors_of(ib)
        unknown = ib.placeOrder(Stock("NOSUCH", "SMART", "USD"), MarketOrder("BUY", 1))
        wrong_account = ib.placeOrder(spy(), MarketOrder("BUY", 1, account="U0000001"))
        wait_until(ib, lambda: unknown.isDone() and wrong_account.isDone())
        orders = sim.orders
    assert [(o["symbol"], o["status"], o["error"]) for o in orders] == [("NOSUCH", "Rejected", 200),
                                                                         ("SPY", "Rejected", 201)]
    assert unknown.orderStatus.status == wrong_account.orderStatus.status == "Cancelled"  # as ib_async shows one
    assert [code for _, code, _ in errors] == [200, 201]


def test_a_request_that_is_not_simulated_is_answered_with_an_error_naming_it(
        ib: IB, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="src.simulator")
    with running_simulator() as sim:
        connect(ib, sim.port)
        errors = errors_of(ib)
        started = time.monotonic()
        assert ib.reqMatchingSymbols("SP") == []
        elapsed = time.monotonic() - started
    assert elapsed < QUICK  # ib_async would otherwise wait for ever
    assert [(code, text) for _, code, text in errors] == [
        (503, "The Gateway simulator does not implement reqMatchingSymbols (message 81)")]
    assert any(r.levelno == logging.INFO and "reqMatchingSymbols (message 81) is not simulated" in r.getMessage()
               for r in caplog.records)
