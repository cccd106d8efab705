"""A client's placeOrder (message id 3), read field by field, sans-IO, failing closed.

`decode_place_order(fields, server_version)` takes the text fields of one client->server frame
(the payload split on NUL, the trailing empty element dropped) and the negotiated server version,
and walks every field the client writes for that version, in the order the official client
(ibapi's ``EClient.placeOrder``) writes them, which ib_async and ib_insync copy. It returns a
`PlaceOrder` only if the walk ends exactly at the last field; fields that run out early, a field
left over, a malformed number in a field that steers the walk, or an ambiguous spelling raise
`OrderDecodeError`: an order we cannot read completely is refused, never guessed at. The common
order (no combo, none of the fields below that insert more fields) is read at fixed positions, laid
out from the walk's own runs of fields (`_plain_order`); anything else is walked. The two give the
same order or the same refusal (tests/tws/test_orders.py holds them to it).

Server versions `MIN_VERSION`..`MAX_VERSION` (145..178). 145 is MIN_SERVER_VER_ORDER_CONTAINER,
below which a ``version`` field follows the message id; 178 is the highest version the supported
clients (ib_async 2.x) announce; from 201 on messages are protobuf.

The walk, with what steers it (versions are the server version; every other field is always sent):

- id "3", orderId; the contract (conId, symbol, secType, lastTradeDateOrContractMonth, strike,
  right, multiplier, exchange, primaryExchange, currency, localSymbol, tradingClass, secIdType,
  secId); action, totalQuantity, orderType, lmtPrice, auxPrice; 14 extended fields (tif ... hidden).
- secType "BAG" only: combo legs (count, 8 fields each), order combo leg prices (count, 1 each),
  smartComboRoutingParams (count, tag and value each).
- sharesAllocation (deprecated), discretionaryAmt, goodAfterTime, goodTillDate, faGroup, faMethod,
  faPercentage; faProfile below 177 (MIN_SERVER_VER_FA_PROFILE_DESUPPORT); modelCode and 23 more
  ending in deltaNeutralOrderType, deltaNeutralAuxPrice.
- deltaNeutralOrderType non-empty: 8 delta-neutral fields.
- 7 fields ending in scalePriceIncrement; scalePriceIncrement a number > 0 (and not the unset
  double): 7 more scale fields.
- scaleTable, activeStartTime, activeStopTime, hedgeType; hedgeType non-empty: hedgeParam.
- optOutSmartRouting, clearingAccount, clearingIntent, notHeld; the delta-neutral contract flag,
  and when it is set its conId, delta, price.
- algoStrategy; non-empty: algoParams (count, tag and value each).
- algoId, whatIf, orderMiscOptions, solicited, randomizeSize, randomizePrice.
- orderType "PEG BENCH": 5 pegged-to-benchmark fields.
- conditions (count; each its type, then 3 to 6 fields by type); count > 0: conditionsIgnoreRth,
  conditionsCancelOrder.
- 7 adjusted-order fields, extOperator, softDollarTier name and value, cashQty, 4 MiFID II fields,
  dontUseAutoPriceForHedge, isOmsContainer; discretionaryUpToLimitPrice from 148
  (MIN_SERVER_VER_D_PEG_ORDERS); usePriceMgmtAlgo from 151 (MIN_SERVER_VER_PRICE_MGMT_ALGO).
- duration from 158, postToAts from 160, autoCancelParent from 162, advancedErrorOverride from
  166, manualOrderTime from 169.
- from 170: minTradeQty if exchange is "IBKRATS"; orderType "PEG BEST": minCompeteSize,
  competeAgainstBestOffset, and if that is infinite ("up to mid") midOffsetAtWhole and
  midOffsetAtHalf; orderType "PEG MID": midOffsetAtWhole, midOffsetAtHalf.

Refused as ambiguous because the supported clients disagree on them: the spellings "PEGBENCH"
(always) and "PEGBEST", "PEGMID" (from 170), and any other case or spacing of these order types
(ib_async and the newer official clients send the extra fields for the unspaced spelling too;
ibapi 9.81 and ib_insync only for "PEG BENCH"/"PEG BEST"/"PEG MID"); a secType that is "BAG" in
another case, and from 170 an exchange that is "IBKRATS" in another case (a server comparing
without case would read different fields); a competeAgainstBestOffset or scalePriceIncrement that
is not a plain number or infinity spelling, or is NaN or infinite where the clients disagree.

`PlaceOrder.risky` names the features present that could move a position other than by
totalQuantity of this one contract (the caller's rules decide what to do with them):

- "delta-neutral contract": the contract's deltaNeutralContract is present;
- "delta-neutral order": deltaNeutralOrderType is set;
- "hedge": hedgeType is set;
- "FA allocation": any of faGroup, faMethod, faPercentage, faProfile, modelCode is set;
- "cash quantity": cashQty is set (non-empty and not the unset double 1.7976931348623157E308);
- "scale": scaleInitLevelSize, scaleSubsLevelSize or scalePriceIncrement is set;
- "order combo legs": a BAG order gives a price for one of its legs;
- "shares allocation": the deprecated sharesAllocation field is non-empty.

Standard library only.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection, Sequence
from typing import NamedTuple

MIN_VERSION = 145
MAX_VERSION = 178

PLACE_ORDER = "3"
# No real order has anywhere near this many legs, tag-value pairs or conditions; a count above it
# is refused before any loop runs.
MAX_COUNT = 1000
# What the clients send for "no value" when they do not send an empty field.
UNSET_DOUBLE = sys.float_info.max
UNSET_INTEGER = 2**31 - 1

RISKY_FEATURES = (
    "delta-neutral contract",
    "delta-neutral order",
    "hedge",
    "FA allocation",
    "cash quantity",
    "scale",
    "order combo legs",
    "shares allocation",
)

# Server versions at which placeOrder changed (ibapi's server_versions.py names).
_D_PEG_ORDERS = 148
_PRICE_MGMT_ALGO = 151
_DURATION = 158
_POST_TO_ATS = 160
_AUTO_CANCEL_PARENT = 162
_ADVANCED_ORDER_REJECT = 166
_MANUAL_ORDER_TIME = 169
_PEGBEST_PEGMID_OFFSETS = 170
_FA_PROFILE_DESUPPORT = 177

_INT = re.compile(r"-?[0-9]{1,18}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INFINITY = ("infinite", "infinity", "inf")
_INF = float("inf")

_HEAD = ("symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right", "multiplier", "exchange",
         "primaryExchange", "currency", "localSymbol", "tradingClass", "secIdType", "secId", "action",
         "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif", "ocaGroup", "account", "openClose", "origin",
         "orderRef")
_EXTENDED = ("tif", "ocaGroup", "account", "openClose", "origin", "orderRef", "transmit", "parentId",
             "blockOrder", "sweepToFill", "displaySize", "triggerMethod", "outsideRth", "hidden")
_COMBO_LEG = ("leg conId", "leg ratio", "leg action", "leg exchange", "leg openClose", "leg shortSaleSlot",
              "leg designatedLocation", "leg exemptCode")
_AFTER_MODEL_CODE = ("shortSaleSlot", "designatedLocation", "exemptCode", "ocaType", "rule80A", "settlingFirm",
                     "allOrNone", "minQty", "percentOffset", "eTradeOnly", "firmQuoteOnly", "nbboPriceCap",
                     "auctionStrategy", "startingPrice", "stockRefPrice", "delta", "stockRangeLower",
                     "stockRangeUpper", "overridePercentageConstraints", "volatility", "volatilityType")
_DELTA_NEUTRAL_ORDER = ("deltaNeutralConId", "deltaNeutralSettlingFirm", "deltaNeutralClearingAccount",
                        "deltaNeutralClearingIntent", "deltaNeutralOpenClose", "deltaNeutralShortSale",
                        "deltaNeutralShortSaleSlot", "deltaNeutralDesignatedLocation")
_SCALE_MORE = ("scalePriceAdjustValue", "scalePriceAdjustInterval", "scaleProfitOffset", "scaleAutoReset",
               "scaleInitPosition", "scaleInitFillQty", "scaleRandomPercent")
_PEG_BENCH = ("referenceContractId", "isPeggedChangeAmountDecrease", "peggedChangeAmount",
              "referenceChangeAmount", "referenceExchangeId")
_ADJUSTED = ("adjustedOrderType", "triggerPrice", "lmtPriceOffset", "adjustedStopPrice", "adjustedStopLimitPrice",
             "adjustedTrailingAmount", "adjustableTrailingUnit", "extOperator", "softDollarTier name",
             "softDollarTier value")
_MIFID = ("mifid2DecisionMaker", "mifid2DecisionAlgo", "mifid2ExecutionTrader", "mifid2ExecutionAlgo",
          "dontUseAutoPriceForHedge", "isOmsContainer")
# Fields after the condition type, by type: conjunction, then isMore and the value (all but
# Execution), then conId and exchange (Price, Volume, PercentChange), then Price's triggerMethod.
_CONDITION_FIELDS = {
    1: ("conjunction", "isMore", "price", "conId", "exchange", "triggerMethod"),  # Price
    3: ("conjunction", "isMore", "time"),  # Time
    4: ("conjunction", "isMore", "percent"),  # Margin
    5: ("conjunction", "secType", "exchange", "symbol"),  # Execution
    6: ("conjunction", "isMore", "volume", "conId", "exchange"),  # Volume
    7: ("conjunction", "isMore", "changePercent", "conId", "exchange"),  # PercentChange
}
# The fields after isOmsContainer, each sent from the server version that introduced it; per version, in one skip.
_VERSIONED_TAIL = ((_D_PEG_ORDERS, "discretionaryUpToLimitPrice"), (_PRICE_MGMT_ALGO, "usePriceMgmtAlgo"),
                   (_DURATION, "duration"), (_POST_TO_ATS, "postToAts"), (_AUTO_CANCEL_PARENT, "autoCancelParent"),
                   (_ADVANCED_ORDER_REJECT, "advancedErrorOverride"), (_MANUAL_ORDER_TIME, "manualOrderTime"))
_TAIL_BY_VERSION = {v: tuple(name for since, name in _VERSIONED_TAIL if v >= since)
                    for v in range(MIN_VERSION, MAX_VERSION + 1)}
# The runs of fields read in one slice each (`_Reader.take`), between the fields that change what follows.
_OPENING = ("message id", "orderId", "conId", *_HEAD, *_EXTENDED[_EXTENDED.index("transmit"):])
_TRANSMIT = _OPENING.index("transmit")
_MIDDLE_BY_VERSION = {v: ("sharesAllocation", "discretionaryAmt", "goodAfterTime", "goodTillDate", "faGroup",
                          "faMethod", "faPercentage", *(("faProfile",) if v < _FA_PROFILE_DESUPPORT else ()),
                          "modelCode", *_AFTER_MODEL_CODE, "deltaNeutralOrderType", "deltaNeutralAuxPrice")
                      for v in range(MIN_VERSION, MAX_VERSION + 1)}
_UNTIL_SCALE = ("continuousUpdate", "referencePriceType", "trailStopPrice", "trailingPercent", "scaleInitLevelSize",
                "scaleSubsLevelSize", "scalePriceIncrement")
_UNTIL_HEDGE = ("scaleTable", "activeStartTime", "activeStopTime", "hedgeType")
_UNTIL_DELTA_NEUTRAL_CONTRACT = ("optOutSmartRouting", "clearingAccount", "clearingIntent", "notHeld",
                                 "deltaNeutralContract present")
_UNTIL_RANDOMIZE = ("algoId", "whatIf", "orderMiscOptions", "solicited", "randomizeSize", "randomizePrice")
_CLOSING_BY_VERSION = {v: (*_ADJUSTED, "cashQty", *_MIFID, *_TAIL_BY_VERSION[v])
                       for v in range(MIN_VERSION, MAX_VERSION + 1)}
_CONDITION_MIN_WIDTH = 1 + min(len(names) for names in _CONDITION_FIELDS.values())  # the type, then its fields
# Order types whose extra fields depend on the spelling, by their spelling without spaces in
# upper case: the spelling every client agrees on, and the version from which it matters.
_PEG_TYPES = {"PEGBENCH": ("PEG BENCH", MIN_VERSION), "PEGBEST": ("PEG BEST", _PEGBEST_PEGMID_OFFSETS),
              "PEGMID": ("PEG MID", _PEGBEST_PEGMID_OFFSETS)}


class OrderDecodeError(ValueError):
    """The fields are not a placeOrder this decoder can read completely; the reason is one short,
    printable line that quotes at most a few dozen characters of the client's data."""


