"""Wire format of the TWS API text protocol, server side.

The client opens with the bytes ``API\\0`` and a frame ``v<min>..<max>``; every
later message is a frame: a 4-byte big-endian length, then NUL-terminated ASCII
fields. This module reads and writes frames and builds the messages the
simulator sends. Field layouts follow ib_async 2.1.0's decoder (and ib_insync
0.9.86's, the same at the versions they share) for server versions 157 to
``SERVER_VERSION``: message id first, then usually a message version; where a
layout changed with the server version, the builder takes ``version``.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Sequence

from src.tws import wire

# Re-exported: the simulator's modules and tests use these from here.
from src.tws.wire import API_PREFIX as API_PREFIX
from src.tws.wire import MAX_FRAME_LENGTH as MAX_FRAME_LENGTH
from src.tws.wire import MIN_VERSION_ADVANCED_ORDER_REJECT as MIN_VERSION_ADVANCED_ORDER_REJECT
from src.tws.wire import ProtocolError as ProtocolError
from src.tws.wire import clip as clip
from src.tws.wire import encode as encode
from src.tws.wire import error as error
from src.tws.wire import managed_accounts as managed_accounts
from src.tws.wire import next_valid_id as next_valid_id
from src.tws.wire import parse_number as parse_number
from src.tws.wire import version_reply as version_reply

from . import market
from .broker import Execution, Order, Position
from .market import Instrument

# Highest version ib_async 2.1.0 asks for (client.py MaxClientVersion). Real
# Gateways answer >= 201 with protobuf messages, which a text simulator cannot.
SERVER_VERSION = wire.MAX_TEXT_VERSION

# The lowest version a client may ask for: older ones predate every layout here.
MIN_CLIENT_VERSION = 100

# From this server version openOrder no longer carries faProfile, execDetails carries
# pendingPriceRevision, contractDetails drops its version and mdSizeMultiplier fields.
MIN_VERSION_NO_FA_PROFILE = 177
MIN_VERSION_PENDING_PRICE_REVISION = 178
MIN_VERSION_SIZE_RULES = 164

#: "no value" for a double, as TWS sends it
UNSET_DOUBLE = "1.7976931348623157E308"

_LENGTH = struct.Struct(">I")


async def read_payload(reader: asyncio.StreamReader) -> bytes:
    """Read one frame and return its payload (raises IncompleteReadError on EOF)."""
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    if length > MAX_FRAME_LENGTH:
        raise ProtocolError(f"frame of {length} bytes")
    return await reader.readexactly(length)


async def read_fields(reader: asyncio.StreamReader) -> list[str]:
    """Read one frame and split it into its NUL-terminated fields."""
    return wire.fields_of(await read_payload(reader))


async def read_version_range(reader: asyncio.StreamReader) -> tuple[int, int]:
    """Read the client's ``API\\0`` + ``v<min>..<max>`` opening."""
    if await reader.readexactly(len(API_PREFIX)) != API_PREFIX:
        raise ProtocolError("missing API prefix")
    return wire.parse_version_range(await read_payload(reader))


def negotiate_version(client_min: int, client_max: int) -> int | None:
    """The version to serve: the highest both sides speak, or None if none."""
    version = min(SERVER_VERSION, client_max)
    return version if version >= max(client_min, MIN_CLIENT_VERSION) else None


