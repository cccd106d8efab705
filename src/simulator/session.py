"""What a logged-in Gateway answers on one API connection (no I/O here).

A ``Session`` turns the client's request frames into reply frames: the greeting
after startApi, and an empty result plus the end message for each start-up
request ib_async's ``IB.connect()`` waits on. Request layouts follow ib_async
2.1.0's client.py: message id first, then a version field for older messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import protocol

START_API = 71

# Notices a healthy Gateway sends after startApi (all reqId -1).
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)

# A fresh paper Gateway hands out order ids from 1.
NEXT_ORDER_ID = 1

CLIENT_ID_IN_USE = 326
CLIENT_ID_IN_USE_TEXT = (
    "Unable to connect as the client id is already in use. Retry with a unique client id."
)


def client_id_in_use(version: int) -> bytes:
    """Error 326, sent before the Gateway closes the connection."""
    return protocol.error(version, -1, CLIENT_ID_IN_USE, CLIENT_ID_IN_USE_TEXT)


class Session:
    """Request/reply state of one API client after a successful startApi."""

    def __init__(self, version: int, accounts: Sequence[str]):
        self.version = version
        self.accounts = tuple(accounts)
        self._handlers: dict[int, Callable[[list[str]], list[bytes]]] = {
            5: lambda f: [protocol.open_order_end()],  # reqOpenOrders
            6: self._account_updates,  # reqAccountUpdates
            7: lambda f: [protocol.exec_details_end(f[2])],  # reqExecutions
            8: lambda f: [protocol.next_valid_id(NEXT_ORDER_ID)],  # reqIds
            16: lambda f: [protocol.open_order_end()],  # reqAllOpenOrders
            17: lambda f: [protocol.managed_accounts(self.accounts)],  # reqManagedAccts
            49: lambda f: [protocol.current_time()],  # reqCurrentTime
            61: lambda f: [protocol.position_end()],  # reqPositions
            62: lambda f: [protocol.account_summary_end(f[2])],  # reqAccountSummary
            74: lambda f: [protocol.position_multi_end(f[2])],  # reqPositionsMulti
            76: lambda f: [protocol.account_update_multi_end(f[2])],  # reqAccountUpdatesMulti
            99: lambda f: [protocol.completed_orders_end()],  # reqCompletedOrders
        }

    def greeting(self) -> list[bytes]:
        """managedAccounts, nextValidId and the farm notices, as after a real startApi."""
        return [
            protocol.managed_accounts(self.accounts),
            protocol.next_valid_id(NEXT_ORDER_ID),
            *(protocol.error(self.version, -1, code, text) for code, text in FARM_NOTICES),
        ]

    def reply(self, fields: list[str]) -> list[bytes] | None:
        """Reply frames for a request, or None if the request is not simulated."""
        handler = self._handlers.get(int(fields[0]))
        return handler(fields) if handler else None

    def _account_updates(self, fields: list[str]) -> list[bytes]:
        """reqAccountUpdates (6, 2, subscribe, account): subscribing ends with accountDownloadEnd."""
        subscribe, account = fields[2], fields[3]
        if subscribe != "1":
            return []
        return [protocol.account_download_end(account or next(iter(self.accounts), ""))]
