"""src/tws/orders.py against what real clients send: ib_async, ib_insync 0.9.86 and ibapi 9.81.1.

Each client library builds the same catalogue of orders (`CASES`) and its own placeOrder serializes
them for every server version it can negotiate; the fields are taken where the library hands its
message to the socket, and the decoder must read each one back exactly. ib_async runs in this
process. ib_insync and ibapi run in a subprocess each, with their directory first on the path
(ib_insync's `eventkit` and ib_async's `aeventkit` install the same top-level package); that process
imports this module for the catalogue and prints one JSON line per message (`library_main`).
scripts/setup.sh installs both into .venv/ib_insync and .venv/ibapi; without them the tests fail.

Then fail-closed: every truncation, an extra field, malformed integers, hostile counts, versions out
of range and ambiguous spellings raise OrderDecodeError with a short printable reason.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from src.tws.orders import (
    MAX_VERSION,
    MIN_VERSION,
    ComboLeg,
    OrderDecodeError,
    PlaceOrder,
    decode_place_order,
)

REPO = Path(__file__).resolve().parents[2]
IB_INSYNC_DIR = REPO / ".venv" / "ib_insync"  # scripts/setup.sh puts them there
IBAPI_DIR = REPO / ".venv" / "ibapi"

# The server versions each library announces in its opening ``v<min>..<max>``, as its source says
# (checked against the library below). The server picks the highest version both support.
IB_ASYNC_RANGE = (157, 178)  # ib_async.client.Client.MinClientVersion, MaxClientVersion
IB_INSYNC_RANGE = (157, 176)  # ib_insync.client.Client, the same attributes
IBAPI_RANGE = (100, 157)  # ibapi.server_versions.MIN_CLIENT_VER, MAX_CLIENT_VER (REPLACE_FA_END)


def decodable(bounds: tuple[int, int]) -> list[int]:
    """The versions in a library's range that the decoder covers."""
    return list(range(max(bounds[0], MIN_VERSION), min(bounds[1], MAX_VERSION) + 1))


# --- the catalogue -----------------------------------------------------------------------------------
# Library-neutral: a contract (with the class ib_async and ib_insync would use) and an order, by the
# attribute names all three libraries share; `risky` is what the decoder must report.

AAPL = {"cls": "Stock", "symbol": "AAPL", "secType": "STK", "exchange": "SMART", "currency": "USD", "conId": 265598}
SPY_CALL = {"cls": "Option", "symbol": "SPY", "secType": "OPT", "lastTradeDateOrContractMonth": "20250620",
            "strike": 500.0, "right": "C", "multiplier": "100", "exchange": "SMART", "currency": "USD",
            "conId": 712345678, "tradingClass": "SPY"}
EURUSD = {"cls": "Forex", "symbol": "EUR", "secType": "CASH", "exchange": "IDEALPRO", "currency": "USD",
          "conId": 12087792, "localSymbol": "EUR.USD"}
SPREAD = {"cls": "Bag", "symbol": "SPY", "secType": "BAG", "exchange": "SMART", "currency": "USD",
          "comboLegs": [{"conId": 712345678, "ratio": 1, "action": "BUY", "exchange": "SMART"},
                        {"conId": 712345679, "ratio": 2, "action": "SELL", "exchange": "SMART"}]}
BUY_100 = {"orderType": "MKT", "action": "BUY", "totalQuantity": 100.0}

