"""Command line: ``python -m src.simulator``; every flag defaults from a SIM_* environment variable.

Exit codes: 0 after SIGTERM/SIGINT, 1 after ``--exit-after`` (a simulated crash) or when it cannot
listen (the port is taken: one line says so), 2 on bad arguments, 87 when ``--login-outcome
2fa-timeout`` times out (as IBC does). Lines are in IBC's format,
``yyyy-MM-dd HH:mm:ss:SSS IBC: ...`` (IbcAlpha/IBC Utils.java:35, :160).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from src.core.settings import api_port

from .market import FILL_POLICIES
from .server import (
    BEFORE_LOGIN_BEHAVIOURS,
    DEFAULT_ACCOUNTS,
    LOGIN_OUTCOMES,
    MODES,
    OUTAGE_KINDS,
    GatewaySimulator,
    ListenError,
    log,
)


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}", description="A fake IB Gateway for tests and demos."
    )

    def option(flag: str, var: str, default: object, what: str, **kw: object) -> None:
        """One flag whose default is the environment variable `var`, named at the end of its help."""
        parser.add_argument(flag, default=env(var) or default, help=f"{what} ({var})", **kw)  # type: ignore[arg-type]

    option("--host", "SIM_HOST", "127.0.0.1", "address to listen on")
    parser.add_argument("--port", type=int, default=env("SIM_PORT") or api_port(env("TRADING_MODE")),
                        help="0 picks a free port (SIM_PORT; default the Gateway's API port for TRADING_MODE)")
    option("--login-delay", "SIM_LOGIN_DELAY", "0", "seconds from start until login completes", type=float,
           metavar="SECONDS")
    option("--before-login", "SIM_BEFORE_LOGIN", "close", "connections before login: refuse, accept and close, "
           "or accept and stay silent", choices=BEFORE_LOGIN_BEHAVIOURS)
    option("--login-outcome", "SIM_LOGIN_OUTCOME", "ok", "how the login ends after --login-delay: ok; a 2FA "
           "approval then ok; a 2FA timeout (exit 87); a 2FA push that expires (IBC stays up); credentials "
           "rejected; an existing session; a dialog no rule knows", choices=LOGIN_OUTCOMES)
    parser.add_argument("--session-file", default=env("SIM_SESSION_FILE") or None, metavar="PATH",
                        help="IBKR's view of the session: written at login, removed by IBC's STOP; a login that "
                        "finds it meets 'Existing session detected' (SIM_SESSION_FILE; default: not simulated)")
    option("--existing-session-action", "EXISTING_SESSION_DETECTED_ACTION", "primary", "IBC's "
           "ExistingSessionDetectedAction: primary, primaryoverride, secondary or manual, as the image reads it")
    option("--twofa-delay", "SIM_TWOFA_DELAY", "5", "seconds a second-factor approval stays pending", type=float,
           metavar="SECONDS")
    option("--mode", "SIM_MODE", "ready", "behaviour after login", choices=MODES)
    option("--exit-after", "SIM_EXIT_AFTER", None, "crash: exit with code 1 this many seconds after start",
           type=float, metavar="SECONDS")
    option("--accounts", "SIM_ACCOUNTS", ",".join(DEFAULT_ACCOUNTS), "comma-separated managed accounts")
    option("--state-file", "SIM_STATE_FILE", None, "JSON file written at login: logged_in_at, port, pid",
           metavar="PATH")
    option("--fills", "SIM_FILLS", "immediate", "immediate: orders fill at once (a limit at its limit or better); "
           "marketable: limits only when they reach the quote; never: orders rest until cancelled. Stops, "
           "trailing orders and bracket children rest", choices=FILL_POLICIES)
    option("--outage-after", "SIM_OUTAGE_AFTER", None, "begin a simulated outage this many seconds after login",
           type=float, metavar="SECONDS")
    option("--outage-for", "SIM_OUTAGE_FOR", None, "how long the outage lasts", type=float, metavar="SECONDS")
    option("--outage-kind", "SIM_OUTAGE_KIND", "ib-lost", "ib-lost: 1100, the API up but requests for IB wait, "
           "then 1102; freeze: 1100, then nothing answered, then 1102; closed: 1100, every connection closed and "
           "new ones closed on accept, then served again", choices=OUTAGE_KINDS)
    option("--command-port", "SIM_COMMAND_PORT", None, "IBC's command server on 127.0.0.1 (RESTART, STOP, "
           "RECONNECTACCOUNT...); unset = off", type=int, metavar="PORT")
    parser.add_argument("--read-only", action="store_true",
                        default=(env("SIM_READ_ONLY") or "").lower() in ("yes", "true", "1"),
                        help="the API is read-only (IBC's ReadOnlyApi=yes): every order answered with error 321 "
                        "(SIM_READ_ONLY)")
    option("--restart-delay", "SIM_RESTART_DELAY", "3", "how long IBC's RESTART keeps the API away before it "
           "serves again, logged in", type=float, metavar="SECONDS")
    option("--log-level", "SIM_LOG_LEVEL", "INFO", "DEBUG also logs every request's name",
           choices=("DEBUG", "INFO", "WARNING"))
    return parser


class IbcFormatter(logging.Formatter):
    """IBC's line format, ``2026-11-25 08:00:01:123 <message>``; a record with ``raw`` set (a line
    of IBC's scripts or error banners) is printed as it is, as IBC prints those."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s:%(msecs)03d %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage() if getattr(record, "raw", False) else super().format(record)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # logging's StreamHandler flushes every record: container logs see each line at once.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(IbcFormatter())
    logging.basicConfig(level=args.log_level, handlers=[handler])
    try:
        # every flag is the simulator's argument of the same name, but these three
        flags = {k: v for k, v in vars(args).items() if k not in ("accounts", "exit_after", "log_level")}
        accounts = [account.strip() for account in args.accounts.split(",") if account.strip()]
        simulator = GatewaySimulator(**flags, accounts=accounts)
    except ValueError as exc:  # environment values bypass argparse's choices
        parser.error(str(exc))
    try:
        return asyncio.run(_run(simulator, args.exit_after))
    except ListenError as exc:  # one line, no traceback: the port is taken, the host unknown
        log.error("API: %s", exc)
        return 1


async def _run(simulator: GatewaySimulator, exit_after: float | None) -> int:
    """Serve until a signal (exit code 0), ``exit_after`` seconds (1), or the simulated IBC exits."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    crashed = False

    def on_signal(signum: signal.Signals) -> None:
        log.info("IBC: %s received, shutting down", signum.name)
        stop.set()

    def crash() -> None:
        nonlocal crashed
        crashed = True
        log.info("IBC: simulated crash after %gs, exiting with code 1", exit_after)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    if exit_after is not None:
        loop.call_later(exit_after, crash)
    if simulator.outage_after is not None:
        log.info("API: outage scheduled: %s for %gs, %gs after login", simulator.outage_kind,
                 simulator.outage_for, simulator.outage_after)
    if simulator.fills != "immediate":
        log.info("API: orders fill: %s", simulator.fills)
    await simulator.serve(stop)
    if crashed:
        return 1
    return simulator.exit_code or 0


if __name__ == "__main__":
    sys.exit(main())
