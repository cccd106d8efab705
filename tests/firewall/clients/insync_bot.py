"""A foreign bot on ib_insync 0.9.86 (or ib_async, whose API is the same): places catalogue.STEPS through the
firewall, one JSON line per order.

Run by tests/firewall/test_firewall_foreign_bots.py, for ib_insync with .venv/ib_insync first on the path
(ib_insync's `eventkit` cannot share the venv with ib_async's). Usage: insync_bot.py PORT CLIENT_ID [LIBRARY]
(LIBRARY: ib_insync, the default, or ib_async). Prints a
"connected" line, then per order {"name", "order_id", "errors": [[code, message], ...], "statuses",
"fields"} (the placeOrder fields as sent), then "done".
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import importlib

from catalogue import ANSWER_WITHIN, STEPS

LIBRARY = sys.argv[3] if len(sys.argv) > 3 else "ib_insync"
lib = importlib.import_module(LIBRARY)
IB, ComboLeg, Contract, Order, Trade = lib.IB, lib.ComboLeg, lib.Contract, lib.Order, lib.Trade

ANSWERED = ("PreSubmitted", "Submitted", "Filled", "Cancelled", "Inactive")


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def contract_of(spec: dict[str, Any]) -> Any:
    spec = dict(spec)
    legs = [ComboLeg(**leg) for leg in spec.pop("comboLegs", [])]
    contract = Contract(**spec)
    if legs:
        contract.comboLegs = legs
    return contract


def main(port: int, client_id: int) -> None:
    ib = IB()
    errors: dict[int, list[list[object]]] = {}
    sent: dict[int, list[str]] = {}
    ib.errorEvent += lambda req_id, code, text, *rest: errors.setdefault(req_id, []).append([code, text])
    ib.connect("127.0.0.1", port, clientId=client_id, timeout=10)
    send = ib.client.sendMsg

    def recording(msg: str | None) -> None:  # placeOrder (3) and exerciseOptions (21) exactly as written
        if msg and msg.startswith(("3\0", "21\0")):
            fields = msg.split("\0")[:-1]
            sent[int(fields[1] if fields[0] == "3" else fields[2])] = fields
            sent[-1] = fields
        send(msg)

    ib.client.sendMsg = recording  # type: ignore[method-assign]
    say(step="connected", library=LIBRARY, version=lib.__version__, module=lib.__file__,
        server_version=ib.client.serverVersion(), accounts=ib.managedAccounts())
    for step in STEPS:
        placed: list[tuple[dict[str, Any], int, Any]] = []
        for entry in step:
            if "exercise" in entry:
                x = entry["exercise"]
                ib.exerciseOptions(contract_of(x["contract"]), x["action"], x["quantity"], x["account"],
                                   x["override"])
                placed.append((entry, int(sent[-1][2]), None))  # the request id IB.exerciseOptions chose
            else:
                trade = ib.placeOrder(contract_of(entry["contract"]), Order(**entry["order"]))
                placed.append((entry, trade.order.orderId, trade))
        for entry, order_id, trade in placed:
            deadline = time.monotonic() + ANSWER_WITHIN
            while time.monotonic() < deadline and not errors.get(order_id) and not (
                    trade is not None and trade.orderStatus.status in ANSWERED):
                ib.sleep(0.01)
            say(name=entry["name"], order_id=order_id, errors=errors.get(order_id, []),
                statuses=[e.status for e in trade.log] if trade is not None else [], fields=sent.get(order_id))
    ib.disconnect()
    say(step="done")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