# NamedTuples, not frozen dataclasses: as immutable, and built in a fraction of the time (a frozen dataclass
# sets each field through object.__setattr__; the order path builds two of these for every order)
class Contract(NamedTuple):
    con_id: int
    symbol: str
    sec_type: str
    last_trade_date: str
    strike: str
    right: str
    multiplier: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str
    sec_id_type: str
    sec_id: str


class ComboLeg(NamedTuple):
    con_id: int
    ratio: str
    action: str
    exchange: str


class PlaceOrder(NamedTuple):
    order_id: int
    contract: Contract
    legs: tuple[ComboLeg, ...]
    action: str
    total_quantity: str
    order_type: str
    lmt_price: str
    aux_price: str
    tif: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    what_if: bool
    risky: tuple[str, ...]


def show(text: str, limit: int = 40) -> str:
    """Client data fit for an error message: printable ASCII only, at most ``limit`` characters."""
    kept = "".join(c for c in text if " " <= c <= "~")
    return repr(kept if len(kept) <= limit else kept[:limit] + "...")


class _Reader:
    """A cursor over the fields; every read names its field, so a failure says where it stopped."""

    __slots__ = ("_fields", "_pos")

    def __init__(self, fields: Sequence[str]) -> None:
        self._fields = fields
        self._pos = 0

    def text(self, name: str) -> str:
        pos = self._pos
        try:
            value = self._fields[pos]
        except IndexError:
            raise OrderDecodeError(f"placeOrder ended early: no field {pos} ({name})") from None
        self._pos = pos + 1
        return value

    def skip(self, names: tuple[str, ...]) -> None:
        """Fields read past unchecked, in one step (the order path reads a hundred of them)."""
        end = self._pos + len(names)
        if end > len(self._fields):
            raise OrderDecodeError(f"placeOrder ended early: no field {len(self._fields)} "
                                   f"({names[len(self._fields) - self._pos]})")
        self._pos = end

    def take(self, names: tuple[str, ...]) -> Sequence[str]:
        """The next ``len(names)`` fields, in one slice: a run of fields whose count nothing in it changes is
        bounds-checked once, not field by field (the order path reads every order's hundred fields)."""
        start = self._pos
        self.skip(names)
        return self._fields[start:self._pos]

    def integer_at(self, segment: Sequence[str], index: int, name: str, empty: int | None = None) -> int:
        """`integer` for field `index` of the `segment` just taken."""
        return _integer(segment[index], self._pos - len(segment) + index, name, empty)

    def integer(self, name: str, *, empty: int | None = None) -> int:
        """A strict integer: optional '-', 1 to 18 digits; ``empty`` is the value of an empty field,
        which is refused when ``empty`` is None."""
        return _integer(self.text(name), self._pos - 1, name, empty)

    def count(self, name: str, width: int) -> int:
        """A list's length, bounded, for a list of items of at least ``width`` fields each."""
        n = self.integer(name)
        if n < 0 or n > MAX_COUNT:
            raise OrderDecodeError(f"placeOrder field {self._pos - 1} ({name}) is out of range: {n}")
        if n * width > len(self._fields) - self._pos:
            raise OrderDecodeError(f"placeOrder ended early: {name} is {n} but only "
                                   f"{len(self._fields) - self._pos} fields follow")
        return n

    def finish(self) -> None:
        extra = len(self._fields) - self._pos
        if extra:
            raise OrderDecodeError(f"placeOrder has {extra} field(s) left over after field {self._pos - 1}: "
                                   f"{show(self._fields[self._pos])}")