def number(value: float) -> str:
    """A quantity or price as TWS writes it: ``10`` rather than ``10.0``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def current_time() -> bytes:
    return encode(49, 1, int(time.time()))


def position_end() -> bytes:
    return encode(62, 1)


def open_order_end() -> bytes:
    return encode(53, 1)


def completed_orders_end() -> bytes:
    """Id 102 has no message-version field (ib_async decoder skips only one field)."""
    return encode(102)


def account_download_end(account: str) -> bytes:
    return encode(54, 1, account)


def exec_details_end(req_id: str) -> bytes:
    return encode(55, 1, req_id)


def account_update_multi_end(req_id: str) -> bytes:
    return encode(74, 1, req_id)


def account_summary_end(req_id: str) -> bytes:
    return encode(64, 1, req_id)


def position_multi_end(req_id: str) -> bytes:
    return encode(72, 1, req_id)


# --- contracts and market data ------------------------------------------------------------------

def contract_details(version: int, req_id: str, i: Instrument, trading_hours: str, liquid_hours: str) -> bytes:
    """contractDetails (10) for a stock; before v164 with a version field and mdSizeMultiplier."""
    head: list[object] = [10, 8] if version < MIN_VERSION_SIZE_RULES else [10]
    fields: list[object] = [
        *head, req_id, i.symbol, i.sec_type, "", 0, "", "SMART", i.currency, i.symbol, i.trading_class,
        i.trading_class, i.con_id, market.TICK,
    ]
    if version < MIN_VERSION_SIZE_RULES:
        fields.append(1)  # mdSizeMultiplier
    fields += [
        "", market.ORDER_TYPES, ",".join(market.VALID_EXCHANGES), 1, 0, i.long_name, i.primary, "",
        i.industry, i.category, "", market.TIME_ZONE, trading_hours, liquid_hours, "", "",
        0,  # no secIdList
        1, "", "", "26", "", i.stock_type,  # aggGroup, underSymbol, underSecType, marketRuleIds, ...
    ]
    if version == MIN_VERSION_SIZE_RULES - 1:
        fields.append(100)  # suggestedSizeIncrement
    elif version >= MIN_VERSION_SIZE_RULES:
        fields += ["0.0001", "0.0001", 100]  # minSize, sizeIncrement, suggestedSizeIncrement
    return encode(*fields)


def contract_details_end(req_id: str) -> bytes:
    return encode(52, 1, req_id)


def tick_req_params(req_id: str, min_tick: float) -> bytes:
    return encode(81, req_id, min_tick, "9c0001", 3)


def market_data_type(req_id: str, data_type: int) -> bytes:
    return encode(58, 1, req_id, data_type)


def tick_price(req_id: str, tick_type: int, price: float, size: float = 0) -> bytes:
    """tickPrice (1) with its size and an attribute mask (0: none)."""
    return encode(1, 6, req_id, tick_type, price, number(size), 0)


def tick_size(req_id: str, tick_type: int, size: float) -> bytes:
    return encode(2, 6, req_id, tick_type, number(size))


def tick_string(req_id: str, tick_type: int, value: str) -> bytes:
    return encode(46, 6, req_id, tick_type, value)


#: tick type of a burst's ticks (4: last price)
BURST_TICK_TYPE = 4


def burst_ticks(req_id: int, first: int, last: int) -> list[bytes]:
    """Ticks ``first``..``last`` of a market-data burst (`GatewaySimulator.stream_ticks`): tickPrice (1)
    for ``req_id``, tick type 4 (last), price ``100.00 + (seq mod 1000) / 100``, size ``seq``, no
    attributes: ``tick_price``'s layout, the price always with two decimals, formatted in one step for speed."""
    frames = []
    for seq in range(first, last + 1):
        cents = seq % 1000
        data = f"1\0{6}\0{req_id}\0{BURST_TICK_TYPE}\0{100 + cents // 100}.{cents % 100:02d}\0{seq}\0{0}\0".encode()
        frames.append(_LENGTH.pack(len(data)) + data)
    return frames


def tick_snapshot_end(req_id: str) -> bytes:
    return encode(57, 1, req_id)


def historical_data(req_id: str, start: str, end: str, bars: Sequence[market.Bar]) -> bytes:
    fields: list[object] = [17, req_id, start, end, len(bars)]
    for b in bars:
        fields += [b.date, b.open, b.high, b.low, b.close, number(b.volume), b.wap, b.count]
    return encode(*fields)


# --- orders, executions, positions --------------------------------------------------------------

