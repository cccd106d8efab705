"""The bot's connection to IB Gateway (ib_async), and the one place orders can leave.

`Broker` is all a strategy ever gets: it can read the accounts and place orders,
and `place_order` is the single enforced trading gate. Under Strategy C, or any
plan without trading authority, it refuses every order, whatever the strategy
code does. Reconnection after a dropped Gateway connection uses capped
exponential backoff and says so in the log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ib_async import IB

log = logging.getLogger(__name__)


class TradingDisabled(RuntimeError):
    """An order was attempted while the gameplan gives no trading authority."""


class Broker:
    """A connected ib_async session behind a trading gate."""

    def __init__(self, host: str, port: int, client_id: int, *, trading_authorized: bool,
                 connect_timeout: float = 10.0, ib: IB | None = None) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.trading_authorized = trading_authorized
        self.connect_timeout = connect_timeout
        self.ib = ib or IB()
        self.orders_refused = 0

    async def connect(self) -> list[str]:
        """Connect once; raise on failure. Returns the managed accounts."""
        # readonly: with no trading authority the session need not even be able to trade
        await self.ib.connectAsync(self.host, self.port, clientId=self.client_id,
                                   timeout=self.connect_timeout, readonly=not self.trading_authorized)
        return list(self.ib.managedAccounts())

    async def connect_with_backoff(self, attempts: int | None = None, first_delay: float = 1.0,
                                   max_delay: float = 30.0) -> list[str]:
        """Retry `connect` with capped exponential backoff; `attempts=None` retries forever."""
        delay, attempt = first_delay, 0
        while True:
            attempt += 1
            try:
                return await self.connect()
            except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
                self.ib.disconnect()
                if attempts is not None and attempt >= attempts:
                    raise ConnectionError(
                        f"cannot connect to the Gateway at {self.host}:{self.port} as client "
                        f"{self.client_id} after {attempt} attempt(s): {type(exc).__name__}: {exc}") from None
                log.warning("Gateway connection attempt %d failed (%s: %s); retrying in %.1f s",
                            attempt, type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    def is_connected(self) -> bool:
        return self.ib.isConnected()

    def disconnect(self) -> None:
        self.ib.disconnect()

    def place_order(self, contract: Any, order: Any) -> Any:
        """The only way an order leaves the bot: refused without trading authority."""
        if not self.trading_authorized:
            self.orders_refused += 1
            log.error("Order REFUSED (no trading authority under the gameplan in force): %s %s",
                      getattr(order, "action", "?"), getattr(contract, "symbol", contract))
            raise TradingDisabled("trading is disabled by the gameplan in force (Strategy C or zero size)")
        return self.ib.placeOrder(contract, order)
