"""The bot runtime: the process trading strategies plug into.

    python -m src.main --gateway-host H --gateway-port P --gameplan FILE --log-level L [--client-id N]

It checks the arguments it was given (not the environment), holds a single-instance
lock on state/bot.pid, connects to the Gateway with ib_async, and only then writes
state/bot_ready.json and tells its supervisor `READY=1` (sd_notify). It stays up with
a heartbeat, reconnects with backoff if the Gateway drops, and exits 0 on
SIGTERM/SIGINT. Without trading authority (Strategy C, zero size) no order can
leave: see `src.broker.connection.Broker.place_order`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from src.broker.connection import Broker
from src.gameplan.loader import GameplanError, load_emergency_plan, load_gameplan
from src.gameplan.schema import Gameplan
from src.orchestration import cli
from src.orchestration.bot import PID_FILE, READY_FILE
from src.orchestration.config import REPO_ROOT
from src.orchestration.health import GatewayHealthChecker
from src.atomic_file import write_atomic
from src.orchestration.journal import utc_now
from src.orchestration.locks import LockHeld, PidLock
from src.orchestration.sdnotify import notify

log = logging.getLogger("src.main")


class Strategy(Protocol):
    """What a trading strategy implements; it only ever sees the gated Broker."""

    def on_start(self, plan: Gameplan, broker: Broker) -> None: ...

    def on_heartbeat(self, broker: Broker) -> None: ...


class IdleStrategy:
    """The built-in strategy: places no orders, says which plan is in force."""

    def on_start(self, plan: Gameplan, broker: Broker) -> None:
        authority = "trading authorized" if broker.trading_authorized else "NO trading authority"
        log.info("Gameplan in force: %s strategy %s, regime %s, %d symbol(s), size x%s, %s",
                 plan.date, plan.strategy, plan.regime, len(plan.symbols), plan.position_size_multiplier,
                 authority)

    def on_heartbeat(self, broker: Broker) -> None:
        pass


class PrerequisiteError(Exception):
    """The bot must not start; the message is the one line to show."""


def load_plan(path: Path) -> Gameplan:
    """Today's usable plan, or a valid Strategy C plan; anything else is a PrerequisiteError."""
    try:
        return load_gameplan(path)
    except GameplanError as error:
        try:
            return load_emergency_plan(path)
        except GameplanError:
            raise PrerequisiteError(f"gameplan {path} not usable ({error.kind}): {error.reason}") from None


def validate_prerequisites(args: argparse.Namespace) -> Gameplan:
    """Check what this process was given: the gameplan file and a logged-in Gateway."""
    plan = load_plan(args.gameplan)
    probe = GatewayHealthChecker(args.gateway_host, args.gateway_port, timeout=5.0,
                                 client_id=args.health_client_id).check_handshake()
    if not probe.ok:
        raise PrerequisiteError(
            f"Gateway {args.gateway_host}:{args.gateway_port} not serving the API: {probe.describe()}")
    return plan


