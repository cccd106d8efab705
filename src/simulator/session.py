"""What a logged-in Gateway answers on one API connection (no I/O here).

A ``Session`` turns the client's request frames into reply frames, sent through the
``send`` callable it is given: the greeting after startApi; the start-up requests
ib_async's ``IB.connect()`` waits on; contract details, snapshot or streaming market
data and historical bars from ``market.py``; orders, cancels, executions and
positions kept in the simulator's shared ``Broker``. Any other request is
answered with an error naming it (code ``NOT_SIMULATED``), never dropped, so a
client never waits for an answer that cannot come. Request layouts follow ib_async
2.1.0's client.py: message id first, then a version field for older messages.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from . import market, protocol
from .broker import Broker, Order

START_API = 71

log = logging.getLogger(__name__)

# (farm, what it serves, OK code, broken code): the notices a Gateway sends about its farms.
FARMS = (
    ("usfarm", "Market data", 2104, 2103),
    ("ushmds", "HMDS data", 2106, 2105),
    ("secdefnj", "Sec-def data", 2158, 2157),
)
# Notices a healthy Gateway sends after startApi (all reqId -1).
FARM_NOTICES = tuple((ok, f"{kind} farm connection is OK:{farm}") for farm, kind, ok, _ in FARMS)
FARM_BROKEN_NOTICES = tuple((bad, f"{kind} farm connection is broken:{farm}") for farm, kind, _, bad in FARMS)
READ_ONLY = 321  # the Gateway's answer to an order while its API is read-only (IBC's ReadOnlyApi=yes)
READ_ONLY_TEXT = "Error validating request.-'bN' : cause - The API interface is currently in Read-Only mode."
CONNECTIVITY_LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")
CONNECTIVITY_RESTORED_DATA_LOST = (
    1101, "Connectivity between IB and Trader Workstation has been restored - data lost.")
CONNECTIVITY_RESTORED = (
    1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.")

# A fresh paper Gateway hands out order ids from 1.
NEXT_ORDER_ID = 1

CLIENT_ID_IN_USE = 326
CLIENT_ID_IN_USE_TEXT = (
    "Unable to connect as the client id is already in use. Retry with a unique client id."
)
NO_SECURITY_DEFINITION = 200
NO_SECURITY_DEFINITION_TEXT = "No security definition has been found for the request"
ORDER_REJECTED = 201
ORDER_CANCELLED = 202
DUPLICATE_ORDER_ID = 103
HISTORICAL_DATA_ERROR = 162
READ_ERROR = 320  # TWS: "Server error when reading an API client request."
# The TWS API's own code for "the other side does not support this request" (UPDATE_TWS); no
# client counts it as a warning, so a request that waits for an answer ends at once.
NOT_SIMULATED = 503
CANCEL_NOT_FOUND = 10147
CANCEL_NOT_POSSIBLE = 10148

# Every request id ib_async 2.1.0 sends, by name (for logs and errors).
REQUEST_NAMES = {
    1: "reqMktData", 2: "cancelMktData", 3: "placeOrder", 4: "cancelOrder", 5: "reqOpenOrders",
    6: "reqAccountUpdates", 7: "reqExecutions", 8: "reqIds", 9: "reqContractDetails", 10: "reqMktDepth",
    11: "cancelMktDepth", 12: "reqNewsBulletins", 13: "cancelNewsBulletins", 14: "setServerLogLevel",
    15: "reqAutoOpenOrders", 16: "reqAllOpenOrders", 17: "reqManagedAccts", 18: "requestFA", 19: "replaceFA",
    20: "reqHistoricalData", 21: "exerciseOptions", 22: "reqScannerSubscription", 23: "cancelScannerSubscription",
    24: "reqScannerParameters", 25: "cancelHistoricalData", 49: "reqCurrentTime", 50: "reqRealTimeBars",
    51: "cancelRealTimeBars", 52: "reqFundamentalData", 53: "cancelFundamentalData",
    54: "calculateImpliedVolatility", 55: "calculateOptionPrice", 56: "cancelCalculateImpliedVolatility",
    57: "cancelCalculateOptionPrice", 58: "reqGlobalCancel", 59: "reqMarketDataType", 61: "reqPositions",
    62: "reqAccountSummary", 63: "cancelAccountSummary", 64: "cancelPositions", 65: "verifyRequest",
    66: "verifyMessage", 67: "queryDisplayGroups", 68: "subscribeToGroupEvents", 69: "updateDisplayGroup",
    70: "unsubscribeFromGroupEvents", 71: "startApi", 72: "verifyAndAuthRequest", 73: "verifyAndAuthMessage",
    74: "reqPositionsMulti", 75: "cancelPositionsMulti", 76: "reqAccountUpdatesMulti",
    77: "cancelAccountUpdatesMulti", 78: "reqSecDefOptParams", 79: "reqSoftDollarTiers", 80: "reqFamilyCodes",
    81: "reqMatchingSymbols", 82: "reqMktDepthExchanges", 83: "reqSmartComponents", 84: "reqNewsArticle",
    85: "reqNewsProviders", 86: "reqHistoricalNews", 87: "reqHeadTimeStamp", 88: "reqHistogramData",
    89: "cancelHistogramData", 90: "cancelHeadTimeStamp", 91: "reqMarketRule", 92: "reqPnL", 93: "cancelPnL",
    94: "reqPnLSingle", 95: "cancelPnLSingle", 96: "reqHistoricalTicks", 97: "reqTickByTickData",
    98: "cancelTickByTickData", 99: "reqCompletedOrders", 100: "reqWshMetaData", 101: "cancelWshMetaData",
    102: "reqWshEventData", 103: "cancelWshEventData", 104: "reqUserInfo",
}
# Cancels and settings a real Gateway takes without answering.
SILENT = frozenset({2, 11, 13, 14, 15, 23, 25, 51, 53, 56, 57, 63, 70, 75, 77, 89, 90, 93, 95, 98, 101, 103})
# Where an unsimulated request carries its request id (the error echoes it); others get -1.
REQ_ID_FIELD = {10: 2, 19: 4, 21: 2, 22: 1, 50: 2, 52: 2, 54: 2, 55: 2, 67: 2, 68: 2, 69: 2, 78: 1, 79: 1, 81: 1,
                83: 1, 84: 1, 86: 1, 87: 1, 88: 1, 92: 1, 94: 1, 96: 1, 97: 1, 100: 1, 102: 1, 104: 1}
# Requests a real Gateway must pass on to IB's servers: while its connectivity to IB is lost
# they are not answered (held here until it is restored).
NEEDS_IB = frozenset({1, 3, 4, 9, 20, 58})

# Tick types: (bid, ask, last, high, low, close, open, bid size, ask size, last size, volume, last time)
LIVE_TICKS = (1, 2, 4, 6, 7, 9, 14, 0, 3, 5, 8, 45)
DELAYED_TICKS = (66, 67, 68, 72, 73, 75, 76, 69, 70, 71, 74, 88)


def client_id_in_use(version: int) -> bytes:
    """Error 326, sent before the Gateway closes the connection."""
    return protocol.error(version, -1, CLIENT_ID_IN_USE, CLIENT_ID_IN_USE_TEXT)


def request_name(msg_id: int) -> str:
    return f"{REQUEST_NAMES.get(msg_id, 'an unknown request')} (message {msg_id})"


class Hub(Protocol):
    """What a session needs from the simulator around it."""

    broker: Broker

    @property
    def ib_connected(self) -> bool: ...

    def sessions(self) -> Iterable[Session]: ...

    @property
    def withheld(self) -> frozenset[int]: ...

    @property
    def read_only(self) -> bool: ...


class MalformedRequest(ValueError):
    """A request whose fields do not parse."""


class Session:
    """Request/reply state of one API client after a successful startApi."""

    def __init__(self, version: int, accounts: Sequence[str], client_id: int = 0, hub: Hub | None = None,
                 send: Callable[[Sequence[bytes]], None] | None = None):
        self.version = version
        self.accounts = tuple(accounts)
        self.client_id = client_id
        self.hub = hub
        self.broker = hub.broker if hub is not None else Broker(self.accounts)
        self._send = send or (lambda frames: None)
        self.positions_subscribed = False
        self.account_updates: str | None = None
        self.market_data_type: int | None = None  # set by reqMarketDataType
        self._parked: list[Callable[[], None]] = []
        self._handlers: dict[int, Callable[[list[str]], None]] = {
            1: self._market_data,
            3: self._place_order,
            4: self._cancel_order,
            5: lambda f: self._open_orders(self.client_id),  # reqOpenOrders
            6: self._account_updates,
            7: self._executions,
            8: lambda f: self.send(protocol.next_valid_id(self.next_order_id)),  # reqIds
            9: self._contract_details,
            16: lambda f: self._open_orders(None),  # reqAllOpenOrders
            17: lambda f: self.send(protocol.managed_accounts(self.accounts)),  # reqManagedAccts
            20: self._historical_data,
            49: lambda f: self.send(protocol.current_time()),  # reqCurrentTime
            58: self._global_cancel,
            59: self._set_market_data_type,
            61: self._positions,
            62: lambda f: self.send(protocol.account_summary_end(f[2])),  # reqAccountSummary: no values
            64: self._cancel_positions,
            74: lambda f: self.send(protocol.position_multi_end(f[2])),  # reqPositionsMulti
            76: lambda f: self.send(protocol.account_update_multi_end(f[2])),  # reqAccountUpdatesMulti
            99: lambda f: self.send(protocol.completed_orders_end()),  # reqCompletedOrders
        }

    # --- plumbing -----------------------------------------------------------------------------

    def send(self, *frames: bytes) -> None:
        self._send(frames)

    def error(self, req_id: int | str, code: int, text: str) -> None:
        self.send(protocol.error(self.version, req_id, code, text))

    @property
    def next_order_id(self) -> int:
        return max(NEXT_ORDER_ID, self.broker.next_order_id)

    def greeting(self, notices: Iterable[tuple[int, str]] = FARM_NOTICES) -> list[bytes]:
        """managedAccounts, nextValidId and the status notices, as after a real startApi."""
        return [
            protocol.managed_accounts(self.accounts),
            protocol.next_valid_id(self.next_order_id),
            *(protocol.error(self.version, -1, code, text) for code, text in notices),
        ]

    def reply(self, fields: list[str]) -> list[bytes]:
        """The frames ``handle`` sends for one request (for callers without a ``send``)."""
        sent: list[bytes] = []
        previous, self._send = self._send, sent.extend
        try:
            self.handle(fields)
        finally:
            self._send = previous
        return sent

    def handle(self, fields: list[str]) -> None:
        """Answer one request: with data, an end message, an error, or (for a cancel) nothing."""
        head = fields[0] if fields else ""
        if not (head.isdigit() and len(head) <= 4):
            log.info("API: client %d: unreadable request %s: answered with error %d",
                     self.client_id, protocol.clip(head, 20), READ_ERROR)
            self.error(-1, READ_ERROR, f"Error reading request: no message id in {protocol.clip(head, 20)!r}")
            return
        msg_id = int(head)
        if self.hub is not None and msg_id in self.hub.withheld:  # a Gateway that never answers this one
            log.info("API: client %d: %s withheld: never answered", self.client_id, request_name(msg_id))
            return
        if msg_id in NEEDS_IB and self.hub is not None and not self.hub.ib_connected:
            self._park(msg_id, fields)
            return
        self._dispatch(msg_id, fields)

    def _dispatch(self, msg_id: int, fields: list[str]) -> None:
        handler = self._handlers.get(msg_id)
        if handler is None:
            if msg_id not in SILENT:
                self._not_simulated(msg_id, fields)
            return
        log.debug("API: client %d: %s", self.client_id, request_name(msg_id))
        try:
            handler(fields)
        except (IndexError, ValueError):
            log.info("API: client %d: malformed %s (%d fields): answered with error %d",
                     self.client_id, request_name(msg_id), len(fields), READ_ERROR)
            self.error(-1, READ_ERROR, f"Error reading request: {request_name(msg_id)} is malformed")

    def _not_simulated(self, msg_id: int, fields: list[str]) -> None:
        index = REQ_ID_FIELD.get(msg_id)
        raw = fields[index] if index is not None and index < len(fields) else ""
        req_id = int(raw) if raw.lstrip("-").isdigit() and len(raw) < 12 else -1
        name = request_name(msg_id)
        log.info("API: client %d: %s is not simulated: answered with error %d", self.client_id, name,
                 NOT_SIMULATED)
        self.error(req_id, NOT_SIMULATED, f"The Gateway simulator does not implement {name}")

    def _park(self, msg_id: int, fields: list[str]) -> None:
        """Connectivity to IB is lost: keep the request for ``resume``; an order is still received."""
        if msg_id == 3:
            try:
                order = self._receive_order(fields)
            except (IndexError, ValueError):
                self._dispatch(msg_id, fields)  # malformed: answered now, as the Gateway reads it now
                return
            if order is not None:
                self._parked.append(lambda: self._work(order))
        else:
            self._parked.append(lambda: self._dispatch(msg_id, fields))
        log.info("API: client %d: %s waits: no connectivity to IB", self.client_id, request_name(msg_id))

    def resume(self) -> None:
        """Connectivity to IB is back: answer what waited, in the order it came."""
        parked, self._parked = self._parked, []
        for action in parked:
            action()

    # --- accounts and positions ---------------------------------------------------------------

    def _account_updates(self, fields: list[str]) -> None:
        """reqAccountUpdates (6, 2, subscribe, account): the portfolio, then accountDownloadEnd; later
        fills in that account update the portfolio. (No account values: none are simulated.)"""
        subscribe, account = fields[2], fields[3] or next(iter(self.accounts), "")
        if subscribe != "1":
            self.account_updates = None
            return
        self.account_updates = account
        self.send(*(protocol.update_portfolio(account, instrument, position)
                    for _, instrument, position in self.broker.positions(account) if position.quantity))
        self.send(protocol.account_download_end(account))

    def _positions(self, fields: list[str]) -> None:
        """reqPositions: every position now, positionEnd, then updates after each fill."""
        self.positions_subscribed = True
        self.send(*(protocol.position(account, instrument, position)
                    for account, instrument, position in self.broker.positions() if position.quantity))
        self.send(protocol.position_end())

    def _cancel_positions(self, fields: list[str]) -> None:
        self.positions_subscribed = False

    def position_changed(self, account: str, instrument: market.Instrument) -> None:
        """A fill moved a position: tell this client if it subscribed to it."""
        position = self.broker.position(account, instrument.symbol)
        if self.positions_subscribed:
            self.send(protocol.position(account, instrument, position))
        if self.account_updates == account:
            self.send(protocol.update_portfolio(account, instrument, position))

    # --- contracts and market data ------------------------------------------------------------

    def _contract_details(self, fields: list[str]) -> None:
        """reqContractDetails (9, 8, reqId, contract..., includeExpired, secIdType, secId[, issuerId])."""
        req_id = _req_id(fields[2])
        instrument = market.find(_contract(fields, 3))
        if instrument is None:
            self.error(req_id, NO_SECURITY_DEFINITION, NO_SECURITY_DEFINITION_TEXT)
            return
        hours = market.trading_hours(dt.datetime.now(dt.timezone.utc).date())
        self.send(protocol.contract_details(self.version, req_id, instrument, *hours),
                  protocol.contract_details_end(req_id))

    def _set_market_data_type(self, fields: list[str]) -> None:
        data_type = int(fields[2])
        if data_type not in (1, 2, 3, 4):
            raise ValueError(f"market data type {data_type}")
        self.market_data_type = data_type

    def _market_data(self, fields: list[str]) -> None:
        """reqMktData (1, 11, reqId, contract..., [legs], deltaNeutral, ticks, snapshot, regulatory, options):
        the synthetic quote at once; a snapshot ends with tickSnapshotEnd, a stream stays quiet."""
        req_id = _req_id(fields[2])
        contract, rest = _contract(fields, 3), fields[15:]
        if contract[2].upper() == "BAG":
            rest = rest[1 + 4 * int(rest[0]):]
        if rest[0] == "1":  # a delta-neutral contract: conId, delta, price
            rest = rest[3:]
        rest = rest[1:]
        snapshot = rest[1] == "1" or rest[2] == "1"
        instrument = market.find(contract)
        if instrument is None:
            self.error(req_id, NO_SECURITY_DEFINITION, NO_SECURITY_DEFINITION_TEXT)
            return
        q = market.quote(instrument)
        delayed = self.market_data_type in (3, 4)
        bid, ask, last, high, low, close, open_, bid_size, ask_size, last_size, volume, stamp = (
            DELAYED_TICKS if delayed else LIVE_TICKS)
        frames = [protocol.tick_req_params(req_id, market.TICK)]
        if self.market_data_type is not None:
            frames.append(protocol.market_data_type(req_id, self.market_data_type))
        frames += [
            protocol.tick_price(req_id, bid, q.bid, q.bid_size), protocol.tick_size(req_id, bid_size, q.bid_size),
            protocol.tick_price(req_id, ask, q.ask, q.ask_size), protocol.tick_size(req_id, ask_size, q.ask_size),
            protocol.tick_price(req_id, last, q.last, q.last_size),
            protocol.tick_size(req_id, last_size, q.last_size),
            protocol.tick_size(req_id, volume, q.volume),
            protocol.tick_price(req_id, high, q.high), protocol.tick_price(req_id, low, q.low),
            protocol.tick_price(req_id, close, q.close), protocol.tick_price(req_id, open_, q.open),
            protocol.tick_string(req_id, stamp, str(int(time.time()))),
        ]
        if snapshot:
            frames.append(protocol.tick_snapshot_end(req_id))
        self.send(*frames)

    def _historical_data(self, fields: list[str]) -> None:
        """reqHistoricalData (20, reqId, contract..., includeExpired, end, barSize, duration, useRTH,
        whatToShow, formatDate, ...): synthetic bars, or error 162 saying what is wrong."""
        req_id = _req_id(fields[1])
        instrument = market.find(_contract(fields, 2))
        if instrument is None:
            self.error(req_id, NO_SECURITY_DEFINITION, NO_SECURITY_DEFINITION_TEXT)
            return
        end_text, bar_size, duration, what_to_show = fields[15], fields[16], fields[17], fields[19]
        format_date = 2 if fields[20] == "2" else 1
        try:
            end = market.parse_end(end_text, dt.datetime.now(dt.timezone.utc))
            start, finish, bars = market.bars(instrument, end, duration, bar_size, what_to_show, format_date)
        except market.HistoricalError as exc:
            self.error(req_id, HISTORICAL_DATA_ERROR, f"Historical Market Data Service error message:{exc}")
            return
        self.send(protocol.historical_data(req_id, start, finish, bars))

    # --- orders -------------------------------------------------------------------------------

    def _place_order(self, fields: list[str]) -> None:
        if self.hub is not None and self.hub.read_only:  # IBC's ReadOnlyApi=yes: every order is refused
            raw = fields[1] if len(fields) > 1 else ""
            order_id = int(raw) if raw.isdigit() and len(raw) < 12 else -1
            log.info("API: client %d: order %s refused: the API is read-only (error %d)", self.client_id,
                     protocol.clip(raw, 20), READ_ONLY)
            self.error(order_id, READ_ONLY, READ_ONLY_TEXT)
            return
        order = self._receive_order(fields)
        if order is not None:
            self._work(order)

    def _receive_order(self, fields: list[str]) -> Order | None:
        """Record and log a placeOrder; the order to work, or None (rejected, or not transmitted)."""
        order_id = int(fields[1])
        if _what_if(fields, self.version):  # a margin query (ib.whatIfOrder), not an order: never filled
            log.info("API: WHATIF received: client %d order %d: not simulated, answered with error %d",
                     self.client_id, order_id, NOT_SIMULATED)
            self.error(order_id, NOT_SIMULATED, "The Gateway simulator does not implement what-if orders")
            return None
        contract = _contract(fields, 2)
        action, quantity_text, order_type = fields[16].upper(), fields[17], fields[18].upper()
        number = protocol.parse_number
        quantity, limit, aux = number(quantity_text), number(fields[19]), number(fields[20])
        account, transmit, parent_id = fields[23] or self.accounts[0], fields[27] != "0", int(fields[28] or 0)
        received = {
            "client_id": self.client_id, "order_id": order_id, "action": protocol.clip(action, 12),
            "symbol": protocol.clip(contract[1], 24), "quantity": quantity, "order_type": protocol.clip(order_type, 16),
            "limit_price": limit, "aux_price": aux, "tif": protocol.clip(fields[21], 8),
            "account": protocol.clip(account, 24), "parent_id": parent_id, "transmit": transmit,
            "order_ref": protocol.clip(fields[26], 40), "received_at": time.time(),
        }
        shown_quantity = protocol.clip(quantity_text, 16) if quantity is None else protocol.number(quantity)
        log.info("API: ORDER received: client %d order %d %s %s %s %s%s%s", self.client_id, order_id,
                 received["action"], shown_quantity, received["symbol"], received["order_type"],
                 "" if limit is None else f" limit {protocol.number(limit)}",
                 "" if aux is None else f" aux {protocol.number(aux)}")
        instrument = market.find(contract)
        order, kind = self.broker.receive(Order(
            self.client_id, order_id, account, contract[1][:24], action, quantity or 0.0, order_type, limit, aux,
            fields[21][:8], parent_id, transmit, fields[26][:40], instrument), received)
        if kind == "duplicate":
            self._reject(order, DUPLICATE_ORDER_ID, "Duplicate order id", kind)
            return None
        if instrument is None:
            self._reject(order, NO_SECURITY_DEFINITION, NO_SECURITY_DEFINITION_TEXT, kind)
            return None
        problem = (
            "the action must be BUY or SELL" if action not in ("BUY", "SELL")
            else "the order size must be positive" if quantity is None or quantity <= 0
            else f"account {protocol.clip(account, 24)} is not managed by this login"
            if account not in self.accounts
            else f"order type {protocol.clip(order_type, 16)} is not simulated"
            if order_type not in market.ORDER_TYPES_ACCEPTED
            else None
        )
        if problem:
            self._reject(order, ORDER_REJECTED, f"Order rejected - reason:{problem}", kind)
            return None
        if not order.transmit:
            log.info("API: ORDER %d of client %d held: not transmitted (transmit=False)", order_id, self.client_id)
            return None
        return order

    def _reject(self, order: Order, code: int, text: str, kind: str) -> None:
        if kind == "new":  # a failed modification leaves the live order as it was
            self.broker.set_status(order, "Rejected", code)
        log.info("API: ORDER %d of client %d rejected: error %d %s", order.order_id, self.client_id, code, text)
        self.error(order.order_id, code, text)

    def _work(self, order: Order) -> None:
        """Transmit an order (and the held parent and siblings it transmits), fill what fills."""
        if order.parent_id:
            parent = self.broker.find(self.client_id, order.parent_id)
            if parent is not None and parent.status == "PendingSubmit":
                self._activate(parent)
                for sibling in self.broker.children(parent):
                    if sibling is not order and sibling.status == "PendingSubmit" and sibling.error is None:
                        self._activate(sibling)
        self._activate(order)

    def _activate(self, order: Order) -> None:
        if order.instrument is None:  # only validated orders are worked
            return
        parent = self.broker.find(self.client_id, order.parent_id) if order.parent_id else None
        price = None
        if parent is not None and parent.status != "Filled":
            status = "PreSubmitted"  # a bracket's child waits for its parent
        else:
            status = "Submitted"
            if not order.parent_id:  # an exit of a filled parent rests: the synthetic price never moves
                price = market.fill_price(order.instrument, order.buy, order.order_type, order.limit, order.aux,
                                          self.broker.fill_policy)
        self.broker.set_status(order, status)
        self.send(protocol.open_order(self.version, order), protocol.order_status(order))
        if price is None:
            return
        execution = self.broker.fill(order, price)
        self.send(protocol.exec_details(self.version, -1, execution), protocol.order_status(order),
                  protocol.open_order(self.version, order), protocol.commission_report(execution))
        log.info("API: ORDER %d of client %d filled: %s %s %s at %s", order.order_id, self.client_id, order.action,
                 protocol.number(order.quantity), order.instrument.symbol, protocol.number(price))
        for session in self.hub.sessions() if self.hub is not None else (self,):
            session.position_changed(order.account, order.instrument)
        for child in self.broker.children(order):
            if child.status == "PreSubmitted":
                self.broker.set_status(child, "Submitted")
                self.send(protocol.open_order(self.version, child), protocol.order_status(child))

    def _cancel_order(self, fields: list[str]) -> None:
        """cancelOrder (4, 1, orderId[, manualCancelOrderTime]): Cancelled and error 202, or 10147/10148."""
        order_id = int(fields[2])
        order = self.broker.find(self.client_id, order_id)
        if order is None:
            outcome = "not found"
            self.error(order_id, CANCEL_NOT_FOUND, f"OrderId {order_id} that needs to be cancelled is not found.")
        elif order.done:
            outcome = f"already {order.status}"
            self.error(order_id, CANCEL_NOT_POSSIBLE,
                       f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {order.status}.")
        else:
            outcome = "cancelled"
            self.cancel(order)
        log.info("API: CANCEL received: client %d order %d: %s", self.client_id, order_id, outcome)

    def cancel(self, order: Order) -> None:
        """Cancel a live order of this client, and the bracket children it leaves behind."""
        self.broker.set_status(order, "Cancelled")
        self.send(protocol.order_status(order))
        self.error(order.order_id, ORDER_CANCELLED, "Order Canceled - reason:")
        for child in self.broker.children(order):
            if not child.done:
                self.cancel(child)

    def _global_cancel(self, fields: list[str]) -> None:
        """reqGlobalCancel: every live order of every client is cancelled, each owner told."""
        sessions = {s.client_id: s for s in self.hub.sessions()} if self.hub is not None else {}
        orders = self.broker.active()
        log.info("API: GLOBAL CANCEL received: client %d: %d live orders", self.client_id, len(orders))
        for order in orders:
            if not order.done:
                owner = sessions.get(order.client_id)
                if owner is not None:
                    owner.cancel(order)
                else:
                    self.broker.set_status(order, "Cancelled")

    def _open_orders(self, client_id: int | None) -> None:
        for order in self.broker.active(client_id):
            self.send(protocol.open_order(self.version, order), protocol.order_status(order))
        self.send(protocol.open_order_end())

    def _executions(self, fields: list[str]) -> None:
        """reqExecutions (7, 3, reqId, clientId, account, time, symbol, secType, exchange, side)."""
        req_id, client, account, symbol, side = fields[2], fields[3], fields[4], fields[6], fields[9]
        for execution in self.broker.executions():
            o = execution.order
            if ((client in ("", "0") or client == str(o.client_id)) and account in ("", o.account)
                    and symbol.upper() in ("", o.symbol) and side.upper() in ("", o.action)):
                self.send(protocol.exec_details(self.version, req_id, execution),
                          protocol.commission_report(execution))
        self.send(protocol.exec_details_end(req_id))


def _what_if(fields: list[str], version: int) -> bool:
    """placeOrder's whatIf flag, found past the optional groups before it (ib_async's client.py
    order); a combo (BAG) order is never in the universe, so its legs need not be skipped."""
    if fields[4].upper() == "BAG":
        return False
    i = 42 + (1 if version < protocol.MIN_VERSION_NO_FA_PROFILE else 0)  # modelCode
    i += 22  # deltaNeutralOrderType
    i += 2 + (8 if fields[i] else 0)  # continuousUpdate
    increment = protocol.parse_number(fields[i + 6])
    i += 7 + (7 if increment is not None and increment > 0 else 0)  # scaleTable
    i += 4 + (1 if fields[i + 3] else 0)  # optOutSmartRouting
    i += 4
    i += 1 + (3 if fields[i] == "1" else 0)  # algoStrategy
    if fields[i]:
        i += 1 + 2 * int(fields[i + 1])
    return fields[i + 2] == "1"  # after algoId


def _contract(fields: list[str], start: int) -> list[str]:
    """The 12 contract fields at ``start`` (IndexError if the request is too short)."""
    contract = fields[start:start + 12]
    if len(contract) < 12:
        raise IndexError("contract")
    return contract


def _req_id(text: str) -> str:
    if not (text.lstrip("-").isdigit() and len(text) < 12):
        raise ValueError("request id")
    return text