def _integer(value: str, pos: int, name: str, empty: int | None) -> int:
    if len(value) <= 18 and value.isascii() and value.isdigit():  # the common case, without the pattern
        return int(value)
    if value == "" and empty is not None:
        return empty
    if not _INT.fullmatch(value):
        raise OrderDecodeError(f"placeOrder field {pos} ({name}) is not an integer: {show(value)}")
    return int(value)


def _number(value: str, name: str) -> float | None:
    """A double field whose value steers the walk: None when empty, plus infinity for an infinity
    spelling (ib_async and ib_insync write "Infinite", the official 10.x client "Infinity"), else
    the value of a plain decimal number that stays finite. Anything else (NaN, minus infinity, an
    overflow such as 1e400, Python-only forms such as 1_0) is refused: clients never write those,
    and a server may read them differently."""
    if value == "":
        return None
    if value.lower().lstrip("+") in _INFINITY:
        return _INF
    if not _NUMBER.fullmatch(value):
        raise OrderDecodeError(f"placeOrder {name} is not a number: {show(value)}")
    number = float(value)
    if number in (_INF, -_INF):
        raise OrderDecodeError(f"placeOrder {name} overflows: {show(value)}")
    return number


def _double_set(value: str) -> bool:
    """A double field is set: non-empty and not the unset double (ibapi 9.81 writes it out)."""
    if value == "":
        return False
    return not (_NUMBER.fullmatch(value) and float(value) == UNSET_DOUBLE)


