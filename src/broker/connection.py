"""The bot's connection to IB Gateway (ib_async), honest about its state, and the API strategies get.

`Broker` owns the ib_async session. Its `state` is what the Gateway really gives us:

* `connecting` / `reconnecting`: no usable session (yet, or again);
* `connected`: the API answers and positions and open orders are synced;
* `degraded`: the API socket is open but IB is not there — error 1100 (Gateway lost IB),
  2110 (Gateway-server link broken), or the heartbeat's `reqCurrentTime` round trip timed out
  (a frozen API: TCP open, nothing answers). 1101/1102 (restored) resync positions and open
  orders (1101 also means market data subscriptions were lost) before `connected` again.

Data-farm notices (2103/2105/2157 broken, 2104/2106/2158 OK) are tracked and shown but do
not pause trading: orders go to the order server, not to a data farm.

`StrategyAPI` is what a strategy gets: ib_async's `IB` itself (`api.ib`), helpers for reads
(accounts, positions, open orders, contract qualification, market data and history), and
`place_order` / `cancel_order`, checked early by the `TradingGate` (the firewall's rules on the bot's
own view). The guarantee is the order firewall's, at the wire (docs/BOTS.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ib_async import IB

from src.broker.gate import OrderRefused, TradingDisabled, TradingGate

log = logging.getLogger(__name__)

__all__ = ["Broker", "ClientIdInUse", "OrderRefused", "StrategyAPI", "TradingDisabled"]

CONNECTING, CONNECTED, DEGRADED, RECONNECTING = "connecting", "connected", "degraded", "reconnecting"
LOST, RESTORED_DATA_LOST, RESTORED, SERVER_LINK_BROKEN = 1100, 1101, 1102, 2110
FARM_BROKEN = frozenset({2103, 2105, 2157})
FARM_OK = frozenset({2104, 2106, 2158})
CLIENT_ID_IN_USE = 326
STABLE_AFTER = 60.0  # a connection that stayed up this long resets the reconnect backoff
RESYNC_FIRST_DELAY, RESYNC_MAX_DELAY = 1.0, 30.0  # a failed resync is retried after 1, 2, 4... 30 s
RESYNC_FAILED = "resync after restore failed"


class ClientIdInUse(ConnectionError):
    """Error 326: another client holds our client id. Not transient: retrying cannot help."""


class Broker:
    """One ib_async session to the Gateway, with an honest connection state."""

    def __init__(self, host: str, port: int, client_id: int, *, connect_timeout: float = 10.0,
                 ib: IB | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.connect_timeout = connect_timeout
        self.ib = ib or IB()
        self.clock = clock
        self.state = CONNECTING
        self.state_reason = "not connected yet"
        self.broken_farms: set[str] = set()
        self.last_error: tuple[int, str] | None = None
        self.on_state: Callable[[str, str], None] = lambda state, reason: None
        self._connected_at: float | None = None
        self._delay: float | None = None  # the backoff delay of the last connection, until it proves stable
        self._resync: asyncio.Task[None] | None = None
        self.ib.errorEvent += self._on_error

    # --- connecting ------------------------------------------------------------------------

    async def connect(self) -> list[str]:
        """Connect once with a complete start-up sync (any timed-out sync request fails it)."""
        self.last_error = None
        try:
            await self.ib.connectAsync(self.host, self.port, clientId=self.client_id,
                                       timeout=self.connect_timeout, raiseSyncErrors=True)
        except BaseException as exc:
            self.ib.disconnect()
            if self._last_code() == CLIENT_ID_IN_USE:
                raise ClientIdInUse(self._why(exc)) from None
            if isinstance(exc, (asyncio.TimeoutError, ConnectionError, OSError)):
                raise ConnectionError(self._why(exc)) from None
            raise
        self._connected_at = self.clock()
        self._set(CONNECTED, "connected and synced")
        return list(self.ib.managedAccounts())

    async def connect_with_backoff(self, attempts: int | None = None, first_delay: float = 1.0,
                                   max_delay: float = 30.0) -> list[str]:
        """Retry `connect` with capped exponential backoff (`attempts=None`: forever); a client id
        in use is not retried. The backoff grows across calls until a connection stays up
        STABLE_AFTER seconds, so a Gateway that drops every connection right away is not hammered."""
        delay, attempt = self._next_delay(first_delay), 0
        while True:
            attempt += 1
            try:
                accounts = await self.connect()
                self._delay = delay
                return accounts
            except ClientIdInUse:
                raise
            except ConnectionError as exc:
                if attempts is not None and attempt >= attempts:
                    raise ConnectionError(f"cannot connect to the Gateway at {self.host}:{self.port} as client "
                                          f"{self.client_id} after {attempt} attempt(s): {exc}") from None
                log.warning("Gateway connection attempt %d failed (%s); retrying in %.1f s", attempt, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    def _next_delay(self, first_delay: float) -> float:
        previous = self._delay
        stable = self._connected_at is not None and self.clock() - self._connected_at >= STABLE_AFTER
        if previous is None or stable:
            return first_delay
        return min(previous * 2, 30.0)

    def _last_code(self) -> int | None:
        """The code of the last error the Gateway sent (set by the errorEvent callback)."""
        return self.last_error[0] if self.last_error else None

    def _why(self, exc: BaseException) -> str:
        if self.last_error:
            return f"Gateway error {self.last_error[0]}: {self.last_error[1]}"
        text = str(exc) or "no answer in time"
        return f"{type(exc).__name__}: {text}"

    # --- the state ------------------------------------------------------------------------

    def is_connected(self) -> bool:
        return self.state == CONNECTED and self.ib.isConnected()

    def lost(self, reason: str) -> None:
        """The session dropped: reconnecting from now on (from the first delay if it had proved stable)."""
        if self._connected_at is not None and self.clock() - self._connected_at >= STABLE_AFTER:
            self._delay = None
        self._connected_at = None
        self._set(RECONNECTING, reason)

    def _set(self, state: str, reason: str) -> None:
        if (state, reason) != (self.state, self.state_reason):
            self.state, self.state_reason = state, reason
            (log.info if state == CONNECTED else log.warning)("Gateway connection %s: %s", state, reason)
            self.on_state(state, reason)

    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        self.last_error = (code, message)
        if code in (LOST, SERVER_LINK_BROKEN):
            self._set(DEGRADED, f"error {code}: {message}")
        elif code in (RESTORED, RESTORED_DATA_LOST):
            self._set(DEGRADED, f"error {code}: {message}; resyncing positions and open orders")
            self._start_resync(data_lost=code == RESTORED_DATA_LOST)
        elif code in FARM_BROKEN:
            self.broken_farms.add(message.rsplit(":", 1)[-1])
            log.warning("Data farm broken (error %d): %s", code, message)
        elif code in FARM_OK:
            self.broken_farms.discard(message.rsplit(":", 1)[-1])

    def _start_resync(self, data_lost: bool) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._resync is None or self._resync.done():
            self._resync = loop.create_task(self.resync(data_lost))

    async def resync(self, data_lost: bool = False) -> None:
        """Positions and open orders again, then `connected`: trading resumes only on fresh data. A resync
        that times out is retried with capped exponential backoff while the session is open and nothing
        newer (1100 again, a drop) took over; trading stays paused meanwhile, and says why."""
        delay = RESYNC_FIRST_DELAY
        while True:
            try:
                await asyncio.wait_for(asyncio.gather(self.ib.reqPositionsAsync(), self.ib.reqOpenOrdersAsync()),
                                       self.connect_timeout)
                break
            except (asyncio.TimeoutError, ConnectionError) as exc:
                self._set(DEGRADED, f"resync after restore failed ({type(exc).__name__}): retried with backoff, "
                          "trading stays paused")
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESYNC_MAX_DELAY)
            if not self.ib.isConnected() or not self.state_reason.startswith(RESYNC_FAILED):
                return  # the session dropped (its reconnect resyncs) or a newer state took over
        if data_lost:
            log.warning("Gateway restored with data lost (1101): market data subscriptions must be renewed")
        self._set(CONNECTED, "restored and resynced")

    async def heartbeat(self, timeout: float) -> bool:
        """An API round trip (reqCurrentTime); a timeout marks the connection degraded. A good round trip
        after a frozen API, or while a failed resync waits for its next attempt, resyncs now."""
        if not self.ib.isConnected():
            return False
        try:
            await asyncio.wait_for(self.ib.reqCurrentTimeAsync(), timeout)
        except (asyncio.TimeoutError, ConnectionError):
            self._set(DEGRADED, f"the API did not answer reqCurrentTime within {timeout:g} s (frozen?)")
            return False
        if self.state == DEGRADED and self.state_reason.startswith("the API did not answer"):
            await self.resync()
        elif self.state == DEGRADED and self.state_reason.startswith(RESYNC_FAILED):
            self._start_resync(data_lost=False)
        return True

    def disconnect(self) -> None:
        self.ib.disconnect()


class StrategyAPI:
    """What a strategy may use: ib_async's own `IB` (streaming, events, account values), the helpers below,
    and `place_order`, which checks an order against the plan in force before sending it. Every order,
    however sent, is judged again at the wire by the order firewall (docs/BOTS.md)."""

    __slots__ = ("__broker", "__gate")

    def __init__(self, broker: Broker, gate: TradingGate) -> None:
        self.__broker = broker
        self.__gate = gate

    # state
    @property
    def connection_state(self) -> str:
        return self.__broker.state

    @property
    def trading_authorized(self) -> bool:
        """The plan in force grants authority now (today's plan, strategy A/B) and the connection is up."""
        return self.__gate.authorized_now()

    @property
    def orders_refused(self) -> int:
        return self.__gate.refused

    @property
    def ib(self) -> Any:
        """The connected ib_async `IB`: tickers, bars, order and fill events, account values. An order placed
        on it directly skips the early check and is judged by the firewall alone (error 201 when refused)."""
        return self.__broker.ib

    # reads
    def accounts(self) -> list[str]:
        return list(self.__broker.ib.managedAccounts())

    def positions(self) -> list[Any]:
        return list(self.__broker.ib.positions())

    def open_trades(self) -> list[Any]:
        return list(self.__broker.ib.openTrades())

    async def qualify_contracts(self, *contracts: Any) -> list[Any]:
        return list(await self.__broker.ib.qualifyContractsAsync(*contracts))

    async def market_snapshot(self, contract: Any, timeout: float = 10.0) -> Any:
        tickers = await asyncio.wait_for(self.__broker.ib.reqTickersAsync(contract), timeout)
        return tickers[0] if tickers else None

    async def historical_bars(self, contract: Any, duration: str = "1 D", bar_size: str = "5 mins",
                              what: str = "TRADES", timeout: float = 20.0) -> list[Any]:
        bars = await self.__broker.ib.reqHistoricalDataAsync(contract, "", duration, bar_size, what, True,
                                                             timeout=timeout)
        return list(bars)

    # orders
    def place_order(self, contract: Any, order: Any) -> Any:
        """Through the gate: OrderRefused (and nothing sent) unless every rule of the plan allows it."""
        return self.__gate.place_order(contract, order)

    def cancel_order(self, order: Any) -> Any:
        return self.__gate.cancel_order(order)
