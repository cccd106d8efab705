"""An example strategy: one small order through the trading gate, at start.

Run it with the bot, or through the orchestrator:

    BOT_STRATEGY=docs/examples/strategy.py:ExampleStrategy python -m src.orchestration.startup

It buys EXAMPLE_QUANTITY (default 1) of EXAMPLE_SYMBOL (default: the plan's first symbol) with
a market order, in the first account the Gateway manages. Whether the order leaves is the plan's
decision, not the strategy's: under Strategy C, for a symbol outside the plan, above
`hard_limits.max_single_position` (working orders included), after the plan's date, or while the
Gateway connection is down, `place_order` raises `OrderRefused` and nothing is sent; and the order
firewall judges it again at the wire. `api.ib` is ib_async's own IB, for anything else a strategy needs.
"""

from __future__ import annotations

import logging
import os

from ib_async import MarketOrder, Stock

from src.broker.connection import OrderRefused, StrategyAPI
from src.gameplan.schema import Gameplan

log = logging.getLogger("example_strategy")


class ExampleStrategy:
    """Places one order at start; logs what the gate decided."""

    def __init__(self) -> None:
        self.trades: list[object] = []

    async def on_start(self, plan: Gameplan, api: StrategyAPI) -> None:
        symbol = os.environ.get("EXAMPLE_SYMBOL") or (plan.symbols[0] if plan.symbols else "SPY")
        quantity = float(os.environ.get("EXAMPLE_QUANTITY", "1"))
        contract = Stock(symbol, "SMART", "USD")
        if api.trading_authorized:  # no point asking the Gateway about a contract we may not trade
            await api.qualify_contracts(contract)
        try:
            trade = api.place_order(contract, MarketOrder("BUY", quantity, account=api.accounts()[0]))
        except OrderRefused as refused:
            log.warning("example strategy: the gate refused BUY %g %s: %s", quantity, symbol, refused.reason)
            return
        self.trades.append(trade)
        log.info("example strategy: BUY %g %s sent", quantity, symbol)

    def on_heartbeat(self, api: StrategyAPI) -> None:
        for trade in self.trades:
            status = getattr(getattr(trade, "orderStatus", None), "status", "?")
            log.info("example strategy: order status %s", status)