def _int_set(value: str) -> bool:
    """An integer field is set: non-empty and not the unset integer."""
    if value == "":
        return False
    return not (_INT.fullmatch(value) and int(value) == UNSET_INTEGER)


def _check_spelling(order_type: str, sec_type: str, exchange: str, version: int) -> None:
    """Refuse the spellings on which the supported clients, or a server comparing without case,
    could disagree about which fields follow."""
    if sec_type != "BAG" and sec_type.upper() == "BAG":
        raise OrderDecodeError(f"placeOrder secType {show(sec_type)} is ambiguous; only 'BAG' is read as a combo")
    squeezed = order_type.replace(" ", "").upper()
    if squeezed in _PEG_TYPES:
        spelling, since = _PEG_TYPES[squeezed]
        if version >= since and order_type != spelling:
            raise OrderDecodeError(f"placeOrder orderType {show(order_type)} is ambiguous between client "
                                   f"libraries; send {spelling!r}")
    if version >= _PEGBEST_PEGMID_OFFSETS and exchange != "IBKRATS" and exchange.upper() == "IBKRATS":
        raise OrderDecodeError(f"placeOrder exchange {show(exchange)} is ambiguous; only 'IBKRATS' is read as such")


# Where the fixed head's fields are in a placeOrder (after the message id, orderId and conId: `_HEAD`).
_SEC_TYPE, _EXCHANGE, _ORDER_TYPE = (3 + _HEAD.index(name) for name in ("secType", "exchange", "orderType"))
_CONTRACT_END = 3 + _HEAD.index("action")  # Contract's fields after its conId are the head's up to action


