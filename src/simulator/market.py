"""The simulator's market: a small built-in universe, its quotes, its bars and its fill prices.

Everything here is synthetic and deterministic: a symbol always has the same quote
(``price`` one cent either side), and a bar depends only on the symbol, its start
time and its length, so two requests that overlap agree on the bars they share.
The contract ids are IBKR's real ones for these symbols; the prices are not market
prices. No I/O here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

# Exchanges a SMART-routed US stock lists (abridged from a real contract details answer).
VALID_EXCHANGES = ("SMART", "AMEX", "NYSE", "CBOE", "PHLX", "ISE", "CHX", "ARCA", "ISLAND", "NASDAQ",
                   "DRCTEDGE", "BEX", "BATS", "EDGEA", "BYX", "IEX", "EDGX", "PEARL", "MEMX", "IBEOS")
ORDER_TYPES = ("ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AON,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,"
               "DEACTEOD,GAT,GTC,GTD,GTT,HID,IOC,LIT,LMT,LOC,MIT,MKT,MOC,MTL,NGCOMB,NONALGO,OCA,PEGBENCH,"
               "REL,SCALE,SCALERST,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF")
TIME_ZONE = "US/Eastern"
TICK = 0.01


@dataclass(frozen=True)
class Instrument:
    """One contract of the universe: a SMART-routed US stock or ETF in USD."""

    symbol: str
    con_id: int
    primary: str
    long_name: str
    price: float  # the synthetic last price; bid and ask are a tick either side
    stock_type: str = "COMMON"
    trading_class: str = "NMS"
    industry: str = ""
    category: str = ""
    sec_type: str = "STK"
    currency: str = "USD"


UNIVERSE: dict[str, Instrument] = {i.symbol: i for i in (
    Instrument("SPY", 756733, "ARCA", "SPDR S&P 500 ETF TRUST", 500.0, "ETF", "SPY"),
    Instrument("QQQ", 320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1", 430.0, "ETF", "NMS"),
    Instrument("IWM", 9579970, "ARCA", "ISHARES RUSSELL 2000 ETF", 200.0, "ETF", "IWM"),
    Instrument("AAPL", 265598, "NASDAQ", "APPLE INC", 190.0, industry="Technology", category="Computers"),
    Instrument("MSFT", 272093, "NASDAQ", "MICROSOFT CORP", 410.0, industry="Technology", category="Software"),
    Instrument("NVDA", 4815747, "NASDAQ", "NVIDIA CORP", 120.0, industry="Technology",
               category="Semiconductors"),
    Instrument("AMZN", 3691937, "NASDAQ", "AMAZON.COM INC", 180.0, industry="Communications",
               category="Internet"),
    Instrument("GOOGL", 208813719, "NASDAQ", "ALPHABET INC-CL A", 170.0, industry="Communications",
               category="Internet"),
    Instrument("META", 107113386, "NASDAQ", "META PLATFORMS INC-CLASS A", 480.0, industry="Communications",
               category="Internet"),
    Instrument("TSLA", 76792991, "NASDAQ", "TESLA INC", 250.0, industry="Consumer, Cyclical",
               category="Auto Manufacturers"),
)}
BY_CON_ID = {i.con_id: i for i in UNIVERSE.values()}


def find(contract: Sequence[str]) -> Instrument | None:
    """The instrument a request's 12 contract fields describe, or None (error 200 then).

    The fields are ib_async's order: conId, symbol, secType, lastTradeDateOrContractMonth,
    strike, right, multiplier, exchange, primaryExchange, currency, localSymbol, tradingClass.
    A field left empty matches anything; a field given must agree, as a real lookup does.
    """
    (con_id, symbol, sec_type, expiry, strike, right, multiplier, exchange, primary, currency,
     local_symbol, trading_class) = contract
    if con_id not in ("", "0"):
        found = BY_CON_ID.get(int(con_id)) if con_id.isdigit() and len(con_id) < 12 else None
    else:
        found = UNIVERSE.get(symbol.upper())
    if found is None:
        return None
    agrees = (
        symbol.upper() in ("", found.symbol)
        and sec_type.upper() in ("", found.sec_type)
        and currency.upper() in ("", found.currency)
        and exchange.upper() in ("", *VALID_EXCHANGES)
        and primary.upper() in ("", found.primary, "ISLAND" if found.primary == "NASDAQ" else found.primary)
        and local_symbol.upper() in ("", found.symbol)
        and trading_class in ("", found.trading_class)
        and expiry == "" and right in ("", "0", "?") and multiplier in ("", "0", "1")
        and strike in ("", "0", "0.0")
    )
    return found if agrees else None


def rounded(price: float) -> float:
    return round(round(price / TICK) * TICK, 2)


@dataclass(frozen=True)
class Quote:
    bid: float
    ask: float
    last: float
    bid_size: int = 300
    ask_size: int = 400
    last_size: int = 100
    volume: int = 1_234_500

    @property
    def open(self) -> float:
        return rounded(self.last * 0.998)

    @property
    def high(self) -> float:
        return rounded(self.last * 1.01)

    @property
    def low(self) -> float:
        return rounded(self.last * 0.99)

    @property
    def close(self) -> float:  # the previous session's close
        return rounded(self.last * 0.995)


def quote(instrument: Instrument) -> Quote:
    return Quote(rounded(instrument.price - TICK), rounded(instrument.price + TICK), instrument.price)


# --- fills --------------------------------------------------------------------------------------

FILL_POLICIES = ("immediate", "marketable", "never")
STOP_TYPES = frozenset({"STP", "STP LMT"})  # trigger when the price reaches the stop (auxPrice)
TOUCH_TYPES = frozenset({"MIT", "LIT"})  # trigger when the price touches auxPrice from the other side
RESTING_TYPES = frozenset({"TRAIL", "TRAIL LIMIT", "TRAIL LIT", "TRAIL MIT"})  # wait for a move that never comes
ORDER_TYPES_ACCEPTED = frozenset({"MKT", "LMT", "MOC", "LOC", "MTL", "REL", "MIDPRICE", "PEG MID", "SNAP MKT",
                                  "SNAP MID", "SNAP PRIM"}) | STOP_TYPES | TOUCH_TYPES | RESTING_TYPES


def fill_price(instrument: Instrument, buy: bool, order_type: str, limit: float | None, aux: float | None,
               policy: str) -> float | None:
    """Where an order fills at once against the synthetic quote, or None if it rests.

    ``immediate``: every order that is not waiting for a trigger fills, a limit order at
    its limit or better (so a far-away limit fills at the limit); ``marketable``: a limit
    order fills only if its limit reaches the quote; ``never``: nothing fills. Stop and
    if-touched orders trigger only if the quote has already reached ``aux``; trailing
    orders always rest, since the synthetic price never moves.
    """
    if policy == "never" or order_type in RESTING_TYPES:
        return None
    q = quote(instrument)
    market = q.ask if buy else q.bid
    if order_type in STOP_TYPES | TOUCH_TYPES:
        if aux is None:
            return None
        reached = market >= aux if (order_type in STOP_TYPES) == buy else market <= aux
        if not reached:
            return None
        if order_type in ("STP", "MIT"):
            limit = None
    if limit is None:
        return market
    if policy == "marketable" and (limit < market if buy else limit > market):
        return None
    return rounded(min(limit, market) if buy else max(limit, market))


# --- historical bars ----------------------------------------------------------------------------

MAX_BARS = 10_000
BAR_SIZES = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900,
    "20 mins": 1200, "30 mins": 1800, "1 hour": 3600, "2 hours": 7200, "3 hours": 10800,
    "4 hours": 14400, "8 hours": 28800, "1 day": 86400, "1 week": 7 * 86400, "1 month": 30 * 86400,
}
# A duration unit in seconds, and in trading days for daily bars (so a count never depends on
# the weekday a test runs on).
DURATION_UNITS = {"S": (1, 1 / 86400), "D": (86400, 1), "W": (7 * 86400, 5), "M": (30 * 86400, 21),
                  "Y": (365 * 86400, 252)}
TRADES_LIKE = frozenset({"TRADES", "ADJUSTED_LAST"})
QUOTES_LIKE = frozenset({"MIDPOINT", "BID", "ASK", "BID_ASK"})


class HistoricalError(ValueError):
    """A historical data request the simulator answers with error 162; the text says why."""


@dataclass(frozen=True)
class Bar:
    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


def parse_end(text: str, now: dt.datetime) -> dt.datetime:
    """endDateTime: empty (now), ``yyyyMMdd HH:mm:ss [zone]``, ``yyyyMMdd-HH:mm:ss`` (UTC) or ``yyyyMMdd``."""
    text = text.strip()
    if not text:
        return now
    if len(text) > 64:
        raise HistoricalError("endDateTime is not yyyyMMdd HH:mm:ss [zone]")
    if len(text) > 8 and text[8] == "-":  # yyyyMMdd-HH:mm:ss is UTC
        text = f"{text[:8]} {text[9:]}"
    parts = text.split(" ", 2)
    try:
        if len(parts) == 1:
            moment = dt.datetime.strptime(parts[0], "%Y%m%d").replace(hour=23, minute=59, second=59)
        else:
            moment = dt.datetime.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
    except ValueError:
        raise HistoricalError("endDateTime is not yyyyMMdd HH:mm:ss [zone]") from None
    zone = parts[2] if len(parts) > 2 else "UTC"
    if zone.upper() in ("UTC", "GMT"):
        return moment.replace(tzinfo=dt.timezone.utc)
    try:
        from zoneinfo import ZoneInfo

        return moment.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.timezone.utc)
    except Exception:  # an unknown key, or no time zone database in the container
        raise HistoricalError("endDateTime's time zone is not known here: use UTC") from None


def parse_duration(text: str) -> tuple[int, float]:
    """``N S|D|W|M|Y`` as (seconds, trading days)."""
    count, _, unit = text.strip().partition(" ")
    if not (count.isdigit() and len(count) < 7 and unit.upper() in DURATION_UNITS and int(count) > 0):
        raise HistoricalError("durationStr is not 'N S|D|W|M|Y'")
    seconds, days = DURATION_UNITS[unit.upper()]
    return int(count) * seconds, int(count) * days


def bars(instrument: Instrument, end: dt.datetime, duration: str, bar_size: str, what_to_show: str,
         format_date: int) -> tuple[str, str, list[Bar]]:
    """(start, end, bars) for a reqHistoricalData; HistoricalError if the request is not valid.

    Intraday bars are one continuous series (no sessions, no weekends); daily and longer
    bars fall on weekdays, ``N D`` meaning N bars.
    """
    size = BAR_SIZES.get(bar_size.strip())
    if size is None:
        raise HistoricalError("barSizeSetting is not one of TWS's bar sizes, e.g. '1 min', '1 day'")
    if what_to_show.upper() not in TRADES_LIKE | QUOTES_LIKE:
        raise HistoricalError(f"whatToShow {what_to_show.upper()[:20]} is not simulated: use TRADES, MIDPOINT,"
                              " BID, ASK, BID_ASK or ADJUSTED_LAST")
    seconds, days = parse_duration(duration)
    trades = what_to_show.upper() in TRADES_LIKE
    if size >= 86400:
        step = size // 86400
        count = max(1, math.ceil(days / (5 if step == 7 else 21 if step == 30 else 1)))
        if count > MAX_BARS:
            raise HistoricalError(f"more than {MAX_BARS} bars requested")
        day = end.date()
        starts: list[dt.date] = []
        while len(starts) < count:
            if day.weekday() < 5:
                starts.append(day)
                day -= dt.timedelta(days=1 if step == 1 else step)
            else:
                day -= dt.timedelta(days=1)
        starts.reverse()
        result = [_bar(instrument, _epoch(d), size, d.strftime("%Y%m%d"), trades) for d in starts]
        first = dt.datetime.combine(starts[0], dt.time(), dt.timezone.utc)
    else:
        count = max(1, seconds // size)
        if count > MAX_BARS:
            raise HistoricalError(f"more than {MAX_BARS} bars requested: ask for a shorter duration"
                                  " or a larger bar size")
        last = (int(end.timestamp()) - 1) // size * size
        times = range(last - (count - 1) * size, last + 1, size)
        result = [_bar(instrument, t, size, _format(t, format_date), trades) for t in times]
        first = dt.datetime.fromtimestamp(times[0], dt.timezone.utc)
    return _format(int(first.timestamp()), 1), _format(int(end.timestamp()), 1), result


def _epoch(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp())


def _format(epoch: int, format_date: int) -> str:
    if format_date == 2:
        return str(epoch)
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y%m%d %H:%M:%S UTC")


def _level(instrument: Instrument, epoch: float) -> float:
    """The synthetic price at a moment: slow waves around the instrument's price."""
    days = epoch / 86400
    return instrument.price * (1 + 0.04 * math.sin(2 * math.pi * days / 23)
                               + 0.015 * math.sin(2 * math.pi * days / 3.7)
                               + 0.003 * math.sin(2 * math.pi * epoch / 8280))