def _contract(o: Order) -> list[object]:
    """conId .. tradingClass of an order's contract, as openOrder writes it (no primaryExchange)."""
    i = o.instrument
    if i is None:
        return [0, o.symbol, "STK", "", 0, "", "", "SMART", "USD", o.symbol, ""]
    return [i.con_id, i.symbol, i.sec_type, "", 0, "", "", "SMART", i.currency, i.symbol, i.trading_class]


def _price(value: float | None) -> object:
    return UNSET_DOUBLE if value is None else value


def open_order(version: int, o: Order) -> bytes:
    """openOrder (5) for a plain order (no combo legs, algo, conditions), field for field as
    ib_async's decoder reads it at ``version``; the order state carries ``o.status``."""
    fields: list[object] = [
        5, o.order_id, *_contract(o),
        o.action, number(o.quantity), o.order_type, _price(o.limit), _price(o.aux), o.tif, "", o.account,
        "O", 0, o.order_ref, o.client_id, o.perm_id, 0, 0, 0, "", "", "", "", "",
    ]
    if version < MIN_VERSION_NO_FA_PROFILE:
        fields.append("")  # faProfile
    fields += [
        "", "", "", "", "", 0, "", -1,  # modelCode .. exemptCode
        0, "", "", "", "", "", 0, 0, 0, 0, "", 3, 0, 0, "",  # auctionStrategy .. nbboPriceCap
        o.parent_id, 0, "", 0, "", "",  # parentId, triggerMethod, volatility .. deltaNeutralAuxPrice
        0, 0, "", "", "", "", "",  # continuousUpdate .. comboLegsDescrip
        0, 0, 0,  # combo legs, order combo legs, smart combo routing params
        "", "", "",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
        "",  # hedgeType
        0, "", "", 0, 0,  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld, no delta neutral
        "",  # algoStrategy
        0, 0, o.status, *([""] * 14), 0, 0,  # solicited, whatIf, the order state, randomize*
        0,  # no conditions
        "", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, "", 0,  # adjustedOrderType .. usePriceMgmtAlgo
    ]
    if version >= 159:
        fields.append("")  # duration
    if version >= 160:
        fields.append("")  # postToAts
    if version >= 162:
        fields.append(0)  # autoCancelParent
    if version >= 170:
        fields += ["", "", "", "", ""]  # minTradeQty .. midOffsetAtHalf
    return encode(*fields)


def order_status(o: Order) -> bytes:
    return encode(3, o.order_id, o.status, number(o.filled), number(o.remaining), o.avg_fill_price, o.perm_id,
                  o.parent_id, o.last_fill_price, o.client_id, "", "")


def exec_details(version: int, req_id: str | int, e: Execution) -> bytes:
    o = e.order
    stamp = time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime(e.time))
    fields: list[object] = [
        11, req_id, o.order_id, *_contract(o), e.exec_id, stamp, o.account,
        o.instrument.primary if o.instrument else "SMART", "BOT" if o.buy else "SLD", number(e.shares),
        e.price, o.perm_id, o.client_id, 0, number(e.shares), e.price, o.order_ref, "", "", "", 2,
    ]
    if version >= MIN_VERSION_PENDING_PRICE_REVISION:
        fields.append(0)
    return encode(*fields)


def commission_report(e: Execution) -> bytes:
    realized = UNSET_DOUBLE if e.realized_pnl is None else e.realized_pnl
    return encode(59, 1, e.exec_id, e.commission, "USD", realized, "", "")


def position(account: str, i: Instrument, p: Position) -> bytes:
    return encode(61, 3, account, i.con_id, i.symbol, i.sec_type, "", 0, "", "", "SMART", i.currency, i.symbol,
                  i.trading_class, number(p.quantity), p.avg_cost)


def update_portfolio(account: str, i: Instrument, p: Position) -> bytes:
    price = market.quote(i).last
    return encode(7, 8, i.con_id, i.symbol, i.sec_type, "", 0, "", "", i.primary, i.currency, i.symbol,
                  i.trading_class, number(p.quantity), price, round(p.quantity * price, 2), p.avg_cost,
                  round(p.quantity * (price - p.avg_cost), 2), round(p.realized_pnl, 2), account)