def _placed(fields: Sequence[str], order_id: int, con_id: int, legs: Sequence[ComboLeg], transmit: bool,
            parent_id: int, what_if: bool, risky: Collection[str]) -> PlaceOrder:
    """The order either reader returns, from the fixed head in `fields` and what the reader found after it;
    the features in `risky` in RISKY_FEATURES' order."""
    (action, total_quantity, order_type, lmt_price, aux_price, tif, _oca_group, account, _open_close, _origin,
     order_ref) = fields[_CONTRACT_END:3 + len(_HEAD)]
    return PlaceOrder(order_id, Contract(con_id, *fields[3:_CONTRACT_END]), tuple(legs), action, total_quantity,
                      order_type, lmt_price, aux_price, tif, account, order_ref, transmit, parent_id, what_if,
                      tuple(name for name in RISKY_FEATURES if name in risky) if risky else ())


class _Plain(NamedTuple):
    """Where the fields are in a plain order (see `_plain_order`) at one server version."""

    length: int
    middle: int  # where _MIDDLE_BY_VERSION's run starts (sharesAllocation)
    fa_end: int  # the end of the FA fields (faGroup .. modelCode)
    delta_neutral_order: int
    scale: int  # scaleInitLevelSize; scaleSubsLevelSize and scalePriceIncrement follow
    hedge: int
    delta_neutral_contract: int
    algo: int
    what_if: int
    conditions: int
    cash: int


