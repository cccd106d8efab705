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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence

from . import protocol
from .session import START_API, Session, client_id_in_use

BEFORE_LOGIN_BEHAVIOURS = ("refuse", "close", "silent")
MODES = ("ready", "silent", "no-accounts", "client-id-in-use")
LOGIN_OUTCOMES = ("ok", "2fa-then-ok", "2fa-timeout", "2fa-expired", "rejected", "existing-session")
# IBC exits with 1111 (ErrorCodes.SECOND_FACTOR_AUTH_LOGIN_TIMED_OUT) when the login has not completed
# after the 2FA; an exit status has 8 bits, so the process, and the container, end with 1111 % 256 = 87.
TWOFA_TIMEOUT_EXIT = 87
# Utils.logError frames an error in lines of 79 '!' without a timestamp (Utils.java:113-115).
ERROR_BANNER = "!" * 79
DEFAULT_ACCOUNTS = ("DU123456", "DU234567")

log = logging.getLogger("simulator")
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
      (ExistingSessionDetectedAction=manual); never logged in.

    Once logged in it serves clients as ``mode`` says. An instance serves once.
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
    ):
        if before_login not in BEFORE_LOGIN_BEHAVIOURS:
            raise ValueError(f"before_login must be one of {BEFORE_LOGIN_BEHAVIOURS}, not {before_login!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if login_outcome not in LOGIN_OUTCOMES:
            raise ValueError(f"login_outcome must be one of {LOGIN_OUTCOMES}, not {login_outcome!r}")
        if login_delay < 0 or twofa_delay < 0:
            raise ValueError("login_delay and twofa_delay must not be negative")
        self.host = host
        self.port = port
        self.login_delay = login_delay
        self.before_login = before_login
        self.mode = mode
        self.accounts = tuple(accounts)
        self.state_file = state_file
        self.login_outcome = login_outcome
        self.twofa_delay = twofa_delay
        self.exit_code: int | None = None  # set when the simulated IBC exits by itself
        self._login_started = time.monotonic()
        self._client_ids: set[int] = set()
        self._connections: set[asyncio.Task[None]] = set()
        self._bound = threading.Event()
        self._logged_in = threading.Event()
        # Background-thread runner (start/stop).
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def logged_in(self) -> bool:
        return self._logged_in.is_set()

    def wait_logged_in(self, timeout: float | None = None) -> bool:
        """Block until login has completed; False if ``timeout`` passed first."""
        return self._logged_in.wait(timeout)

    async def serve(self, stop: asyncio.Event) -> None:
        """Bind, log in as ``login_outcome`` says, serve until ``stop`` is set (or IBC exits), close all."""
        if self.state_file:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.state_file)  # a stale file would announce a login that has not happened
        sock = self._bind()
        server: asyncio.Server | None = None
        try:
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
            if self.exit_code is None:
                await stop.wait()
        finally:
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
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        return sock

    async def _authenticate(self, stop: asyncio.Event) -> bool:
        """Log IBC's lines for ``login_outcome``; True when the login completes."""
        outcome = self.login_outcome
        if outcome == "ok":
            return True
        if outcome == "rejected":
            log.info("IBC: detected dialog entitled: Unrecognized Username or Password; event=Opened")
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

    def _complete_login(self) -> None:
        self._logged_in.set()
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
        """One TCP connection, from accept to close; errors end this connection only."""
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        try:
            if not self.logged_in:
                await self._before_login(reader, peer)
            elif self.mode == "silent":
                log.info("API: connection from %s accepted, not answering (mode silent)", peer)
                await _drain(reader)
            else:
                await self._serve_api(reader, writer, peer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away; _serve_api has logged a registered client's departure
        except protocol.ProtocolError as exc:
            log.warning("API: connection from %s closed: not the TWS API protocol (%s)", peer, exc)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _before_login(self, reader: asyncio.StreamReader, peer: str) -> None:
        if self.before_login == "close":
            log.info("API: connection from %s closed: not logged in yet", peer)
            return
        log.info("API: connection from %s accepted, not answering: not logged in yet", peer)
        await _drain(reader)

    async def _serve_api(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        """Handshake, startApi, then request/reply until the client leaves."""
        client_min, client_max = await protocol.read_version_range(reader)
        version = protocol.negotiate_version(client_min, client_max)
        if version is None:
            raise protocol.ProtocolError(
                f"client versions v{client_min}..{client_max} all above {protocol.SERVER_VERSION}"
            )
        writer.write(protocol.version_reply(version))
        client_id = await _read_start_api(reader)
        if self.mode == "client-id-in-use" or client_id in self._client_ids:
            log.info("API: client %d from %s rejected: client id already in use (error 326)", client_id, peer)
            writer.write(client_id_in_use(version))
            await writer.drain()
            return
        self._client_ids.add(client_id)
        log.info("API: client %d connected from %s (server version %d)", client_id, peer, version)
        try:
            accounts = () if self.mode == "no-accounts" else self.accounts
            await _converse(reader, writer, Session(version, accounts), client_id)
        finally:
            self._client_ids.discard(client_id)
            log.info("API: client %d disconnected", client_id)


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
            try:
                return int(fields[2])
            except (IndexError, ValueError):
                raise protocol.ProtocolError(f"bad startApi {fields}") from None
        log.debug("API: ignoring %s before startApi", ",".join(fields))


async def _converse(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: Session, client_id: int
) -> None:
    """Send the greeting, then answer requests until EOF; unsimulated ones are logged and ignored."""
    writer.writelines(session.greeting())
    await writer.drain()
    while True:
        fields = await protocol.read_fields(reader)
        try:
            replies = session.reply(fields)
        except (IndexError, ValueError):
            replies = None
        if replies is None:
            log.debug("API: client %d: ignoring request %s", client_id, ",".join(fields))
            continue
        writer.writelines(replies)
        await writer.drain()


def _write_state_file(path: str | os.PathLike[str], port: int) -> None:
    """Record the login time atomically (temp file + os.replace) for a benchmark to read."""
    state = {"logged_in_at": time.time(), "port": port, "pid": os.getpid()}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(state, file)
    os.replace(temporary, path)
