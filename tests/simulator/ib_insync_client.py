"""An ib_insync 0.9.86 client of the simulator, run by test_simulator_ib_insync.py in a process of its own.

ib_insync's `eventkit` and ib_async's `aeventkit` install the same top-level package, so
ib_insync cannot share the project's virtualenv: the test installs it into a directory of
its own and puts that first on this process's path. Usage: ib_insync_client.py PORT.
Prints one JSON object a line, one per step; after "ready-for-1100" it waits for the test
to make the simulator send 1100, then 1102.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

from ib_insync import IB, LimitOrder, Stock, StopOrder


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def wait(ib: IB, condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting")
        ib.sleep(0.02)


def main(port: int) -> None:
    ib = IB()
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    ib.connect("127.0.0.1", port, clientId=5, timeout=5)
    say(step="connected", version=ib.client.serverVersion(), accounts=ib.managedAccounts())
    spy = Stock("SPY", "SMART", "USD")
    started = time.monotonic()
    qualified = ib.qualifyContracts(spy, Stock("NOSUCH", "SMART", "USD"))
    say(step="qualify", symbols=[c.symbol for c in qualified], con_id=spy.conId, seconds=time.monotonic() - started,
        codes=codes[-1:])
    [ticker] = ib.reqTickers(spy)
    say(step="snapshot", bid=ticker.bid, ask=ticker.ask, last=ticker.last)
    bars = ib.reqHistoricalData(spy, "", "1 D", "1 hour", "TRADES", False)
    say(step="bars", count=len(bars), ordered=all(a.date < b.date for a, b in zip(bars, bars[1:], strict=False)))
    trade = ib.placeOrder(spy, LimitOrder("BUY", 10, 501.0))
    wait(ib, trade.isDone)
    wait(ib, lambda: ib.positions())
    say(step="order", order_id=trade.order.orderId, statuses=[e.status for e in trade.log], fills=len(trade.fills),
        avg=trade.orderStatus.avgFillPrice, positions=[[p.contract.symbol, p.position] for p in ib.positions()])
    stop = ib.placeOrder(spy, StopOrder("SELL", 10, 450.0))
    wait(ib, lambda: stop.orderStatus.status == "Submitted")
    ib.cancelOrder(stop.order)
    wait(ib, lambda: stop.orderStatus.status == "Cancelled")
    say(step="cancel", status=stop.orderStatus.status)
    say(step="ready-for-1100")
    wait(ib, lambda: 1100 in codes)
    say(step="1100")
    wait(ib, lambda: 1102 in codes)
    say(step="1102", codes=[c for c in codes if 1000 < c < 2000])
    ib.disconnect()


if __name__ == "__main__":
    main(int(sys.argv[1]))