CASES: dict[str, dict[str, Any]] = {
    "stock_market": {"contract": AAPL, "order": BUY_100},
    "limit_account_ref": {"contract": AAPL, "order": {"orderType": "LMT", "action": "SELL", "totalQuantity": 5.0,
                                                      "lmtPrice": 190.5, "account": "DU123456", "orderRef": "gp-7",
                                                      "tif": "GTC"}},
    "stop": {"contract": AAPL, "order": {"orderType": "STP", "action": "SELL", "totalQuantity": 100.0,
                                         "auxPrice": 180.25}},
    "bracket_child": {"contract": AAPL, "order": {"orderType": "LMT", "action": "SELL", "totalQuantity": 100.0,
                                                  "lmtPrice": 200.0, "parentId": 41, "transmit": False}},
    "option": {"contract": SPY_CALL, "order": {"orderType": "LMT", "action": "BUY", "totalQuantity": 2.0,
                                               "lmtPrice": 3.45}},
    "forex": {"contract": EURUSD, "order": {"orderType": "MKT", "action": "SELL", "totalQuantity": 20000.0}},
    "bag": {"contract": SPREAD, "order": {"orderType": "LMT", "action": "BUY", "totalQuantity": 1.0, "lmtPrice": 0.5}},
    "bag_leg_prices": {"contract": SPREAD, "order": {"orderType": "LMT", "action": "BUY", "totalQuantity": 1.0,
                                                     "lmtPrice": 0.5, "orderComboLegs": [1.25, 0.75]},
                       "risky": ["order combo legs"]},
    "smart_combo_routing": {"contract": SPREAD, "order": {"orderType": "LMT", "action": "BUY", "totalQuantity": 1.0,
                                                          "lmtPrice": 0.5, "smartComboRoutingParams":
                                                          [["NonGuaranteed", "1"], ["LeginPrio", "0"]]}},
    "what_if": {"contract": AAPL, "order": {**BUY_100, "whatIf": True}},
    "fa_group": {"contract": AAPL, "order": {**BUY_100, "faGroup": "Everyone", "faMethod": "EqualQuantity"},
                 "risky": ["FA allocation"]},
    "model_code": {"contract": AAPL, "order": {**BUY_100, "modelCode": "Tech"}, "risky": ["FA allocation"]},
    "cash_qty": {"contract": EURUSD, "order": {"orderType": "MKT", "action": "BUY", "totalQuantity": 0.0,
                                               "cashQty": 1000.0}, "risky": ["cash quantity"]},
    "delta_neutral_contract": {"contract": {**SPY_CALL, "deltaNeutralContract": {"conId": 756733, "delta": 0.5,
                                                                                 "price": 500.0}},
                               "order": {"orderType": "LMT", "action": "BUY", "totalQuantity": 1.0, "lmtPrice": 3.0},
                               "risky": ["delta-neutral contract"]},
    "delta_neutral_order": {"contract": SPY_CALL,
                            "order": {"orderType": "VOL", "action": "BUY", "totalQuantity": 1.0, "volatility": 0.2,
                                      "volatilityType": 2, "deltaNeutralOrderType": "MKT",
                                      "deltaNeutralConId": 756733},
                            "risky": ["delta-neutral order"]},
    "hedge": {"contract": AAPL, "order": {**BUY_100, "parentId": 41, "hedgeType": "B", "hedgeParam": "1.5"},
              "risky": ["hedge"]},
    "algo": {"contract": AAPL, "order": {"orderType": "LMT", "action": "BUY", "totalQuantity": 100.0, "lmtPrice": 190.0,
                                         "algoStrategy": "Adaptive",
                                         "algoParams": [["adaptivePriority", "Normal"], ["maxPctVol", "0.1"]]}},
    "price_condition": {"contract": AAPL, "order": {**BUY_100, "conditions": [
        {"type": "Price", "isMore": True, "price": 180.0, "conId": 265598, "exch": "SMART", "triggerMethod": 2}]}},
    "all_conditions": {"contract": AAPL, "order": {**BUY_100, "conditionsIgnoreRth": True, "conditions": [
        {"type": "Price", "isMore": False, "price": 170.0, "conId": 265598, "exch": "SMART", "triggerMethod": 0},
        {"type": "Time", "isMore": True, "time": "20250102 10:00:00 US/Eastern", "conjunction": "o"},
        {"type": "Margin", "isMore": False, "percent": 30},
        {"type": "Execution", "secType": "STK", "exch": "SMART", "symbol": "IBM"},
        {"type": "Volume", "isMore": True, "volume": 100000, "conId": 265598, "exch": "SMART"},
        {"type": "PercentChange", "isMore": True, "changePercent": 5.0, "conId": 265598, "exch": "SMART"}]}},
    "scale": {"contract": AAPL, "order": {"orderType": "LMT", "action": "BUY", "totalQuantity": 1000.0,
                                          "lmtPrice": 180.0, "scaleInitLevelSize": 100, "scaleSubsLevelSize": 50,
                                          "scalePriceIncrement": 0.05, "scaleAutoReset": True},
              "risky": ["scale"]},
    "nan_quantity": {"contract": AAPL, "order": {"orderType": "MKT", "action": "BUY", "totalQuantity": math.nan}},
    "peg_bench": {"contract": AAPL, "order": {"orderType": "PEG BENCH", "action": "BUY", "totalQuantity": 100.0,
                                              "referenceContractId": 756733, "peggedChangeAmount": 0.1,
                                              "referenceChangeAmount": 0.2, "referenceExchangeId": "SMART"}},
    "peg_best_up_to_mid": {"contract": {**AAPL, "exchange": "IBKRATS"},
                           "order": {"orderType": "PEG BEST", "action": "BUY", "totalQuantity": 100.0,
                                     "lmtPrice": 181.0, "notHeld": True, "minTradeQty": 10, "minCompeteSize": 20,
                                     "competeAgainstBestOffset": math.inf, "midOffsetAtWhole": 0.01,
                                     "midOffsetAtHalf": 0.005}},
    "peg_best_offset": {"contract": {**AAPL, "exchange": "IBKRATS"},
                        "order": {"orderType": "PEG BEST", "action": "BUY", "totalQuantity": 100.0, "lmtPrice": 181.0,
                                  "notHeld": True, "minCompeteSize": 20, "competeAgainstBestOffset": 0.02}},
    "peg_mid": {"contract": {**AAPL, "exchange": "IBKRATS"},
                "order": {"orderType": "PEG MID", "action": "SELL", "totalQuantity": 100.0, "lmtPrice": 179.0,
                          "notHeld": True, "midOffsetAtWhole": 0.01, "midOffsetAtHalf": 0.005}},
}
ORDER_IDS = {name: 1000 + i for i, name in enumerate(CASES)}


