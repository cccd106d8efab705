"""A plain ib_async bot, as an operator's own bot would be: no code of this project in it (docs/BOTS.md).

    BOT_COMMAND="/path/to/python docs/examples/ib_async_bot.py [ACTION QUANTITY SYMBOL]..."

It connects where the orchestrator says (GATEWAY_HOST, GATEWAY_PORT: the order firewall) with
BOT_CLIENT_ID, reads the plan in force (PLAN_IN_FORCE), places the orders given on its command line
(default: BUY 1 share of the plan's first symbol) in the first managed account, reports each fill or
rejection, and runs until SIGTERM. The order firewall judges every order against the plan in force:
under Strategy C, or outside the plan, the Gateway's own rejection (error 201) comes back.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys

from ib_async import IB, MarketOrder, Stock, Trade

log = logging.getLogger("ib_async_bot")


def orders_from(argv: list[str], plan: dict[str, object]) -> list[tuple[str, int, str]]:
    if argv:
        if len(argv) % 3:
            raise SystemExit("usage: ib_async_bot.py [ACTION QUANTITY SYMBOL]...")
        return [(argv[i], int(argv[i + 1]), argv[i + 2]) for i in range(0, len(argv), 3)]
    symbols = plan.get("symbols") or []
    return [("BUY", 1, str(symbols[0]))] if isinstance(symbols, list) and symbols else []


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with open(os.environ["PLAN_IN_FORCE"], encoding="utf-8") as f:
        plan = json.load(f)
    log.info("plan in force: strategy %s, symbols %s", plan.get("strategy"), plan.get("symbols"))
    ib = IB()
    ib.connect(os.environ.get("GATEWAY_HOST", "127.0.0.1"), int(os.environ.get("GATEWAY_PORT", "4002")),
               clientId=int(os.environ.get("BOT_CLIENT_ID", "1")), timeout=20)
    account = ib.managedAccounts()[0]

    def report(trade: Trade) -> None:
        log.info("order %d %s %s %s: %s %s", trade.order.orderId, trade.order.action, trade.order.totalQuantity,
                 trade.contract.symbol, trade.orderStatus.status,
                 " ".join(entry.message for entry in trade.log if entry.message))

    for action, quantity, symbol in orders_from(sys.argv[1:], plan):
        order = MarketOrder(action, quantity, account=account)
        trade = ib.placeOrder(Stock(symbol, "SMART", "USD"), order)
        trade.statusEvent += report
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    while not stop and ib.isConnected():
        ib.sleep(0.2)
    ib.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
