"""Gateway health: is IB Gateway really logged in and serving the TWS API?

A TCP connect is not enough: the common Gateway images put socat in front of the
API port, so the port accepts long before IBKR login completes. `check_handshake`
speaks the TWS API start-up protocol instead (version exchange, startApi with a
dedicated client id, then nextValidId and a non-empty managedAccounts) and says
why it failed. Standard library only (with cli.py and settings.py, for the declared
defaults), so a minimal container can run it as its healthcheck:
`python -m src.orchestration.health --port 4002`.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass, field

from src.core import cli
from src.core.settings import api_port, default_float, default_int
from src.tws import wire

CLIENT_VERSIONS = (157, 178)  # the range ib_async 2.x announces; keeps the text protocol
MAX_FRAME = 1 << 20  # no legitimate start-up message is anywhere near 1 MiB
PROBE_CLIENT_ID = default_int("GATEWAY_HEALTH_CLIENT_ID")  # the orchestrator's defaults, declared once
PROBE_TIMEOUT = default_float("HEALTH_CHECK_TIMEOUT")

# Verdicts (HandshakeResult.reason)
OK = "ok"
REFUSED = "refused"
CLOSED_BEFORE_VERSION = "closed_before_version"
NO_REPLY = "no_reply"
CLOSED_AFTER_START = "closed_after_start_api"
NO_ACCOUNTS = "no_accounts"
CLIENT_ID_TAKEN = "client_id_in_use"
PROTOCOL_ERROR = "protocol_error"
UNREACHABLE = "unreachable"
IB_LOST = "ib_lost"  # the API answers, but the Gateway reports 1100/2110: IBKR's servers are out of its reach
IB_LOST_CODES = ("1100", "2110")


@dataclass(frozen=True)
class HandshakeResult:
    """What one probe found; `reason` is one of the verdict constants above."""

    reason: str
    detail: str
    elapsed: float
    server_version: int | None = None
    accounts: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.reason == OK

    def describe(self) -> str:
        """One line for logs and operators."""
        if self.ok:
            return (f"logged in: server version {self.server_version}, "
                    f"accounts {','.join(self.accounts)} ({self.elapsed * 1000:.0f} ms)")
        return f"{self.reason}: {self.detail}"


def is_paper_account(account: str) -> bool:
    """IBKR paper account ids start with D (DU... individual, DF... advisor); live ones do not."""
    return account.strip().upper().startswith("D")


def account_problem(accounts: tuple[str, ...] | list[str], mode: str, expected: tuple[str, ...] = ()) -> str | None:
    """Why the Gateway's managed accounts do not fit TRADING_MODE and EXPECTED_ACCOUNTS, or None.

    A Gateway logged in to the other kind of account (a live account under TRADING_MODE=paper,
    or the reverse) must get no bot: one line naming the account and the setting.
    """
    if not accounts:
        return "the Gateway reported no managed accounts"
    wrong = [a for a in accounts if is_paper_account(a) != (mode == "paper")]
    if wrong:
        kind = "PAPER" if mode == "live" else "LIVE"
        return f"Gateway is logged in to {kind} account {','.join(wrong)} but TRADING_MODE={mode}"
    missing = [a for a in expected if a.upper() not in {x.upper() for x in accounts}]
    if missing:
        return (f"Gateway manages {','.join(accounts)}, not EXPECTED_ACCOUNTS {','.join(missing)}: "
                "logged in to the wrong IBKR user?")
    return None


class _Fail(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class GatewayHealthChecker:
    """Probes one Gateway API endpoint. Every probe is bounded by `timeout` seconds."""

    def __init__(self, host: str, port: int, timeout: float = PROBE_TIMEOUT, client_id: int = PROBE_CLIENT_ID) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.client_id = client_id

    def check_handshake(self, timeout: float | None = None) -> HandshakeResult:
        """Run the TWS API start-up handshake once and close; never raises."""
        limit = self.timeout if timeout is None else timeout
        start = time.monotonic()
        deadline = start + limit
        try:
            version, accounts = self._handshake(deadline)
        except _Fail as fail:
            return HandshakeResult(fail.reason, fail.detail, time.monotonic() - start)
        return HandshakeResult(OK, "logged in", time.monotonic() - start, version, accounts)

    def _handshake(self, deadline: float) -> tuple[int, tuple[str, ...]]:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=_left(deadline))
        except ConnectionRefusedError:
            raise _Fail(REFUSED, f"connection refused on {self.host}:{self.port}") from None
        except TimeoutError:
            raise _Fail(NO_REPLY, f"no TCP connection within {self.timeout:g} s") from None
        except OSError as exc:
            raise _Fail(UNREACHABLE, f"{self.host}:{self.port}: {exc.strerror or exc}") from None
        with sock:
            low, high = CLIENT_VERSIONS
            reader = _FrameReader(sock, deadline)
            _send(sock, wire.opening(low, high))
            hello = reader.read("the version reply", CLOSED_BEFORE_VERSION)
            try:
                version = int(hello[0])
            except (ValueError, IndexError):
                raise _Fail(PROTOCOL_ERROR, f"bad version reply {hello[:2]!r}") from None
            _send(sock, wire.start_api(self.client_id))
            order_id: str | None = None
            accounts: tuple[str, ...] | None = None
            while order_id is None or accounts is None:
                msg = reader.read("nextValidId and managedAccounts", CLOSED_AFTER_START)
                kind = msg[0] if msg else ""
                if kind == str(wire.NEXT_VALID_ID) and len(msg) >= 3:
                    order_id = msg[2]
                elif kind == str(wire.MANAGED_ACCTS) and len(msg) >= 3:
                    # printable ASCII only: an account id goes into log lines, alerts and the journal
                    accounts = tuple(wire.clip(a.strip(), 32) for a in msg[2].split(",") if a.strip())
                elif kind == str(wire.ERR_MSG) and len(msg) >= 4 and msg[3] == str(wire.CLIENT_ID_IN_USE):
                    raise _Fail(CLIENT_ID_TAKEN, f"client id {self.client_id} is already in use")
            if not accounts:
                raise _Fail(NO_ACCOUNTS, "logged in but managedAccounts is empty")
            # One round trip more (reqCurrentTime, which the Gateway answers by itself): what it says to every
            # new client comes before the answer, and a Gateway that has lost IBKR says 1100 there
            _send(sock, wire.encode(wire.REQ_CURRENT_TIME, 1))
            lost = None
            while True:
                msg = reader.read("currentTime", CLOSED_AFTER_START)
                if msg and msg[0] == str(wire.CURRENT_TIME):
                    break
                if msg and msg[0] == str(wire.ERR_MSG) and len(msg) >= 4 and msg[3] in IB_LOST_CODES:
                    lost = msg[3]
            if lost:
                raise _Fail(IB_LOST, f"the API answers but the Gateway reports {lost}: it has lost IBKR's servers "
                            "(a restart cannot reach them either)")
            return version, accounts


class _FrameReader:
    """Reads frames from a socket through the shared codec (wire.FrameBuffer), against one deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline = sock, deadline
        self.frames = wire.FrameBuffer(limit=MAX_FRAME)

    def read(self, waiting_for: str, closed_reason: str) -> list[str]:
        while True:
            try:
                payload = self.frames.next_payload()
            except wire.ProtocolError as exc:
                raise _Fail(PROTOCOL_ERROR, f"{exc}: not a TWS API server") from None
            if payload is not None:
                return payload.decode("latin-1").split("\0")[:-1] if payload else []
            self.frames.feed(self._recv(waiting_for, closed_reason))

    def _recv(self, waiting_for: str, closed_reason: str) -> bytes:
        remaining = _left(self.deadline)
        if remaining <= 0:
            raise _Fail(NO_REPLY, f"{waiting_for} not received before the probe timeout")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise _Fail(NO_REPLY, f"{waiting_for} not received before the probe timeout") from None
        except OSError as exc:
            raise _Fail(closed_reason, f"connection reset while waiting for {waiting_for}: {exc}") from None
        if not chunk:
            raise _Fail(closed_reason, f"connection closed before {waiting_for}")
        return chunk


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError as exc:
        raise _Fail(CLOSED_BEFORE_VERSION, f"connection closed while sending: {exc}") from None



def main(argv: list[str] | None = None) -> int:
    """One probe, one line of verdict: exit 0 healthy, 1 not."""
    parser = cli.ArgumentParser(
        prog="python -m src.orchestration.health",
        description="Probe IB Gateway with the TWS API handshake (not just a port check). "
                    "Exit 0 healthy, 1 not healthy or a usage error.",
    )
    parser.add_argument("--host", type=cli.host, default="127.0.0.1")
    parser.add_argument("--port", type=cli.port, default=api_port(os.environ.get("TRADING_MODE")),
                        help="1..65535 (default the Gateway's API port for TRADING_MODE)")
    parser.add_argument("--client-id", type=cli.client_id, default=PROBE_CLIENT_ID,
                        help="dedicated probe client id (never the bot's)")
    parser.add_argument("--timeout", type=cli.seconds(60), default=PROBE_TIMEOUT,
                        help="seconds for the whole probe (<= 60)")
    args = parser.parse_args(argv)
    result = GatewayHealthChecker(args.host, args.port, args.timeout, args.client_id).check_handshake()
    where = f"{args.host}:{args.port}"
    print(f"{'HEALTHY' if result.ok else 'UNHEALTHY'} {where}: {result.describe()}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