def price_text(value: float | None) -> str:
    return "" if value is None else str(value)


def expected(name: str) -> dict[str, Any]:
    """What the decoder must read back for a case, whichever library sent it."""
    case = CASES[name]
    contract, order = case["contract"], case["order"]
    return {
        "order_id": ORDER_IDS[name], "symbol": contract["symbol"], "sec_type": contract["secType"],
        "currency": contract["currency"], "exchange": contract["exchange"], "con_id": contract.get("conId", 0),
        "local_symbol": contract.get("localSymbol", ""), "trading_class": contract.get("tradingClass", ""),
        "last_trade_date": contract.get("lastTradeDateOrContractMonth", ""), "right": contract.get("right", ""),
        "multiplier": contract.get("multiplier", ""), "strike": str(float(contract.get("strike", 0.0))),
        "legs": tuple(ComboLeg(leg["conId"], str(leg["ratio"]), leg["action"], leg["exchange"])
                      for leg in contract.get("comboLegs", [])),
        "action": order["action"], "total_quantity": str(order["totalQuantity"]), "order_type": order["orderType"],
        "lmt_price": price_text(order.get("lmtPrice")), "aux_price": price_text(order.get("auxPrice")),
        "tif": order.get("tif", ""), "account": order.get("account", ""), "order_ref": order.get("orderRef", ""),
        "transmit": order.get("transmit", True), "parent_id": order.get("parentId", 0),
        "what_if": order.get("whatIf", False), "risky": tuple(case.get("risky", ())),
    }


def summary(decoded: PlaceOrder) -> dict[str, Any]:
    c = decoded.contract
    return {
        "order_id": decoded.order_id, "symbol": c.symbol, "sec_type": c.sec_type, "currency": c.currency,
        "exchange": c.exchange, "con_id": c.con_id, "local_symbol": c.local_symbol, "trading_class": c.trading_class,
        "last_trade_date": c.last_trade_date, "right": c.right, "multiplier": c.multiplier, "strike": c.strike,
        "legs": decoded.legs, "action": decoded.action, "total_quantity": decoded.total_quantity,
        "order_type": decoded.order_type, "lmt_price": decoded.lmt_price, "aux_price": decoded.aux_price,
        "tif": decoded.tif, "account": decoded.account, "order_ref": decoded.order_ref, "transmit": decoded.transmit,
        "parent_id": decoded.parent_id, "what_if": decoded.what_if, "risky": decoded.risky,
    }


# --- building the catalogue in each library ----------------------------------------------------------

