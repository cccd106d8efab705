"""A foreign bot on the official client, ibapi 9.81.1: places catalogue.STEPS through the firewall.

Run by tests/firewall/test_firewall_foreign_bots.py with .venv/ibapi first on the path. Usage:
ibapi_bot.py PORT CLIENT_ID. EClient/EWrapper with the message loop (`run`) in a thread; prints a
"connected" line, then per order {"name", "order_id", "errors": [[code, message], ...], "statuses",
"fields"} (the placeOrder fields as sent), or {"name", "skipped"} when ibapi will not encode it,
then "done".

9.81's `Order()` sends eTradeOnly and firmQuoteOnly as true, which current Gateways reject (10268,
10269): a real bot clears them, and so does this one. ibapi refuses to encode a non-ASCII symbol
(its own error 579, nothing sent).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import ibapi
from catalogue import ANSWER_WITHIN, STEPS
from ibapi.client import EClient
from ibapi.contract import ComboLeg, Contract
from ibapi.errors import INVALID_SYMBOL
from ibapi.order import Order
from ibapi.wrapper import EWrapper


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


class Bot(EWrapper, EClient):
    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, wrapper=self)
        self.lock = threading.Lock()
        self.next_id: int | None = None
        self.accounts = ""
        self.errors: dict[int, list[list[object]]] = {}
        self.statuses: dict[int, list[str]] = {}
        self.sent: dict[int, list[str]] = {}

    # EWrapper
    def nextValidId(self, orderId: int) -> None:  # noqa: N802, N803 (ibapi's names)
        self.next_id = orderId

    def managedAccounts(self, accountsList: str) -> None:  # noqa: N802, N803
        self.accounts = accountsList

    def error(self, reqId: int, errorCode: int, errorString: str) -> None:  # noqa: N803
        with self.lock:
            self.errors.setdefault(reqId, []).append([errorCode, errorString])

    def orderStatus(self, orderId: int, status: str, *rest: Any) -> None:  # noqa: N802, N803
        with self.lock:
            self.statuses.setdefault(orderId, []).append(status)

    # EClient: placeOrder (3) and exerciseOptions (21) fields exactly as ibapi writes them
    def sendMsg(self, msg: str) -> None:  # noqa: N802
        fields = msg.split("\0")[:-1]
        if fields[:1] == ["3"]:
            self.sent[int(fields[1] if self.serverVersion() >= 145 else fields[2])] = fields
        elif fields[:1] == ["21"]:
            self.sent[int(fields[2])] = fields
        super().sendMsg(msg)

    def answered(self, order_id: int) -> bool:
        with self.lock:
            return bool(self.errors.get(order_id) or self.statuses.get(order_id))


def contract_of(spec: dict[str, Any]) -> Contract:
    contract = Contract()
    for key, value in spec.items():
        if key == "comboLegs":
            contract.comboLegs = []
            for leg_spec in value:
                leg = ComboLeg()
                for name, item in leg_spec.items():
                    setattr(leg, name, item)
                contract.comboLegs.append(leg)
        else:
            setattr(contract, key, value)
    return contract


def order_of(spec: dict[str, Any]) -> Order:
    order = Order()
    order.eTradeOnly = order.firmQuoteOnly = False
    for key, value in spec.items():
        setattr(order, key, value)
    return order


def main(port: int, client_id: int) -> None:
    app = Bot()
    app.connect("127.0.0.1", port, client_id)
    thread = threading.Thread(target=app.run, name="ibapi-run", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while app.next_id is None or not app.accounts:
        if time.monotonic() > deadline or not app.isConnected():
            raise SystemExit(f"no nextValidId/managedAccounts: connected {app.isConnected()}, errors {app.errors}")
        time.sleep(0.01)
    say(step="connected", library="ibapi", version=ibapi.__version__, module=ibapi.__file__,
        server_version=app.serverVersion(), accounts=sorted(app.accounts.split(",")))
    next_id = app.next_id
    for step in STEPS:
        placed: list[tuple[dict[str, Any], int]] = []
        for entry in step:
            order_id, next_id = next_id, next_id + 1
            if "exercise" in entry:
                x = entry["exercise"]
                app.exerciseOptions(order_id, contract_of(x["contract"]), x["action"], x["quantity"], x["account"],
                                    x["override"])
            else:
                app.placeOrder(order_id, contract_of(entry["contract"]), order_of(entry["order"]))
            local = [e for e in app.errors.get(order_id, []) if e[0] == INVALID_SYMBOL.code()]
            if local and order_id not in app.sent:
                say(name=entry["name"], skipped=f"ibapi {ibapi.__version__} will not encode it: {local[0]}")
                continue
            placed.append((entry, order_id))
        for entry, order_id in placed:
            deadline = time.monotonic() + ANSWER_WITHIN
            while time.monotonic() < deadline and not app.answered(order_id):
                time.sleep(0.01)
            with app.lock:
                say(name=entry["name"], order_id=order_id, errors=app.errors.get(order_id, []),
                    statuses=app.statuses.get(order_id, []), fields=app.sent.get(order_id))
    app.disconnect()
    thread.join(5)
    say(step="done")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
