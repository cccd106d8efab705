"""The orders every foreign bot places through the firewall, library-neutral: standard library only.

Imported by the bots (from their own directory, with a foreign client library first on the path)
and by test_firewall_foreign_bots.py. `STEPS` is a list of steps; the orders of one step are placed
back to back, then the bot waits for each one's answer. Each order: a name, the contract and the
order by the attribute names ib_insync and ibapi share, or `exercise` for exerciseOptions; `allowed`
and `reason` are what the firewall must decide for the bot (client id 1) under the Strategy A plan.
"""

from __future__ import annotations

import math
from typing import Any

ACCOUNT = "DU123456"
SPY_CON_ID, TSLA_CON_ID = 756733, 76792991  # src/simulator/market.py UNIVERSE (the test checks them)


def stock(symbol: str, currency: str = "USD") -> dict[str, Any]:
    return {"symbol": symbol, "secType": "STK", "exchange": "SMART", "currency": currency}


SPY_CALL = {"symbol": "SPY", "secType": "OPT", "lastTradeDateOrContractMonth": "20270115", "strike": 500.0,
            "right": "C", "exchange": "SMART", "currency": "USD"}
COMBO = {"symbol": "SPY", "secType": "BAG", "exchange": "SMART", "currency": "USD",
         "comboLegs": [{"conId": SPY_CON_ID, "ratio": 1, "action": "BUY", "exchange": "SMART"},
                       {"conId": TSLA_CON_ID, "ratio": 1, "action": "SELL", "exchange": "SMART"}]}


def buy(name: str, contract: dict[str, Any], quantity: float, reason: str | None, account: str = ACCOUNT
        ) -> dict[str, Any]:
    """A market order; `reason` None: allowed, else a part of the refusal's reason."""
    return {"name": name, "contract": contract, "order": {"action": "BUY", "totalQuantity": quantity,
                                                          "orderType": "MKT", "account": account},
            "allowed": reason is None, "reason": reason}


NOT_A_WHOLE_NUMBER = "not a BUY/SELL order of a whole, positive number of shares"
BEYOND_LIMIT = "beyond hard_limits.max_single_position 10"

STEPS: list[list[dict[str, Any]]] = [
    [buy("spy-5", stock("SPY"), 5, None)],
    [buy("qqq-10-first", stock("QQQ"), 10, None), buy("qqq-10-second", stock("QQQ"), 10, BEYOND_LIMIT),
     buy("qqq-10-third", stock("QQQ"), 10, BEYOND_LIMIT)],
    [buy("option-on-spy", SPY_CALL, 1, "security type 'OPT'")],
    [buy("spy-in-eur", stock("SPY", "EUR"), 1, "currency 'EUR'")],
    [buy("long-s-spy", stock("ſpy"), 1, "is not in the plan's symbols")],  # 'ſ'.upper() == 'S'
    [buy("not-in-plan", stock("TSLA"), 1, "'TSLA' is not in the plan's symbols")],
    # NVDA is in earnings_blackout but not in symbols: the symbols rule refuses it first
    [buy("blackout", stock("NVDA"), 1, "'NVDA' is not in the plan's symbols")],
    [buy("combo-with-tsla", COMBO, 1, "combo leg conId")],
    [buy("nan-shares", stock("SPY"), math.nan, NOT_A_WHOLE_NUMBER)],
    [buy("one-and-a-half-shares", stock("SPY"), 1.5, NOT_A_WHOLE_NUMBER)],
    [buy("unmanaged-account", stock("SPY"), 1, "account 'U9999999' is not managed", account="U9999999")],
    [{"name": "exercise-spy-call", "exercise": {"contract": SPY_CALL, "action": 1, "quantity": 1,
                                                "account": ACCOUNT, "override": 0},
      "allowed": False, "reason": "exerciseOptions can open a position"}],
]

ORDERS = [order for step in STEPS for order in step]
REJECTED = 201
REFUSAL_PREFIX = "Order rejected - reason:FIREWALL:"
ANSWER_WITHIN = 1.0  # seconds a bot waits for an order's error or status
