"""An asyncio TCP server that behaves like IB Gateway under IBC before and after login.

Before login it refuses, accepts-and-closes (socat in front of a Gateway that is
not listening yet) or accepts-and-stays-silent; after login it serves the TWS
API text protocol (see ``session.py``) or misbehaves as ``mode`` says. How the
login ends (``login_outcome``: a second-factor approval, a 2FA timeout, rejected
credentials, an existing session) is told in IBC's own log lines, IBC 3.24.1's
texts (IbcAlpha/IBC: LoginManager, TwsListener, AbstractLoginHandler, Utils,
ExistingSessionDetectedDialogHandler; resources/scripts/ibcstart.sh), because
that log is all an orchestrator can read; ``tests/fixtures/ibc/`` holds the same
texts as IBC prints them and the tests hold the two together. Runs in a caller's
event loop (``serve``) or in a background thread (``start``/``stop``) for
synchronous test code.

Runtime faults, callable from any thread while it serves (each returns once in
effect): ``freeze``/``unfreeze`` (a hung Gateway: sockets open, nothing answered),
``connectivity_lost``/``connectivity_restored`` (1100, then 1102 or 1101: the API
keeps serving what the Gateway knows itself, requests for IB's servers wait),
``farm_broken``/``farm_ok`` (2103/2105/2157, 2104/2106/2158), ``drop_clients``
(every API connection closed), ``close_api``/``open_api`` (connections closed on
accept, as socat does in front of a Gateway that is down). ``outage_after`` and
``outage_for`` run one of these as a timed outage after login. What reached the
Gateway: ``orders`` (every placeOrder, one INFO line each) and ``positions``.

For benchmarks, ``stream_ticks`` sends one connected client a market-data burst:
numbered tickPrice messages, as fast as its connection takes them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import ibc_commands, protocol
from .broker import Broker
from .market import FILL_POLICIES
from .session import (
    CONNECTIVITY_LOST,
    CONNECTIVITY_RESTORED,
    CONNECTIVITY_RESTORED_DATA_LOST,
    FARM_BROKEN_NOTICES,
    FARM_NOTICES,
    REQUEST_NAMES,
    START_API,
    Session,
    client_id_in_use,
)

BEFORE_LOGIN_BEHAVIOURS = ("refuse", "close", "silent")
MODES = ("ready", "silent", "no-accounts", "client-id-in-use")
LOGIN_OUTCOMES = ("ok", "2fa-then-ok", "2fa-timeout", "2fa-expired", "rejected", "existing-session", "unknown-dialog")
# A window an image update could bring that no rule of the orchestrator knows (issue 21: passkeys, "re-login")
UNKNOWN_DIALOG = "Passkey Sign-In Required"
# A timed outage after login: a hung Gateway, a Gateway whose API is down, or lost connectivity to IB.
OUTAGE_KINDS = ibc_commands.OUTAGE_KINDS
EXISTING_SESSION_ACTIONS = ("primary", "primaryoverride", "secondary", "manual")  # IBC's ExistingSessionDetectedAction
# IBC exits with 1111 (ErrorCodes.SECOND_FACTOR_AUTH_LOGIN_TIMED_OUT) when the login has not completed
# after the 2FA; an exit status has 8 bits, so the process, and the container, end with 1111 % 256 = 87.
TWOFA_TIMEOUT_EXIT = 87
# Utils.logError frames an error in lines of 79 '!' without a timestamp (Utils.java:113-115).
ERROR_BANNER = "!" * 79
DEFAULT_ACCOUNTS = ("DU123456", "DU234567")
STREAM_BATCH = 500  # ticks per write of a market-data burst (stream_ticks)

log = logging.getLogger(__name__)
#: ``extra`` for a line IBC's scripts print without a timestamp (see ``__main__``'s formatter)
RAW = {"raw": True}


class GatewaySimulator:
    """A fake IB Gateway on ``host``:``port`` (0 picks a free port, see ``.port``).

    It is "logging in" for ``login_delay`` seconds after it starts, behaving as
    ``before_login`` says; then the login ends as ``login_outcome`` says:

    * ``ok``: logged in at once;
    * ``2fa-then-ok``: a second-factor approval is pending for ``twofa_delay`` s, then logged in;
    * ``2fa-timeout``: pending for ``twofa_delay`` s, then the login stalls and IBC exits
      1111 (ReloginAfterSecondFactorAuthenticationTimeout=yes, TWOFA_TIMEOUT_ACTION=exit):
      ``serve`` returns and ``exit_code`` is 87;
    * ``2fa-expired``: pending for ``twofa_delay`` s, then the push expires; with IBC's default
      (no relogin) IBC only says so and stays up, never logged in;
    * ``rejected``: the "Unrecognized Username or Password" dialog, which IBC 3.24.1 does not
      handle: it stays, never logged in;
    * ``existing-session``: the "Existing session detected" dialog, left for a human
      (ExistingSessionDetectedAction=manual); never logged in;
    * ``unknown-dialog``: a dialog IBC reports and no rule knows (``UNKNOWN_DIALOG``); never logged in.

    Once logged in it serves clients as ``mode`` says (``stream_ticks`` adds a market-data
    burst to one client's session, for a benchmark). Orders fill as ``fills`` says
    (``immediate``, ``marketable`` or ``never``: see ``market.fill_price``), against
    accounts that may start with ``positions`` ({account: {symbol: shares}}). With
    ``outage_after``, ``outage_for`` seconds of ``outage_kind`` begin that many seconds
    after login: ``ib-lost`` sends 1100 and holds requests for IB's servers, then 1102;
    ``freeze`` sends 1100 and freezes, then unfreezes and sends 1102; ``closed`` sends
    1100 and closes every connection, closing new ones on accept, then serves again. An
    instance serves once.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        login_delay: float = 0.0,
        before_login: str = "close",
        mode: str = "ready",
        accounts: Sequence[str] = DEFAULT_ACCOUNTS,
        state_file: str | os.PathLike[str] | None = None,
        login_outcome: str = "ok",
        twofa_delay: float = 5.0,
        fills: str = "immediate",
        positions: Mapping[str, Mapping[str, float]] | None = None,
        outage_after: float | None = None,
        outage_for: float | None = None,
        outage_kind: str = "ib-lost",
        command_port: int | None = None,
        restart_delay: float = 3.0,
        withhold: Iterable[str] = (),
        read_only: bool = False,
        session_file: str | os.PathLike[str] | None = None,
        existing_session_action: str = "primary",
    ):
        if before_login not in BEFORE_LOGIN_BEHAVIOURS:
            raise ValueError(f"before_login must be one of {BEFORE_LOGIN_BEHAVIOURS}, not {before_login!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if login_outcome not in LOGIN_OUTCOMES:
            raise ValueError(f"login_outcome must be one of {LOGIN_OUTCOMES}, not {login_outcome!r}")
        if login_delay < 0 or twofa_delay < 0:
            raise ValueError("login_delay and twofa_delay must not be negative")
        if not 0 <= port <= 65535:  # getaddrinfo would quietly take 70000 as 4464
            raise ValueError(f"port must be 0..65535, not {port}")
        if fills not in FILL_POLICIES:
            raise ValueError(f"fills must be one of {FILL_POLICIES}, not {fills!r}")
        if outage_kind not in OUTAGE_KINDS:
            raise ValueError(f"outage_kind must be one of {OUTAGE_KINDS}, not {outage_kind!r}")
        if existing_session_action not in EXISTING_SESSION_ACTIONS:
            raise ValueError(f"existing_session_action must be one of {EXISTING_SESSION_ACTIONS}, "
                             f"not {existing_session_action!r}")
        if (outage_after is None) != (outage_for is None):
            raise ValueError("outage_after and outage_for go together: when the outage begins, how long it lasts")
        if (outage_after or 0) < 0 or (outage_for or 0) < 0:
            raise ValueError("outage_after and outage_for must not be negative")
        self.host = host
        self.port = port
        self.login_delay = login_delay
        self.before_login = before_login
        self.mode = mode
        self.accounts = tuple(accounts)
        self.state_file = state_file
        self.login_outcome = login_outcome
        self.twofa_delay = twofa_delay
        self.fills = fills
        self.outage_after = outage_after
        self.outage_for = outage_for
        self.outage_kind = outage_kind
        by_name = {name: msg_id for msg_id, name in REQUEST_NAMES.items()}
        unknown = [name for name in withhold if name not in by_name]
        if unknown:
            raise ValueError(f"withhold names requests: {', '.join(sorted(by_name))}; not {', '.join(unknown)}")
        self._withheld = frozenset(by_name[name] for name in withhold)  # requests never answered (a sync that hangs)
        self.read_only = read_only  # IBC's ReadOnlyApi=yes: every placeOrder answered with error 321
        # IBKR's side of a session: a file that exists from a completed login until a tidy STOP. A next login that
        # finds it meets "Existing session detected" (the slot a killed Gateway left held), handled as IBC's
        # ExistingSessionDetectedAction says (EXISTING_SESSION_DETECTED_ACTION). None: not simulated.
        self.session_file = session_file
        self.existing_session_action = existing_session_action
        self.command_port = command_port  # IBC's command server on 127.0.0.1 (None: off, IBC's default)
        self.restart_delay = restart_delay  # a RESTART keeps the API away this long
        self.soft_restarts = 0
        self._serving: asyncio.Event | None = None
        self.broker = Broker(self.accounts, fills, positions)
        self.exit_code: int | None = None  # set when the simulated IBC exits by itself
        self._login_started = time.monotonic()
        self._client_ids: set[int] = set()
        self._connections: set[asyncio.Task[None]] = set()
        self._conns: set[_Connection] = set()
        # Fault state, changed on the event loop only (see _call).
        self._frozen = False
        self._thawed = asyncio.Event()
        self._thawed.set()
        self._ib_connected = True
        self._farms_ok = True
        self._api_open = True
        self._loop_thread: int | None = None
        self._bound = threading.Event()
        self._logged_in = threading.Event()
        # Background-thread runner (start/stop).
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def withheld(self) -> frozenset[int]:
        """The message ids of requests this Gateway never answers (`withhold`)."""
        return self._withheld

    @property
    def logged_in(self) -> bool:
        return self._logged_in.is_set()

    def wait_logged_in(self, timeout: float | None = None) -> bool:
        """Block until login has completed; False if ``timeout`` passed first."""
        return self._logged_in.wait(timeout)

    # --- what reached the Gateway -------------------------------------------------------------

    @property
    def orders(self) -> list[dict[str, Any]]:
        """A copy of every placeOrder received, oldest first: client_id, order_id, perm_id, action,
        symbol, quantity, order_type, limit_price, aux_price, tif, account, parent_id, transmit,
        order_ref, modification, received_at; and the order's status, filled, avg_fill_price and
        error (the code of a rejection) as they are now."""
        return self.broker.records()

    def wait_for_orders(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """``orders`` once at least ``count`` have arrived, or as they are after ``timeout`` seconds."""
        return self.broker.wait_for_records(count, timeout)

    @property
    def positions(self) -> dict[str, dict[str, float]]:
        """Every non-zero position now: {account: {symbol: shares}} (negative when short)."""
        return self.broker.holdings()

    @property
    def client_ids(self) -> list[int]:
        """The client ids connected now."""
        return sorted(self._client_ids.copy())  # copy(): atomic while the loop thread changes the set

    @property
    def ib_connected(self) -> bool:
        return self._ib_connected

    def sessions(self) -> list[Session]:
        return [conn.session for conn in list(self._conns) if conn.session is not None]

    # --- runtime faults -----------------------------------------------------------------------

    def freeze(self) -> None:
        """A hung Gateway: connections stay open and new ones are accepted, nothing is read or answered."""
        self._call(self._freeze)

    def unfreeze(self) -> None:
        """Answer again: what was held is sent, what waited is read and answered, in order."""
        self._call(self._unfreeze)

    def connectivity_lost(self) -> None:
        """Error 1100 to every client. The API stays up and answers what the Gateway knows by itself
        (current time, accounts, ids, positions, open orders); requests for IB's servers (contract
        details, market data, history, orders and cancels) wait until ``connectivity_restored``."""
        self._call(self._connectivity_lost)

    def connectivity_restored(self, data_lost: bool = False) -> None:
        """1102 (1101 if ``data_lost``) to every client, then the waiting requests are answered."""
        self._call(lambda: self._connectivity_restored(data_lost))

    def farm_broken(self) -> None:
        """2103, 2105 and 2157 (market data, HMDS and sec-def farms broken) to every client; new clients
        get them instead of the OK notices. Notices only: requests are still answered."""
        self._call(lambda: self._set_farms(False))

    def farm_ok(self) -> None:
        """2104, 2106 and 2158 (the farms are OK) to every client."""
        self._call(lambda: self._set_farms(True))

    def drop_clients(self) -> None:
        """Close every API connection (as a Gateway restart does); new ones are served."""
        self._call(self._drop_clients)

    def close_api(self) -> None:
        """Close every API connection, and each new one as soon as it is accepted, until ``open_api``."""
        self._call(self._close_api)

    def open_api(self) -> None:
        self._call(self._open_api)

    # --- a market-data burst (benchmarks) -----------------------------------------------------

    def stream_ticks(self, client_id: int, count: int, req_id: int = 1) -> concurrent.futures.Future[int]:
        """Send the session of ``client_id`` ``count`` tick messages as fast as its connection takes them.

        Tick ``seq`` (1 to ``count``, in order) is a tickPrice for ``req_id`` (whether or not the client
        asked for market data), tick type 4 (last), price ``100.00 + (seq mod 1000) / 100`` and size
        ``seq``: the sizes let a client check that none was lost or reordered (see
        ``protocol.burst_ticks``). They are all built first, in the calling thread (about 25 bytes
        each), so that sending them is all the simulator's loop does: in chunks of ``STREAM_BATCH``
        frames, waiting between chunks until the socket's buffer has drained (while frozen they are
        held, like every frame). Callable from any thread while the simulator serves; returns, once
        they are built, a future of the count sent, done once the last tick has been handed to the
        socket, or failed with LookupError (no session has that client id) or ConnectionError (the
        connection closed first). On the simulator's own loop, await ``asyncio.wrap_future`` of it.
        Nothing else changes: no request starts a burst, and a simulator never asked for one never
        sends one.
        """
        if count < 0:
            raise ValueError(f"count must not be negative, not {count}")
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            raise RuntimeError("the simulator is not serving")
        frames = protocol.burst_ticks(req_id, 1, count)
        chunks = [b"".join(frames[i:i + STREAM_BATCH]) for i in range(0, count, STREAM_BATCH)]
        return asyncio.run_coroutine_threadsafe(self._stream_ticks(client_id, count, req_id, chunks), loop)

    async def _stream_ticks(self, client_id: int, count: int, req_id: int, chunks: list[bytes]) -> int:
        conn = next((c for c in list(self._conns) if c.session is not None and c.session.client_id == client_id),
                    None)
        if conn is None:
            raise LookupError(f"no API session with client id {client_id}")
        log.info("API: client %d: a burst of %d ticks (req id %d) begins", client_id, count, req_id)
        sent = 0
        for chunk in chunks:
            if conn.writer.is_closing():
                raise ConnectionError(f"client {client_id} closed its connection after {sent} of {count} ticks")
            conn.send([chunk])
            sent = min(count, sent + STREAM_BATCH)
            await conn.writer.drain()
        log.info("API: client %d: a burst of %d ticks (req id %d) sent", client_id, count, req_id)
        return sent

    async def serve(self, stop: asyncio.Event) -> None:
        """Bind, log in as ``login_outcome`` says, serve until ``stop`` is set (or IBC exits), close all."""
        if self.state_file:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.state_file)  # a stale file would announce a login that has not happened
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        sock = self._bind()
        server: asyncio.Server | None = None
        commands: asyncio.Server | None = None
        outage: asyncio.Task[None] | None = None
        self._serving = stop
        try:
            if self.command_port is not None:
                commands = await asyncio.start_server(self._on_command, host="127.0.0.1", port=self.command_port)
                log.info("IBC: CommandServer listening on 127.0.0.1:%d", self.command_port)
            if self.before_login != "refuse":
                server = await asyncio.start_server(self._on_connect, sock=sock)
            # Logged once the port behaves as before_login says, so readers may probe it at once.
            log.info(
                "IBC: Starting Gateway simulator on %s:%d"
                " (pid %d, login delay %gs, before login: %s, mode: %s, login outcome: %s)",
                self.host, self.port, os.getpid(),
                self.login_delay, self.before_login, self.mode, self.login_outcome,
            )
            log.info("IBC: Starting Gateway")  # IbcTws.java:472
            log.info("IBC: detected frame entitled: IBKR Gateway; event=Opened")  # TwsListener.java:146
            log.info("IBC: Login dialog WINDOW_OPENED: LoginState is LOGGED_OUT")  # AbstractLoginHandler.java:34
            log.info("IBC: Login attempt: 1")  # AbstractLoginHandler.java:83
            self._login_started = time.monotonic()
            self._bound.set()
            if not await _wait(stop, self.login_delay) and await self._authenticate(stop):
                if server is None:
                    server = await asyncio.start_server(self._on_connect, sock=sock)
                self._complete_login()
                if self.outage_after is not None:
                    outage = asyncio.ensure_future(self._outage(stop))
            if self.exit_code is None:
                await stop.wait()
        finally:
            if outage is not None:
                outage.cancel()
                await asyncio.gather(outage, return_exceptions=True)
            if commands is not None:
                commands.close()
            await self._close(server, sock)

    def start(self, timeout: float = 5.0) -> GatewaySimulator:
        """Serve in a background thread; return once the port is bound (listening unless ``refuse``)."""
        if self._thread is not None:
            raise RuntimeError("a GatewaySimulator serves only once")
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run_in_thread, name="gateway-simulator", daemon=True)
        self._thread.start()
        if not self._bound.wait(timeout):
            self.stop()
            raise TimeoutError("gateway simulator did not start")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background server, close its connections and wait for its thread."""
        if self._thread is None or not self._thread.is_alive() or self._loop is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("gateway simulator did not stop")

    def __enter__(self) -> GatewaySimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run_in_thread(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is None or stop is None:  # start() sets both before starting this thread
            return
        try:
            loop.run_until_complete(self.serve(stop))
        except Exception as exc:  # handed to start(), e.g. the port is taken
            self._error = exc
        finally:
            self._bound.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _bind(self) -> socket.socket:
        """Bind without listening: until ``listen()`` the port is taken, yet connecting is refused."""
        where = f"{protocol.clip(self.host, 64)}:{self.port}"
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
        except (OSError, OverflowError, UnicodeError) as exc:
            raise ListenError(f"cannot listen on {where}: {_reason(exc)}") from None
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.setblocking(False)
        except (OSError, OverflowError) as exc:
            sock.close()
            raise ListenError(f"cannot listen on {where}: {_reason(exc)}") from None
        except BaseException:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        return sock

    async def _authenticate(self, stop: asyncio.Event) -> bool:
        """Log IBC's lines for ``login_outcome``; True when the login completes."""
        outcome = self.login_outcome
        if self.session_file is not None and os.path.exists(self.session_file) and not self._existing_session():
            return False
        if outcome == "ok":
            return True
        if outcome == "rejected":
            log.info("IBC: detected dialog entitled: Unrecognized Username or Password; event=Opened")
            return False
        if outcome == "unknown-dialog":
            log.info("IBC: detected dialog entitled: %s; event=Opened", UNKNOWN_DIALOG)
            return False
        if outcome == "existing-session":  # ExistingSessionDetectedDialogHandler.java:58
            log.info("IBC: detected dialog entitled: Existing session detected; event=Opened")
            log.info("IBC: User must choose whether to continue with this session (scenario 1)")
            return False
        log.info("IBC: detected dialog entitled: Second Factor Authentication; event=Opened")
        log.info("IBC: Second Factor Authentication initiated")  # LoginManager.java:85
        if await _wait(stop, self.twofa_delay):
            return False
        # LoginManager.secondFactorAuthenticationDialogClosed: the seconds since the login began
        log.info("IBC: detected dialog entitled: Second Factor Authentication; event=Closed")
        log.info("IBC: Duration since login: %d seconds", time.monotonic() - self._login_started)
        if outcome == "2fa-then-ok":
            return True
        if outcome == "2fa-expired":
            log.info("IBC: Re-login after second factor authentication timeout not required")  # :144
            return False
        # LoginManager.java:138-139 and :176 (exit interval 0 here), Utils.java:94, ibcstart.sh:541, :573
        log.info("IBC: If login has not completed, IBC will exit in 0 seconds")
        log.info(ERROR_BANNER, extra=RAW)
        log.info("IBC: IBC closing because login has not completed after Second Factor Authentication")
        log.info(ERROR_BANNER, extra=RAW)
        log.info("IBC: Exiting after error with exit code=1111")
        log.info("IBC returned exit status %d", TWOFA_TIMEOUT_EXIT, extra=RAW)
        log.info("Gateway finished", extra=RAW)
        self.exit_code = TWOFA_TIMEOUT_EXIT
        return False

    def _existing_session(self) -> bool:
        """The session a Gateway stopped without a logout left held; True when this login goes on anyway.
        IBC's words: ExistingSessionDetectedDialogHandler.java."""
        log.info("IBC: detected dialog entitled: Existing session detected; event=Opened")
        action = self.existing_session_action
        if action in ("primary", "primaryoverride"):
            log.info("IBC: End the other session and continue this one")
            return True
        if action == "secondary":
            log.info("IBC: End this session and let the other session proceed")
        else:
            log.info("IBC: User must choose whether to continue with this session")
        return False

    def _complete_login(self) -> None:
        self._logged_in.set()
        if self.session_file is not None:
            with contextlib.suppress(OSError):
                Path(self.session_file).write_text(f"logged in at {time.time():.0f}\n")
        log.info("IBC: Login has completed")
        log.info("IBC: Configuration tasks completed")
        if self.state_file:
            _write_state_file(self.state_file, self.port)

    async def _close(self, server: asyncio.Server | None, sock: socket.socket) -> None:
        if server is None:
            sock.close()
        else:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        log.info("IBC: Gateway simulator stopped")

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One TCP connection, from accept to close; errors end this connection only, in one log line."""
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else "an unknown peer"
        conn = _Connection(self, writer)
        self._conns.add(conn)
        try:
            if not self.logged_in:
                await self._before_login(reader, peer)
            elif not self._api_open:
                log.info("API: connection from %s closed: the API is down (simulated outage)", peer)
            elif self.mode == "silent":
                log.info("API: connection from %s accepted, not answering (mode silent)", peer)
                await _drain(reader)
            else:
                await self._serve_api(reader, conn, peer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away; _serve_api has logged a registered client's departure
        except asyncio.CancelledError:
            pass  # stopping: end quietly (a cancelled task would be logged with a traceback by asyncio)
        except protocol.ProtocolError as exc:
            log.warning("API: connection from %s closed: not the TWS API protocol (%s)", peer, exc)
        except Exception as exc:  # one line, never a traceback: the next client is still served
            log.error("API: connection from %s closed: simulator error %s: %s", peer, type(exc).__name__,
                      protocol.clip(exc, 120))
        finally:
            self._connections.discard(task)
            self._conns.discard(conn)
            writer.close()

    async def _before_login(self, reader: asyncio.StreamReader, peer: str) -> None:
        if self.before_login == "close":
            log.info("API: connection from %s closed: not logged in yet", peer)
            return
        log.info("API: connection from %s accepted, not answering: not logged in yet", peer)
        await _drain(reader)

    async def _serve_api(self, reader: asyncio.StreamReader, conn: _Connection, peer: str) -> None:
        """Handshake, startApi, then request/reply until the client leaves; frozen, nothing moves."""
        writer = conn.writer
        client_min, client_max = await protocol.read_version_range(reader)
        version = protocol.negotiate_version(client_min, client_max)
        if version is None:
            raise protocol.ProtocolError(
                f"client versions v{client_min}..{client_max} outside"
                f" {protocol.MIN_CLIENT_VERSION}..{protocol.SERVER_VERSION}"
            )
        await self._thawed.wait()
        conn.send([protocol.version_reply(version)])
        client_id = await _read_start_api(reader)
        await self._thawed.wait()
        if self.mode == "client-id-in-use" or client_id in self._client_ids:
            log.info("API: client %d from %s rejected: client id already in use (error 326)", client_id, peer)
            conn.send([client_id_in_use(version)])
            await writer.drain()
            return
        self._client_ids.add(client_id)
        log.info("API: client %d connected from %s (server version %d)", client_id, peer, version)
        try:
            accounts = () if self.mode == "no-accounts" else self.accounts
            session = Session(version, accounts, client_id, self, conn.send)
            conn.session = session
            conn.send(session.greeting(self._notices()))
            await writer.drain()
            while True:
                fields = await protocol.read_fields(reader)
                await self._thawed.wait()
                session.handle(fields)
                await writer.drain()
        finally:
            self._client_ids.discard(client_id)
            log.info("API: client %d disconnected", client_id)

    # --- faults, on the event loop ------------------------------------------------------------

    def _call(self, action: Callable[[], None], timeout: float = 5.0) -> None:
        """Run ``action`` on the serving loop and wait for it (at once when on that loop, or not serving)."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running() or threading.get_ident() == self._loop_thread:
            action()
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                action()
            except BaseException as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)

        loop.call_soon_threadsafe(run)
        done.result(timeout)

    def _notices(self) -> list[tuple[int, str]]:
        """The notices a new client gets after its greeting, as things stand."""
        notices = list(FARM_NOTICES if self._farms_ok else FARM_BROKEN_NOTICES)
        return notices if self._ib_connected else [CONNECTIVITY_LOST, *notices]

    def _broadcast(self, notices: Iterable[tuple[int, str]]) -> int:
        sessions = self.sessions()
        for session in sessions:
            for code, text in notices:
                session.error(-1, code, text)
        return len(sessions)

    def _freeze(self) -> None:
        self._frozen = True
        self._thawed.clear()
        log.info("API: frozen: %d connections stay open, nothing is answered", len(self._conns))

    def _unfreeze(self) -> None:
        self._frozen = False
        self._thawed.set()
        for conn in list(self._conns):
            conn.flush()
        log.info("API: unfrozen: answering again")

    def _connectivity_lost(self) -> None:
        self._ib_connected = False
        count = self._broadcast([CONNECTIVITY_LOST])
        log.info("API: connectivity to IB lost: error 1100 sent to %d clients", count)

    def _connectivity_restored(self, data_lost: bool) -> None:
        self._ib_connected = True
        notice = CONNECTIVITY_RESTORED_DATA_LOST if data_lost else CONNECTIVITY_RESTORED
        count = self._broadcast([notice])
        log.info("API: connectivity to IB restored: %d sent to %d clients", notice[0], count)
        for session in self.sessions():
            session.resume()

    def _set_farms(self, ok: bool) -> None:
        self._farms_ok = ok
        notices = FARM_NOTICES if ok else FARM_BROKEN_NOTICES
        count = self._broadcast(notices)
        log.info("API: data farms %s: %s sent to %d clients", "OK" if ok else "broken",
                 "/".join(str(code) for code, _ in notices), count)

    def _drop_clients(self) -> None:
        conns = list(self._conns)
        for conn in conns:
            conn.flush()
            conn.writer.close()
        log.info("API: %d connections dropped", len(conns))

    def _close_api(self) -> None:
        self._api_open = False
        log.info("API: closed: connections are closed on accept")
        self._drop_clients()

    def _open_api(self) -> None:
        self._api_open = True
        log.info("API: open again")

    async def _on_command(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """IBC's command channel: lines in, IBC's answers out (ibc_commands.answer), until EXIT or EOF."""
        try:
            while line := await reader.readline():
                said = ibc_commands.answer(line[:200].decode("utf-8", "replace"))
                for text in said.logs:
                    log.info("%s", text)
                if said.reply is not None:
                    writer.write(said.reply.encode() + b"\n")
                    await writer.drain()
                if said.action == ibc_commands.CLOSE:
                    break
                if said.action == ibc_commands.RESTART:
                    asyncio.ensure_future(self._soft_restart())
                elif said.action == ibc_commands.STOP:
                    self.exit_code = 0
                    if self.session_file is not None:  # a logout: IBKR's slot is free for the next login
                        with contextlib.suppress(OSError):
                            os.unlink(self.session_file)
                    if self._serving is not None:
                        self._serving.set()
                elif said.action == ibc_commands.RECONNECT and not self._ib_connected:
                    self._connectivity_restored(data_lost=False)
                elif said.action == ibc_commands.OUTAGE and said.outage is not None:
                    asyncio.ensure_future(self._run_outage(*said.outage))
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop already closed (the simulator stopped first)
                writer.close()

    async def _soft_restart(self) -> None:
        """The Gateway's own restart: the API away for ``restart_delay`` s, then back, logged in (no 2FA)."""
        self.soft_restarts += 1
        self._close_api()
        if self._frozen:
            self._unfreeze()
        await asyncio.sleep(self.restart_delay)
        self._ib_connected = True
        self._open_api()
        log.info("IBC: Login has completed")  # the session was kept: no second factor

    async def _outage(self, stop: asyncio.Event) -> None:
        """The timed outage of ``outage_kind``, ``outage_after`` s after login, for ``outage_for`` s."""
        if self.outage_after is None or self.outage_for is None or await _wait(stop, self.outage_after):
            return
        await self._run_outage(self.outage_kind, self.outage_for, stop)

    async def _run_outage(self, kind: str, seconds: float, stop: asyncio.Event | None = None) -> None:
        """An outage of `kind` for `seconds`, from now (the timed one, or the command server's SIMOUTAGE)."""
        log.info("API: simulated outage (%s) for %gs begins", kind, seconds)
        self._connectivity_lost()
        if kind == "freeze":
            self._freeze()
        elif kind == "closed":
            self._close_api()
        if stop is None:
            await asyncio.sleep(seconds)
        elif await _wait(stop, seconds):
            return
        if kind == "freeze":
            self._unfreeze()
        elif kind == "closed":
            self._open_api()
        self._connectivity_restored(data_lost=False)
        log.info("API: simulated outage (%s) ends", kind)


class ListenError(OSError):
    """The simulator cannot listen where it was told to (the port is taken, the host unknown...)."""


class _Connection:
    """One accepted connection: its writer, and the frames held while the simulator is frozen."""

    def __init__(self, simulator: GatewaySimulator, writer: asyncio.StreamWriter):
        self.simulator = simulator
        self.writer = writer
        self.session: Session | None = None
        self._held: list[bytes] = []

    def send(self, frames: Iterable[bytes]) -> None:
        if self.simulator._frozen:
            self._held.extend(frames)
        elif not self.writer.is_closing():
            self.writer.writelines(frames)

    def flush(self) -> None:
        held, self._held = self._held, []
        if held and not self.writer.is_closing():
            self.writer.writelines(held)


def _reason(exc: BaseException) -> str:
    """An OS error's reason without its arguments: ``address already in use``."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return protocol.clip(exc, 80)


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """True if ``event`` is set within ``timeout`` seconds."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


async def _drain(reader: asyncio.StreamReader) -> None:
    """Read and discard until the peer closes: a connection that never answers."""
    while await reader.read(65536):
        pass


async def _read_start_api(reader: asyncio.StreamReader) -> int:
    """Wait for startApi (71, 2, clientId, optionalCapabilities) and return its client id."""
    while True:
        fields = await protocol.read_fields(reader)
        if fields[:1] == [str(START_API)]:
            text = fields[2] if len(fields) > 2 else ""
            if not (text.lstrip("-").isdigit() and len(text) <= 11):
                raise protocol.ProtocolError(f"startApi without a client id ({protocol.clip(text, 20)!r})")
            return int(text)
        log.debug("API: ignoring %s before startApi", protocol.clip(",".join(fields), 60))


def _write_state_file(path: str | os.PathLike[str], port: int) -> None:
    """Record the login time atomically (temp file + os.replace) for a benchmark to read."""
    state = {"logged_in_at": time.time(), "port": port, "pid": os.getpid()}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(state, file)
    os.replace(temporary, path)