def build_ib(lib: Any, name: str) -> tuple[Any, Any]:
    """Contract and order in ib_async or ib_insync (the same API), with the classes a bot would use."""
    spec = dict(CASES[name]["contract"])
    cls = getattr(lib, spec.pop("cls"))
    spec.pop("secType")
    legs = spec.pop("comboLegs", None)
    dnc = spec.pop("deltaNeutralContract", None)
    contract = cls(**spec)
    if legs:
        contract.comboLegs = [lib.ComboLeg(**leg) for leg in legs]
    if dnc:
        contract.deltaNeutralContract = lib.DeltaNeutralContract(**dnc)
    attrs = dict(CASES[name]["order"])
    for key in ("algoParams", "smartComboRoutingParams"):
        if key in attrs:
            attrs[key] = [lib.TagValue(tag, value) for tag, value in attrs[key]]
    if "orderComboLegs" in attrs:
        attrs["orderComboLegs"] = [lib.OrderComboLeg(price=price) for price in attrs["orderComboLegs"]]
    if "conditions" in attrs:
        attrs["conditions"] = [
            getattr(lib, cond["type"] + "Condition")(**{k: v for k, v in cond.items() if k != "type"})
            for cond in attrs["conditions"]]
    kind = attrs.pop("orderType")
    action, quantity = attrs.pop("action"), attrs.pop("totalQuantity")
    if kind == "MKT":
        order = lib.MarketOrder(action, quantity, **attrs)
    elif kind == "LMT":
        order = lib.LimitOrder(action, quantity, attrs.pop("lmtPrice"), **attrs)
    elif kind == "STP":
        order = lib.StopOrder(action, quantity, attrs.pop("auxPrice"), **attrs)
    else:
        order = lib.Order(orderType=kind, action=action, totalQuantity=quantity, **attrs)
    assert contract.secType == CASES[name]["contract"]["secType"]
    return contract, order


def build_ibapi(name: str) -> tuple[Any, Any]:
    """Contract and order in ibapi 9.81: plain objects whose attributes are set one by one."""
    from ibapi.contract import ComboLeg as ApiComboLeg
    from ibapi.contract import Contract as ApiContract
    from ibapi.contract import DeltaNeutralContract
    from ibapi.order import Order, OrderComboLeg
    from ibapi.order_condition import Create, OrderCondition
    from ibapi.tag_value import TagValue

    def filled(obj: Any, attrs: dict[str, Any]) -> Any:
        for key, value in attrs.items():
            setattr(obj, key, value)
        return obj

    spec = {k: v for k, v in CASES[name]["contract"].items() if k != "cls"}
    legs = spec.pop("comboLegs", None)
    dnc = spec.pop("deltaNeutralContract", None)
    contract = filled(ApiContract(), spec)
    if legs:
        contract.comboLegs = [filled(ApiComboLeg(), leg) for leg in legs]
    if dnc:
        contract.deltaNeutralContract = filled(DeltaNeutralContract(), dnc)
    attrs = dict(CASES[name]["order"])
    for key in ("algoParams", "smartComboRoutingParams"):
        if key in attrs:
            attrs[key] = [TagValue(tag, value) for tag, value in attrs[key]]
    if "orderComboLegs" in attrs:
        attrs["orderComboLegs"] = [filled(OrderComboLeg(), {"price": price}) for price in attrs["orderComboLegs"]]
    if "conditions" in attrs:
        conditions = []
        for spec_ in attrs["conditions"]:
            cond = Create(getattr(OrderCondition, spec_["type"]))
            for key, value in spec_.items():
                if key == "conjunction":
                    cond.isConjunctionConnection = value == "a"
                elif key != "type":
                    setattr(cond, "exchange" if key == "exch" else key, value)
            conditions.append(cond)
        attrs["conditions"] = conditions
    return contract, filled(Order(), attrs)


def ib_client_fields(lib: Any, version: int, name: str) -> list[str]:
    """The fields ib_async's or ib_insync's Client.placeOrder hands to sendMsg, at ``version``."""
    client = lib.client.Client(object())
    client._serverVersion = version
    client.connState = lib.client.Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append  # the throttled path to the socket: take the message here
    contract, order = build_ib(lib, name)
    client.placeOrder(ORDER_IDS[name], contract, order)
    [message] = sent
    assert message.endswith("\0")
    return message.split("\0")[:-1]


def ibapi_fields(version: int, name: str) -> list[str]:
    """The fields ibapi's EClient.placeOrder gives its connection, at ``version``."""
    from ibapi.client import EClient
    from ibapi.wrapper import EWrapper

    errors: list[str] = []
    sent: list[bytes] = []

    class Wrapper(EWrapper):  # type: ignore[misc]
        def error(self, reqId: int, errorCode: int, errorString: str) -> None:
            errors.append(f"{errorCode} {errorString}")

    class Connection:
        def isConnected(self) -> bool:
            return True

        def sendMsg(self, msg: bytes) -> None:
            sent.append(msg)

    client = EClient(Wrapper())
    client.conn = Connection()
    client.connState = EClient.CONNECTED
    client.serverVersion_ = version
    contract, order = build_ibapi(name)
    client.placeOrder(ORDER_IDS[name], contract, order)
    if errors:
        raise RuntimeError("; ".join(errors))
    [frame] = sent
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    payload = frame[4:].decode()
    assert payload.endswith("\0")
    return payload.split("\0")[:-1]