def _plain_layout(version: int) -> _Plain:
    """The walk's runs laid end to end with every field that would insert more fields unset."""
    runs = (_OPENING, _MIDDLE_BY_VERSION[version], _UNTIL_SCALE, _UNTIL_HEDGE, _UNTIL_DELTA_NEUTRAL_CONTRACT,
            ("algoStrategy",), _UNTIL_RANDOMIZE, ("conditions count",), _CLOSING_BY_VERSION[version])
    names = [name for run in runs for name in run]
    middle = len(_OPENING)
    return _Plain(len(names), middle, names.index("modelCode") + 1, names.index("deltaNeutralOrderType"),
                  names.index("scaleInitLevelSize"), names.index("hedgeType"),
                  names.index("deltaNeutralContract present"), names.index("algoStrategy"), names.index("whatIf"),
                  names.index("conditions count"), names.index("cashQty"))


_PLAIN_BY_VERSION = {v: _plain_layout(v) for v in range(MIN_VERSION, MAX_VERSION + 1)}
_FA_START = 4  # in the middle run: sharesAllocation, discretionaryAmt, goodAfterTime, goodTillDate, then faGroup


def _plain_order(fields: Sequence[str], version: int) -> PlaceOrder | None:
    """The common order read at fixed positions: not a combo, no delta-neutral order or contract, no scale
    increment, no hedge, no algo, no conditions, none of the order types or the exchange that add fields.
    None for any other (the walk reads it). The positions are the walk's own runs laid end to end
    (`_plain_layout`), every check here is the walk's for the same field in the same order, so an order read
    here is read as the walk reads it (tests/tws/test_orders.py holds the two to the same answers)."""
    at = _PLAIN_BY_VERSION[version]
    if len(fields) != at.length or fields[0] != PLACE_ORDER or fields[at.delta_neutral_order] \
            or fields[at.scale + 2] or fields[at.hedge] or fields[at.delta_neutral_contract] not in ("", "0") \
            or fields[at.algo] or fields[at.conditions] != "0":
        return None
    sec_type, exchange, order_type = fields[_SEC_TYPE], fields[_EXCHANGE], fields[_ORDER_TYPE]
    if sec_type == "BAG" or order_type == "PEG BENCH" or (version >= _PEGBEST_PEGMID_OFFSETS and (
            exchange == "IBKRATS" or order_type in ("PEG BEST", "PEG MID"))):
        return None
    order_id = _integer(fields[1], 1, "orderId", None)
    con_id = _integer(fields[2], 2, "conId", 0)
    _check_spelling(order_type, sec_type, exchange, version)
    transmit = _integer(fields[_TRANSMIT], _TRANSMIT, "transmit", 0) != 0
    parent_id = _integer(fields[_TRANSMIT + 1], _TRANSMIT + 1, "parentId", None)
    what_if = _integer(fields[at.what_if], at.what_if, "whatIf", 0) != 0
    risky = []
    if _int_set(fields[at.scale]) or _int_set(fields[at.scale + 1]):
        risky.append("scale")
    if any(fields[at.middle + _FA_START:at.fa_end]):
        risky.append("FA allocation")
    if _double_set(fields[at.cash]):
        risky.append("cash quantity")
    if fields[at.middle]:
        risky.append("shares allocation")
    return _placed(fields, order_id, con_id, (), transmit, parent_id, what_if, risky)