class Bot:
    """Connect, announce readiness, heartbeat, reconnect, stop cleanly."""

    def __init__(self, args: argparse.Namespace, plan: Gameplan, strategy: Strategy,
                 broker_factory: Callable[..., Broker] = Broker) -> None:
        self.args, self.plan, self.strategy = args, plan, strategy
        self.broker = broker_factory(args.gateway_host, args.gateway_port, args.client_id,
                                     trading_authorized=plan.trading_authorized)
        self.ready_file = args.state_dir / READY_FILE
        self._stop = asyncio.Event()
        self._dropped = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        accounts = await self.broker.connect_with_backoff(attempts=3)
        self.broker.ib.disconnectedEvent += lambda: self._dropped.set()
        self._announce_ready(accounts)
        self.strategy.on_start(self.plan, self.broker)
        try:
            await self._serve()
        finally:
            self.broker.disconnect()
            self.ready_file.unlink(missing_ok=True)
            notify("STOPPING=1")
        log.info("Bot stopped cleanly")
        return 0

    async def _serve(self) -> None:
        while not self._stop.is_set():
            stop = asyncio.create_task(self._stop.wait())
            dropped = asyncio.create_task(self._dropped.wait())
            await asyncio.wait({stop, dropped}, timeout=self.args.heartbeat,
                               return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            dropped.cancel()
            if self._stop.is_set():
                return
            if self._dropped.is_set():
                await self._reconnect()
                continue
            log.info("heartbeat: connected=%s, strategy %s, orders refused %d",
                     self.broker.is_connected(), self.plan.strategy, self.broker.orders_refused)
            self.strategy.on_heartbeat(self.broker)

    async def _reconnect(self) -> None:
        log.error("Gateway connection lost: reconnecting with backoff")
        notify("STATUS=Gateway connection lost, reconnecting")
        self._dropped.clear()
        reconnect = asyncio.create_task(self.broker.connect_with_backoff(attempts=None))
        stop = asyncio.create_task(self._stop.wait())
        await asyncio.wait({reconnect, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not reconnect.done():
            reconnect.cancel()
            return
        stop.cancel()
        log.info("Gateway connection restored")
        notify("STATUS=connected")

    def _announce_ready(self, accounts: list[str]) -> None:
        record = {
            "pid": os.getpid(), "started_at": utc_now(), "gameplan": str(self.args.gameplan),
            "strategy": self.plan.strategy, "trading_authorized": self.plan.trading_authorized,
            "accounts": accounts, "gateway": f"{self.args.gateway_host}:{self.args.gateway_port}",
            "client_id": self.args.client_id,
        }
        write_atomic(self.ready_file, json.dumps(record))
        notify(f"READY=1\nMAINPID={os.getpid()}\nSTATUS=connected, strategy {self.plan.strategy}")
        log.info("Bot READY: connected to %s as client %s, accounts %s, strategy %s",
                 record["gateway"], self.args.client_id, ",".join(accounts), self.plan.strategy)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The bot's arguments, range-checked; a usage error is one line and exit 1 (2 means Strategy C)."""
    parser = cli.ArgumentParser(prog="python -m src.main", description="The trading bot runtime.")
    parser.add_argument("--gateway-host", required=True, type=cli.host)
    parser.add_argument("--gateway-port", required=True, type=cli.port, help="1..65535")
    parser.add_argument("--gameplan", required=True, type=Path)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
    parser.add_argument("--client-id", type=cli.client_id, default=1)
    parser.add_argument("--health-client-id", type=cli.client_id, default=999,
                        help="client id for the prerequisite handshake probe (never the bot's own)")
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / "state")
    parser.add_argument("--heartbeat", type=cli.seconds(3600), default=60.0,
                        help="seconds between heartbeat log lines (<= 3600)")
    args = parser.parse_args(argv)
    if args.health_client_id == args.client_id:
        parser.error(f"--health-client-id {args.health_client_id} must differ from --client-id "
                     "(a probe must never take the bot's client id)")
    return args


def main(argv: list[str] | None = None, strategy: Strategy | None = None) -> int:
    """Bot entry point: one clear line and exit 1 on any reason not to run."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stdout,
                        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    logging.getLogger("ib_async").setLevel(max(logging.WARNING, logging.getLogger().level))
    lock = PidLock(args.state_dir / PID_FILE)
    try:
        lock.acquire()
    except LockHeld as held:
        log.error("bot already running (PID %s): refusing to start a second instance", held.pid)
        return 1
    try:
        plan = validate_prerequisites(args)
        log.info("Bot prerequisites validated")
        return asyncio.run(Bot(args, plan, strategy or IdleStrategy()).run())
    except (PrerequisiteError, ConnectionError) as exc:
        log.error("Bot cannot start: %s", exc)
        return 1
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
