"""The bot runtime: the process trading strategies plug into.

    python -m src.main --gateway-host H --gateway-port P --gameplan FILE [--gameplan-sha256 HEX]
                       [--strategy MODULE:ATTR] [--log-level L] [--client-id N] ...

It checks what it was given (not the environment): the plan file, read once, must have the
sha256 the orchestrator validated; the strategy must import and implement `Strategy`; the
Gateway must answer the handshake. It holds a single-instance lock on state/bot.pid, connects
with ib_async and a complete start-up sync, and only then writes state/bot_ready.json (with
the plan's strategy, authority and sha256, and the connection state) and tells its supervisor
`READY=1` (sd_notify). It stays up with a heartbeat that makes an API round trip, tracks IBKR's
connectivity codes, reconnects with backoff, and exits 0 on SIGTERM/SIGINT — honoured from the
first moment, the first connection included. Orders leave only through the trading gate
(`src.broker.gate`), built from the plan in force.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import inspect
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from src.broker.connection import CONNECTED, RECONNECTING, Broker, ClientIdInUse, StrategyAPI
from src.broker.gate import TradingGate
from src.broker.strategy import PrerequisiteError, Strategy, load_strategy
from src.core import cli
from src.core.atomic_file import write_atomic
from src.core.journal import utc_now
from src.core.locks import LockHeld, PidLock
from src.core.sdnotify import notify
from src.core.settings import LOG_LEVELS, REPO_ROOT, default_int, default_str
from src.core.statefiles import BOT_PID_FILE, READY_FILE
from src.firewall.plan import authority_of
from src.gameplan.loader import GameplanError, check_in_force, parse_gameplan, read_gameplan_bytes, trading_date
from src.gameplan.schema import Gameplan
from src.orchestration.health import GatewayHealthChecker

log = logging.getLogger("src.main")  # not __name__: that is "__main__" under -m, and bot log lines show it
T = TypeVar("T")


def load_plan(path: Path, sha256: str | None = None) -> tuple[Gameplan, str]:
    """The plan file read once: today's usable plan, or a valid Strategy C plan, and its sha256.

    With `sha256` (the orchestrator's), the bytes must be exactly the ones it validated."""
    try:
        data = read_gameplan_bytes(path)
        digest = hashlib.sha256(data).hexdigest()
        if sha256 and digest != sha256.lower():
            raise PrerequisiteError(f"gameplan {path} is not the plan the orchestrator validated "
                                    f"(sha256 {digest[:12]}, expected {sha256[:12]})")
        return check_in_force(parse_gameplan(data, path)), digest
    except GameplanError as error:
        raise PrerequisiteError(f"gameplan {path} not usable ({error.kind}): {error.reason}") from None


def probe_gateway(args: argparse.Namespace) -> None:
    """The Gateway must answer the handshake (with the probe's own client id) before we connect."""
    probe = GatewayHealthChecker(args.gateway_host, args.gateway_port,
                                 client_id=args.health_client_id).check_handshake()
    if not probe.ok:
        raise PrerequisiteError(
            f"Gateway {args.gateway_host}:{args.gateway_port} not serving the API: {probe.describe()}")


class Stopped(Exception):
    """SIGTERM/SIGINT arrived: end cleanly."""


class Bot:
    """Connect, announce readiness, heartbeat, track the connection, reconnect, stop cleanly."""

    def __init__(self, args: argparse.Namespace, plan: Gameplan, sha256: str, strategy: Strategy,
                 broker_factory: Callable[..., Broker] = Broker) -> None:
        self.args, self.plan, self.sha256, self.strategy = args, plan, sha256, strategy
        self.broker = broker_factory(args.gateway_host, args.gateway_port, args.client_id)
        self.gate = TradingGate(self.broker.ib, authority_of(plan, sha256), today=trading_date,
                                connection_state=self.connection_state)
        self.api = StrategyAPI(self.broker, self.gate)
        self.ready_file = args.state_dir / READY_FILE
        self._stop = asyncio.Event()
        self._dropped = asyncio.Event()
        self._record: dict[str, Any] | None = None
        self._record_stale = False  # the last write of the readiness record failed: retried each heartbeat

    def _on_stop_signal(self) -> None:
        STOPPING.set()
        self._stop.set()

    def connection_state(self) -> str:
        return self.broker.state if self.broker.ib.isConnected() else RECONNECTING

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # SIGHUP: a closed session ends it cleanly too
            loop.add_signal_handler(sig, self._on_stop_signal)
        try:
            log.info("Checking the Gateway at %s:%s (handshake probe, client id %s)", self.args.gateway_host,
                     self.args.gateway_port, self.args.health_client_id)
            await self._until_stopped(_in_thread(lambda: probe_gateway(self.args)))
            log.info("Bot prerequisites validated")
            accounts = await self._until_stopped(self.broker.connect_with_backoff(attempts=3))
        except Stopped:
            log.info("Bot stopped before it was connected")
            self.broker.disconnect()
            return 0
        self.broker.ib.disconnectedEvent += self._on_disconnected
        self.broker.on_state = self._on_state
        self._announce_ready(accounts)
        try:
            await _maybe_await(self.strategy.on_start(self.plan, self.api))
            await self._serve()
        finally:
            self.broker.ib.disconnectedEvent -= self._on_disconnected  # our own disconnect is no loss
            self.broker.disconnect()
            self.ready_file.unlink(missing_ok=True)
            notify("STOPPING=1")
        log.info("Bot stopped cleanly")
        return 0

    async def _until_stopped(self, work: Awaitable[T]) -> T:
        """`work`, unless a stop signal comes first (then Stopped)."""
        task = asyncio.ensure_future(work)
        stop = asyncio.create_task(self._stop.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not task.done():
            task.cancel()
            raise Stopped()
        return task.result()

    def _on_disconnected(self) -> None:
        self.broker.lost("the API connection closed")
        self._dropped.set()

    def _on_state(self, state: str, reason: str) -> None:
        if self._record is not None:
            self._record.update(connection=state, connection_reason=reason, connection_since=utc_now())
            self._write_record()
        notify(f"STATUS={state}: {reason}; strategy {self.plan.strategy}")

    def _write_record(self) -> None:
        """The readiness record, or none at all: a record that cannot be rewritten (a full disk) is removed,
        so no reader takes its stale connection state for the present one; the heartbeat writes it again.
        Never raises: the connection's own handling (a resync) must go on."""
        try:
            write_atomic(self.ready_file, json.dumps(self._record))
            self._record_stale = False
        except OSError as exc:
            if not self._record_stale:
                log.error("Cannot write the readiness record %s (%s): removed until it can be written again, so "
                          "--status and the supervisor do not read a stale connection state", self.ready_file,
                          exc.strerror or exc)
            self._record_stale = True
            try:
                self.ready_file.unlink(missing_ok=True)
            except OSError as unlink_error:
                log.error("Cannot remove the stale readiness record %s: %s", self.ready_file,
                          unlink_error.strerror or unlink_error)

    async def _serve(self) -> None:
        while not self._stop.is_set():
            stop = asyncio.create_task(self._stop.wait())
            dropped = asyncio.create_task(self._dropped.wait())
            await asyncio.wait({stop, dropped}, timeout=self.args.heartbeat, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            dropped.cancel()
            if self._stop.is_set():
                return
            if self._dropped.is_set():
                await self._reconnect()
                continue
            await self.broker.heartbeat(min(self.args.heartbeat_timeout, self.args.heartbeat))
            if self._record_stale:
                self._write_record()
            farms = f", broken farms {','.join(sorted(self.broker.broken_farms))}" if self.broker.broken_farms else ""
            log.info("heartbeat: connection=%s (%s), strategy %s, orders placed %d, refused %d%s",
                     self.broker.state, self.broker.state_reason, self.plan.strategy, self.gate.placed,
                     self.gate.refused, farms)
            if self.connection_state() == CONNECTED:
                await _maybe_await(self.strategy.on_heartbeat(self.api))

    async def _reconnect(self) -> None:
        log.error("Gateway connection lost: reconnecting with backoff (trading paused)")
        self._dropped.clear()
        try:
            await self._until_stopped(self._api_answers())
            await self._until_stopped(self.broker.connect_with_backoff(attempts=None))
        except Stopped:
            return
        log.info("Gateway connection restored and synced: trading resumes under the plan in force")

    async def _api_answers(self, every: float = 0.5) -> None:
        """Until the Gateway answers the handshake again, probed every `every` s (a closed API fails a
        probe in milliseconds; ib_async's connect to an API that accepts and closes waits out its timeout)."""
        while True:
            try:
                return await _in_thread(lambda: probe_gateway(self.args))
            except PrerequisiteError:
                await asyncio.sleep(every)

    def _announce_ready(self, accounts: list[str]) -> None:
        self._record = {
            "pid": os.getpid(), "started_at": utc_now(), "gameplan": str(self.args.gameplan),
            "gameplan_sha256": self.sha256, "strategy": self.plan.strategy,
            "trading_authorized": self.plan.trading_authorized, "plan_date": self.plan.date.isoformat(),
            "accounts": accounts, "gateway": f"{self.args.gateway_host}:{self.args.gateway_port}",
            "client_id": self.args.client_id, "connection": self.broker.state,
            "connection_reason": self.broker.state_reason, "connection_since": utc_now(),
        }
        write_atomic(self.ready_file, json.dumps(self._record))
        notify(f"READY=1\nMAINPID={os.getpid()}\nSTATUS=connected, strategy {self.plan.strategy}")
        log.info("Bot READY: connected to %s as client %s, accounts %s, strategy %s, plan sha256 %s",
                 self._record["gateway"], self.args.client_id, ",".join(accounts), self.plan.strategy,
                 self.sha256[:12])


STOPPING = threading.Event()  # a stop signal arrived: whatever fails after it is the stop, not a failure


def _stop_now(signum: int, frame: object) -> None:
    STOPPING.set()
    raise Stopped()


async def _maybe_await(result: Any) -> None:
    if inspect.isawaitable(result):
        await result


def _in_thread(work: Callable[[], T]) -> asyncio.Future[T]:
    """Run blocking `work` in a daemon thread: a stop signal need not wait for it to finish."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if not future.done():
            future.set_exception(error) if error else future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result = work()
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=target, name="gateway-probe", daemon=True).start()
    return future


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The bot's arguments, range-checked; a usage error is one line and exit 1 (2 means Strategy C)."""
    parser = cli.ArgumentParser(prog="python -m src.main", description="The trading bot runtime.")
    parser.add_argument("--gateway-host", required=True, type=cli.host)
    parser.add_argument("--gateway-port", required=True, type=cli.port, help="1..65535")
    parser.add_argument("--gameplan", required=True, type=Path)
    parser.add_argument("--gameplan-sha256", metavar="HEX", help="the sha256 of the plan the orchestrator validated: "
                        "the bot refuses any other bytes")
    parser.add_argument("--strategy", metavar="MODULE:ATTR", help="the trading strategy (default: the idle one)")
    # The defaults are the orchestrator's (src/core/settings.py), which passes them explicitly.
    parser.add_argument("--log-level", default=default_str("BOT_LOG_LEVEL"), choices=LOG_LEVELS)
    parser.add_argument("--client-id", type=cli.client_id, default=default_int("BOT_CLIENT_ID"))
    parser.add_argument("--health-client-id", type=cli.client_id, default=default_int("GATEWAY_HEALTH_CLIENT_ID"),
                        help="client id for the prerequisite handshake probe (never the bot's own)")
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / default_str("STATE_DIR"))
    parser.add_argument("--heartbeat", type=cli.seconds(3600), default=60.0,
                        help="seconds between heartbeats, each an API round trip (<= 3600)")
    parser.add_argument("--heartbeat-timeout", type=cli.seconds(600), default=10.0,
                        help="seconds the heartbeat's reqCurrentTime may take before the connection is degraded")
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
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # until the bot's loop takes over: a clean stop
        signal.signal(signum, _stop_now)
    lock = PidLock(args.state_dir / BOT_PID_FILE)
    try:
        lock.acquire()
    except LockHeld as held:
        log.error("bot already running (PID %s): refusing to start a second instance", held.pid)
        return 1
    except Stopped:
        log.info("Bot stopped before it started")
        return 0
    try:
        plan, sha256 = load_plan(args.gameplan, args.gameplan_sha256)
        chosen = strategy or load_strategy(args.strategy)
        return asyncio.run(Bot(args, plan, sha256, chosen).run())
    except Stopped:
        log.info("Bot stopped before it was connected")
        return 0
    except ClientIdInUse as exc:
        log.error("Bot cannot start: client id %s is in use (%s): another client holds it; not retried",
                  args.client_id, exc)
        return 1
    except (PrerequisiteError, ConnectionError) as exc:
        if STOPPING.is_set():  # the stop interrupted the connection: asked for, not a failure
            log.info("Bot stopped while connecting (%s)", exc)
            return 0
        log.error("Bot cannot start: %s", exc)
        return 1
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