def decode_place_order(fields: Sequence[str], server_version: int) -> PlaceOrder:
    """Read one placeOrder completely, or raise OrderDecodeError."""
    if type(server_version) is not int or not MIN_VERSION <= server_version <= MAX_VERSION:
        raise OrderDecodeError(f"placeOrder: server version {show(str(server_version))} is outside "
                               f"{MIN_VERSION}..{MAX_VERSION}")
    try:
        "".join(fields)  # every field is text (a join checks that at C speed)
    except TypeError:
        raise OrderDecodeError("placeOrder: a field is not text") from None
    plain = _plain_order(fields, server_version)
    if plain is not None:
        return plain
    version = server_version
    risky: set[str] = set()
    r = _Reader(fields)

    # the walk reads runs of fields in one slice each, between the fields that change what follows
    opening = r.take(_OPENING)
    if opening[0] != PLACE_ORDER:
        raise OrderDecodeError(f"not a placeOrder: message id {show(opening[0])}")
    order_id = r.integer_at(opening, 1, "orderId")
    con_id = r.integer_at(opening, 2, "conId", 0)
    sec_type, exchange, order_type = opening[_SEC_TYPE], opening[_EXCHANGE], opening[_ORDER_TYPE]
    _check_spelling(order_type, sec_type, exchange, version)
    transmit = r.integer_at(opening, _TRANSMIT, "transmit", 0) != 0
    parent_id = r.integer_at(opening, _TRANSMIT + 1, "parentId")

    legs: list[ComboLeg] = []
    if sec_type == "BAG":
        for _ in range(r.count("comboLegs count", len(_COMBO_LEG))):
            legs.append(ComboLeg(con_id=r.integer("leg conId", empty=0), ratio=r.text("leg ratio"),
                                 action=r.text("leg action"), exchange=r.text("leg exchange")))
            r.skip(_COMBO_LEG[4:])
        for _ in range(r.count("orderComboLegs count", 1)):
            if _double_set(r.text("orderComboLeg price")):
                risky.add("order combo legs")
        for _ in range(r.count("smartComboRoutingParams count", 2)):
            r.skip(("smartComboRoutingParam tag", "smartComboRoutingParam value"))

    middle = r.take(_MIDDLE_BY_VERSION[version])
    if middle[0]:
        risky.add("shares allocation")
    fa_end = len(middle) - len(_AFTER_MODEL_CODE) - 2
    if any(middle[4:fa_end]):  # faGroup, faMethod, faPercentage, (faProfile,) modelCode
        risky.add("FA allocation")
    if middle[-2]:  # deltaNeutralOrderType
        risky.add("delta-neutral order")
        r.skip(_DELTA_NEUTRAL_ORDER)

    scale_init, scale_subs, scale_increment = r.take(_UNTIL_SCALE)[-3:]
    if _int_set(scale_init) or _int_set(scale_subs) or _double_set(scale_increment):
        risky.add("scale")
    increment = _number(scale_increment, "scalePriceIncrement")
    if increment == _INF:
        # ib_async and ib_insync skip the scale fields for an infinite increment, ibapi sends them
        raise OrderDecodeError("placeOrder scalePriceIncrement is infinite")
    if increment is not None and 0 < increment < UNSET_DOUBLE:
        r.skip(_SCALE_MORE)

    if r.take(_UNTIL_HEDGE)[-1]:  # hedgeType
        risky.add("hedge")
        r.text("hedgeParam")
    routing = r.take(_UNTIL_DELTA_NEUTRAL_CONTRACT)
    if r.integer_at(routing, len(routing) - 1, _UNTIL_DELTA_NEUTRAL_CONTRACT[-1], 0):
        risky.add("delta-neutral contract")
        r.skip(("deltaNeutralContract conId", "deltaNeutralContract delta", "deltaNeutralContract price"))
    if r.text("algoStrategy"):
        for _ in range(r.count("algoParams count", 2)):
            r.skip(("algoParam tag", "algoParam value"))
    misc = r.take(_UNTIL_RANDOMIZE)
    what_if = r.integer_at(misc, 1, "whatIf", 0) != 0
    if order_type == "PEG BENCH":
        r.skip(_PEG_BENCH)

    conditions = r.count("conditions count", _CONDITION_MIN_WIDTH)
    for _ in range(conditions):
        condition_type = r.integer("condition type")
        if condition_type not in _CONDITION_FIELDS:
            raise OrderDecodeError(f"placeOrder condition type {condition_type} is unknown")
        r.skip(_CONDITION_FIELDS[condition_type])
    if conditions:
        r.skip(("conditionsIgnoreRth", "conditionsCancelOrder"))

    if _double_set(r.take(_CLOSING_BY_VERSION[version])[len(_ADJUSTED)]):  # cashQty
        risky.add("cash quantity")
    if version >= _PEGBEST_PEGMID_OFFSETS:
        if exchange == "IBKRATS":
            r.text("minTradeQty")
        mid_offsets = order_type == "PEG MID"
        if order_type == "PEG BEST":
            r.text("minCompeteSize")
            # infinite is "up to mid" (COMPETE_AGAINST_BEST_OFFSET_UP_TO_MID), which brings the mid offsets
            mid_offsets = _number(r.text("competeAgainstBestOffset"), "competeAgainstBestOffset") == _INF
        if mid_offsets:
            r.skip(("midOffsetAtWhole", "midOffsetAtHalf"))
    r.finish()

    return _placed(fields, order_id, con_id, legs, transmit, parent_id, what_if, risky)