def library_main() -> None:
    """In a subprocess, with ib_insync or ibapi first on the path: ``library`` then one JSON line for
    the announced range and one for each version and case."""
    library = sys.argv[1]
    if library == "ib_insync":
        import ib_insync
        import ib_insync.client

        low, high = ib_insync.client.Client.MinClientVersion, ib_insync.client.Client.MaxClientVersion
        origin = ib_insync.__file__

        def capture(version: int, name: str) -> list[str]:
            return ib_client_fields(ib_insync, version, name)
    else:
        import ibapi
        from ibapi import server_versions

        low, high = server_versions.MIN_CLIENT_VER, server_versions.MAX_CLIENT_VER
        origin = ibapi.__file__
        capture = ibapi_fields  # type: ignore[assignment]
    print(json.dumps({"range": [low, high], "file": origin}), flush=True)
    for version in decodable((low, high)):
        for name in CASES:
            try:
                print(json.dumps({"version": version, "case": name, "fields": capture(version, name)}))
            except Exception as exc:  # reported to the test, which fails on it
                print(json.dumps({"version": version, "case": name, "error": f"{type(exc).__name__}: {exc}"}))


def run_library(library: str, directory: Path) -> dict[Any, Any]:
    if not (directory / library / "__init__.py").is_file():
        pytest.fail(f"{library} is not installed in {directory}: run bash scripts/setup.sh")
    env = {**os.environ, "PYTHONPATH": str(directory)}
    script = "from tests.tws.test_orders import library_main; library_main()"
    done = subprocess.run([sys.executable, "-c", script, library], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{library} capture failed: {done.stderr[-3000:]}"
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    head, results = lines[0], lines[1:]
    out: dict[Any, Any] = {"range": tuple(head["range"]), "file": head["file"]}
    for line in results:
        out[(line["version"], line["case"])] = line
    return out


@pytest.fixture(scope="module")
def ib_insync_messages() -> dict[Any, Any]:
    return run_library("ib_insync", IB_INSYNC_DIR)


@pytest.fixture(scope="module")
def ibapi_messages() -> dict[Any, Any]:
    return run_library("ibapi", IBAPI_DIR)


def captured(messages: dict[Any, Any], version: int, name: str) -> list[str]:
    line = messages[(version, name)]
    assert "error" not in line, f"the library did not send {name} at {version}: {line['error']}"
    fields: list[str] = line["fields"]
    return fields


def matrix(bounds: tuple[int, int]) -> list[Any]:
    return [pytest.param(v, name, id=f"v{v}-{name}") for v in decodable(bounds) for name in CASES]


# --- the real clients ----------------------------------------------------------------------------------

def test_announced_ranges(ib_insync_messages: dict[Any, Any], ibapi_messages: dict[Any, Any]) -> None:
    from ib_async.client import Client

    assert (Client.MinClientVersion, Client.MaxClientVersion) == IB_ASYNC_RANGE
    assert ib_insync_messages["range"] == IB_INSYNC_RANGE
    assert ib_insync_messages["file"].startswith(str(IB_INSYNC_DIR))
    assert ibapi_messages["range"] == IBAPI_RANGE
    assert ibapi_messages["file"].startswith(str(IBAPI_DIR))
    # ibapi 9.81 stops at 157, so with any newer server it runs at 157; with an older one, down to 145
    assert decodable(IBAPI_RANGE) == list(range(145, 158))


@pytest.mark.parametrize(("version", "name"), matrix(IB_ASYNC_RANGE))
def test_ib_async(version: int, name: str) -> None:
    import ib_async
    import ib_async.client

    fields = ib_client_fields(ib_async, version, name)
    assert summary(decode_place_order(fields, version)) == expected(name)


@pytest.mark.parametrize(("version", "name"), matrix(IB_INSYNC_RANGE))
def test_ib_insync(ib_insync_messages: dict[Any, Any], version: int, name: str) -> None:
    fields = captured(ib_insync_messages, version, name)
    assert summary(decode_place_order(fields, version)) == expected(name)


@pytest.mark.parametrize(("version", "name"), matrix(IBAPI_RANGE))
def test_ibapi(ibapi_messages: dict[Any, Any], version: int, name: str) -> None:
    fields = captured(ibapi_messages, version, name)
    assert summary(decode_place_order(fields, version)) == expected(name)


def test_the_libraries_agree_where_their_ranges_meet(ib_insync_messages: dict[Any, Any],
                                                     ibapi_messages: dict[Any, Any]) -> None:
    """At 157, the one version all three can use, the three write the same fields for most cases
    (not field for field identical: ibapi writes unset doubles such as cashQty out, and its ints)."""
    import ib_async
    import ib_async.client

    for name in CASES:
        ours = ib_client_fields(ib_async, 157, name)
        assert len(captured(ib_insync_messages, 157, name)) == len(ours), name
        assert len(captured(ibapi_messages, 157, name)) == len(ours), name


# --- fail closed ------------------------------------------------------------------------------------------

def ib_async_fields(version: int, name: str) -> list[str]:
    import ib_async
    import ib_async.client

    return ib_client_fields(ib_async, version, name)


@pytest.mark.parametrize("version", [157, 169, 170, 176, 177, 178])
def test_every_truncation_and_an_extra_field_raise(version: int) -> None:
    for name in CASES:
        fields = ib_async_fields(version, name)
        decode_place_order(fields, version)
        for k in range(1, len(fields) + 1):
            with pytest.raises(OrderDecodeError):
                decode_place_order(fields[:-k], version)
        for extra in ("", "0", "1"):
            with pytest.raises(OrderDecodeError, match="left over"):
                decode_place_order([*fields, extra], version)


MUTATIONS = ("", "0", "1", "-1", "x", "2", "1.5", "0.0", "1.7976931348623157E308", "2147483647", "BAG", "bag",
             "PEG BENCH", "PEG BEST", "PEG MID", "PEGMID", "IBKRATS", "ibkrats", "Infinite", "nan", "\u017f")


def outcome(fields: list[str], version: int) -> PlaceOrder | str:
    try:
        return decode_place_order(fields, version)
    except OrderDecodeError as exc:
        return f"refused: {exc}"


@pytest.mark.parametrize("version", [145, 157, 170, 177, 178])
def test_a_plain_order_read_at_fixed_positions_is_read_as_the_walk_reads_it(
        ibapi_messages: dict[Any, Any], version: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoder reads a plain order (no combo, no fields that insert more) at fixed positions; the walk
    reads everything. For every case the libraries write, and every change of one field of it, the two give
    the same order or the same refusal."""
    from src.tws import orders

    bases = [ib_async_fields(version, name) if version >= IB_ASYNC_RANGE[0] else captured(ibapi_messages, version, name)
             for name in CASES]
    inputs = [base for base in bases] + [[*base[:i], value, *base[i + 1:]] for base in bases
                                         for i in range(len(base)) for value in MUTATIONS if value != base[i]]
    def read_at_fixed_positions(fields: list[str]) -> bool:
        try:
            return orders._plain_order(fields, version) is not None
        except OrderDecodeError:
            return True  # refused there

    plain = sum(map(read_at_fixed_positions, inputs))
    fast = [outcome(fields, version) for fields in inputs]
    monkeypatch.setattr(orders, "_plain_order", lambda fields, version: None)
    walked = [outcome(fields, version) for fields in inputs]
    assert plain > len(bases)  # the fixed positions read many of them, the walk the rest
    for fields, a, b in zip(inputs, fast, walked, strict=True):
        assert a == b, fields


def test_every_truncation_raises_for_ibapi(ibapi_messages: dict[Any, Any]) -> None:
    for version in (145, 148, 151, 157):
        for name in CASES:
            fields = captured(ibapi_messages, version, name)
            for k in range(1, len(fields) + 1):
                with pytest.raises(OrderDecodeError):
                    decode_place_order(fields[:-k], version)
            with pytest.raises(OrderDecodeError, match="left over"):
                decode_place_order([*fields, ""], version)


BAD_INTEGERS = ["", "abc", "1.0", " 1", "1 ", "+1", "1e3", "0x10", "1_000", "\u0663", "--1", "1" * 19]


@pytest.mark.parametrize("bad", BAD_INTEGERS)
def test_a_malformed_order_id_raises(bad: str) -> None:
    fields = ib_async_fields(178, "stock_market")
    fields[1] = bad
    with pytest.raises(OrderDecodeError, match="orderId"):
        decode_place_order(fields, 178)


@pytest.mark.parametrize("bad", [b for b in BAD_INTEGERS if b])
def test_a_malformed_con_id_raises(bad: str) -> None:
    fields = ib_async_fields(178, "stock_market")
    fields[2] = bad
    with pytest.raises(OrderDecodeError, match="conId"):
        decode_place_order(fields, 178)


def test_an_empty_con_id_is_zero_and_18_digits_are_fine() -> None:
    fields = ib_async_fields(178, "stock_market")
    fields[2] = ""
    assert decode_place_order(fields, 178).contract.con_id == 0
    fields[1] = "-" + "9" * 18
    assert decode_place_order(fields, 178).order_id == -(10**18 - 1)


def bag_count_index(fields: list[str]) -> int:
    """Where a BAG order's combo leg count is: after id, orderId, 14 contract, 5 order, 14 extended fields."""
    index = 1 + 1 + 14 + 5 + 14
    assert fields[4] == "BAG" and fields[index] == "2"
    return index


@pytest.mark.parametrize("bad", ["two", "", "2.0", "-1", "1001", str(10**9), "9" * 18, "9" * 40])
def test_a_bad_leg_count_raises_fast(bad: str) -> None:
    fields = ib_async_fields(178, "bag")
    fields[bag_count_index(fields)] = bad
    started = time.perf_counter()
    with pytest.raises(OrderDecodeError, match="comboLegs count"):
        decode_place_order(fields, 178)
    assert time.perf_counter() - started < 0.5  # a loop of 10**9 would take minutes


def test_a_leg_count_past_the_end_raises() -> None:
    fields = ib_async_fields(178, "bag")
    fields[bag_count_index(fields)] = "500"
    with pytest.raises(OrderDecodeError, match="ended early"):
        decode_place_order(fields, 178)


def test_a_hostile_condition_count_raises_fast() -> None:
    fields = ib_async_fields(178, "price_condition")
    index = fields.index("180.0") - 4  # count, type, conjunction, isMore, then the price
    assert fields[index:index + 5] == ["1", "1", "a", "1", "180.0"]
    for bad in (str(10**9), "999", "x"):
        fields[index] = bad
        started = time.perf_counter()
        with pytest.raises(OrderDecodeError, match="conditions count"):
            decode_place_order(fields, 178)
        assert time.perf_counter() - started < 0.5  # a loop of 10**9 would take minutes
    fields[index] = "1"
    fields[index + 1] = "2"  # no condition type 2
    with pytest.raises(OrderDecodeError, match="condition type 2"):
        decode_place_order(fields, 178)


@pytest.mark.parametrize("version", [0, 100, 144, 179, 200, 201, 10**6, -157])
def test_a_version_out_of_range_raises(version: int) -> None:
    fields = ib_async_fields(178, "stock_market")
    with pytest.raises(OrderDecodeError, match="server version"):
        decode_place_order(fields, version)


def test_bounds_and_types() -> None:
    assert (MIN_VERSION, MAX_VERSION) == (145, 178)
    fields = ib_async_fields(178, "stock_market")
    with pytest.raises(OrderDecodeError):
        decode_place_order(fields, "178")  # type: ignore[arg-type]
    with pytest.raises(OrderDecodeError):
        decode_place_order([*fields[:5], 7, *fields[6:]], 178)  # type: ignore[list-item]
    with pytest.raises(OrderDecodeError, match="not a placeOrder"):
        decode_place_order(["4", *fields[1:]], 178)
    with pytest.raises(OrderDecodeError, match="ended early"):
        decode_place_order([], 178)


@pytest.mark.parametrize("quantity", ["nan", "1e400", "-5", "1.5", "", "abc", "Infinity"])
def test_the_quantity_is_raw_text(quantity: str) -> None:
    fields = ib_async_fields(178, "stock_market")
    assert fields[17] == "100.0"
    fields[17] = quantity
    assert decode_place_order(fields, 178).total_quantity == quantity


def test_shares_allocation_and_literal_unset_values() -> None:
    fields = ib_async_fields(157, "stock_market")
    assert fields[35] == "" and fields[36] == "0.0"  # sharesAllocation, discretionaryAmt
    fields[35] = "U1/60,U2/40"
    assert decode_place_order(fields, 157).risky == ("shares allocation",)
    cash = ib_async_fields(157, "cash_qty")
    index = cash.index("1000.0")
    for unset in ("1.7976931348623157E308", "1.7976931348623157e+308"):
        cash[index] = unset
        assert decode_place_order(cash, 157).risky == ()
    cash[index] = "0"
    assert decode_place_order(cash, 157).risky == ("cash quantity",)


@pytest.mark.parametrize(("order_type", "version"), [("PEGBENCH", 145), ("PEGBENCH", 178), ("peg bench", 157),
                                                      ("PEGBEST", 170), ("PEGMID", 178), ("Peg Mid", 176)])
def test_ambiguous_peg_spellings_raise(order_type: str, version: int) -> None:
    fields = ib_async_fields(max(version, 157), "stock_market")  # refused at the order type, before the rest
    fields[18] = order_type
    with pytest.raises(OrderDecodeError, match="ambiguous"):
        decode_place_order(fields, version)


def test_unspaced_peg_best_and_mid_before_170_are_plain() -> None:
    fields = ib_async_fields(169, "stock_market")
    for order_type in ("PEGBEST", "PEGMID"):
        fields[18] = order_type
        assert decode_place_order(fields, 169).order_type == order_type


def test_a_bag_in_another_case_and_ibkrats_in_another_case_raise() -> None:
    fields = ib_async_fields(178, "stock_market")
    fields[4] = "bag"
    with pytest.raises(OrderDecodeError, match="ambiguous"):
        decode_place_order(fields, 178)
    fields = ib_async_fields(178, "stock_market")
    fields[9] = "ibkrats"
    with pytest.raises(OrderDecodeError, match="ambiguous"):
        decode_place_order(fields, 178)
    fields = ib_async_fields(169, "stock_market")
    fields[9] = "ibkrats"  # no minTradeQty before 170: nothing to disagree on
    assert decode_place_order(fields, 169).contract.exchange == "ibkrats"


def scale_increment_index(fields: list[str]) -> int:
    index = fields.index("0.05")
    assert fields[index - 2:index] == ["100", "50"]
    return index


@pytest.mark.parametrize("bad", ["nan", "NaN", "inf", "Infinite", "1e400", "-inf", "0.05x", "1_0"])
def test_an_unreadable_scale_increment_raises(bad: str) -> None:
    fields = ib_async_fields(178, "scale")
    fields[scale_increment_index(fields)] = bad
    with pytest.raises(OrderDecodeError, match="scalePriceIncrement"):
        decode_place_order(fields, 178)


@pytest.mark.parametrize(("text", "more"), [("Infinite", True), ("Infinity", True), ("inf", True), ("0.02", False),
                                            ("", False), ("-1", False)])
def test_compete_against_best_offset_spellings(text: str, more: bool) -> None:
    """ib_async writes "Infinite", the official 10.x client "Infinity": both bring the mid offsets."""
    fields = ib_async_fields(178, "peg_best_up_to_mid")
    index = fields.index("Infinite")
    head = [*fields[:index], text]
    tail = fields[index + 1:]
    assert tail == ["0.01", "0.005"]
    assert decode_place_order(head + (tail if more else []), 178).order_type == "PEG BEST"
    with pytest.raises(OrderDecodeError):
        decode_place_order(head + ([] if more else tail), 178)


@pytest.mark.parametrize("bad", ["nan", "-Infinity", "1e400", "x"])
def test_an_unreadable_compete_against_best_offset_raises(bad: str) -> None:
    fields = ib_async_fields(178, "peg_best_up_to_mid")
    fields[fields.index("Infinite")] = bad
    with pytest.raises(OrderDecodeError, match="competeAgainstBestOffset"):
        decode_place_order(fields, 178)


def test_the_reason_is_one_short_printable_line() -> None:
    fields = ib_async_fields(178, "stock_market")
    fields[1] = "\x1b[31m\n\r" + "A" * 5000 + "\x00\x07"
    with pytest.raises(OrderDecodeError) as caught:
        decode_place_order(fields, 178)
    reason = str(caught.value)
    assert reason.isprintable() and len(reason) < 120 and "A" * 41 not in reason
    fields = ib_async_fields(178, "stock_market")
    with pytest.raises(OrderDecodeError) as caught:
        decode_place_order([*fields, "\n" + "B" * 5000], 178)
    reason = str(caught.value)
    assert reason.isprintable() and len(reason) < 120