def _bar(instrument: Instrument, start: int, size: int, date: str, trades: bool) -> Bar:
    digest = hashlib.blake2b(f"{instrument.symbol}:{size}:{start}".encode(), digest_size=8).digest()
    noise = [b / 255 for b in digest]
    open_, close = rounded(_level(instrument, start)), rounded(_level(instrument, start + size))
    spread = instrument.price * 0.001 * (1 + math.log2(max(size, 1)) / 4)
    high = rounded(max(open_, close) + spread * noise[0])
    low = rounded(min(open_, close) - spread * noise[1])
    if not trades:
        return Bar(date, open_, high, low, close, -1, -1, -1)
    volume = int((200 + 800 * noise[2]) * max(1.0, size / 60) * 10)
    return Bar(date, open_, high, low, close, volume, rounded((high + low + close) / 3), max(1, volume // 100))


def trading_hours(today: dt.date, days: int = 7) -> tuple[str, str]:
    """(tradingHours, liquidHours) in TWS's format for ``days`` days from ``today``."""
    trading, liquid = [], []
    for offset in range(days):
        day = (today + dt.timedelta(days=offset)).strftime("%Y%m%d")
        if (today + dt.timedelta(days=offset)).weekday() >= 5:
            trading.append(f"{day}:CLOSED")
            liquid.append(f"{day}:CLOSED")
        else:
            trading.append(f"{day}:0400-{day}:2000")
            liquid.append(f"{day}:0930-{day}:1600")
    return ";".join(trading), ";".join(liquid)
