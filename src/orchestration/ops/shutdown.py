"""Graceful shutdown (spec §17.1): stop the bot, optionally the Gateway; one alert, one journal line.

    python -m src.orchestration.ops.shutdown [--gateway] [--timeout S]

The bot gets SIGTERM (it disconnects and removes its readiness record), a bounded
wait, then SIGKILL. "Stopped" means its flock on state/bot.pid is gone, which the
kernel guarantees once the process has exited. `--gateway` then `docker stop`s the
Gateway container. Safe to run twice: nothing running is success ("nothing to stop",
and no alert, since no human needs to know).

It takes state/orchestrator.lock like a startup does, so the two never race. An
orchestrator in supervise mode holds that lock for its whole life: stop that one
through its supervisor (`systemctl stop ...`), which stops the bot itself.

Exit 0: everything asked for is stopped. Exit 1: something is still running, the
lock is held, or the configuration is invalid (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from src.core import cli
from src.core.journal import RunJournal
from src.core.locks import LockHeld, PidLock
from src.core.statefiles import BOT_PID_FILE, ORCHESTRATOR_LOCK, READY_FILE
from src.notifications.discord import DiscordNotifier
from src.notifications.dispatch import Notifier
from src.orchestration.config import OrchestrationConfig, config_for_cli
from src.orchestration.gateway.docker import ContainerState, DockerClient, DockerError
from src.orchestration.machine.bot import running_bot

log = logging.getLogger(__name__)

DEFAULT_BOT_TIMEOUT = 15.0  # seconds the bot gets after SIGTERM before SIGKILL
KILL_WAIT = 5.0  # seconds for the kernel to release a SIGKILLed bot's lock
GATEWAY_STOP_GRACE = 90  # seconds a tidy stop (IBC's STOP, a logout) may take: the Compose file's stop_grace_period
POLL = 0.05


class Docker(Protocol):
    """The part of DockerClient a shutdown uses."""

    container: str

    def inspect(self) -> ContainerState | None: ...

    def stop(self, stop_timeout: int = 30) -> None: ...


@dataclass(frozen=True)
class Step:
    """What became of one component: is it stopped now, did we stop it, in one line."""

    name: str
    stopped: bool
    detail: str
    acted: bool = False
    pid: int | None = None


@dataclass
class ShutdownReport:
    """Every step taken; the verdict and the one-line summary derive from them."""

    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.stopped for step in self.steps)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    @property
    def nothing_to_stop(self) -> bool:
        return self.ok and not any(step.acted for step in self.steps)

    def summary(self) -> str:
        if self.nothing_to_stop:
            return "nothing to stop: " + "; ".join(step.detail for step in self.steps)
        return "; ".join(step.detail for step in self.steps)


def stop_bot(state_dir: Path, timeout: float, *, clock: Callable[[], float] = time.monotonic) -> Step:
    """SIGTERM the bot holding state/bot.pid, wait up to `timeout` s for its lock to go, then SIGKILL."""
    pid = running_bot(state_dir)
    if pid is None:
        return Step("bot", True, "bot not running")
    if pid < 0:
        return Step("bot", False, f"{BOT_PID_FILE} is locked by a process whose PID is unknown: stop it by hand")
    log.info("Stopping the bot (PID %d): SIGTERM, then up to %g s", pid, timeout)
    started = clock()
    _kill(pid, signal.SIGTERM)
    if _released(state_dir, pid, timeout, clock):
        return Step("bot", True, f"bot (PID {pid}) stopped cleanly in {clock() - started:.1f} s", True, pid)
    log.warning("Bot (PID %d) still running %g s after SIGTERM: sending SIGKILL", pid, timeout)
    if running_bot(state_dir) == pid:  # still the lock holder, so not a reused PID
        _kill(pid, signal.SIGKILL)
    if not _released(state_dir, pid, KILL_WAIT, clock):
        return Step("bot", False, f"bot (PID {pid}) still holds {BOT_PID_FILE} after SIGKILL", True, pid)
    _remove_stale_ready_record(state_dir, pid)
    return Step("bot", True, f"bot (PID {pid}) ignored SIGTERM for {timeout:g} s: killed (SIGKILL)", True, pid)


def stop_gateway(docker: Docker, timeout: float) -> Step:
    """Stop the Gateway container tidily (IBC's STOP, a logout; then docker stop for what is left) unless it is
    absent or already stopped."""
    name = docker.container
    try:
        state = docker.inspect()
        if state is None:
            return Step("gateway", True, f"no Gateway container named {name}")
        if state.status in ("created", "exited", "dead"):
            return Step("gateway", True, f"Gateway container {name} already stopped ({state.describe()})")
        log.info("Stopping the Gateway container %s (IBC's STOP, then up to %d s)", name, GATEWAY_STOP_GRACE)
        docker.stop(GATEWAY_STOP_GRACE)
    except DockerError as exc:
        return Step("gateway", False, f"Gateway container {name} not stopped: {exc.message}")
    return Step("gateway", True, f"Gateway container {name} stopped", acted=True)


def shutdown(config: OrchestrationConfig, *, gateway: bool, timeout: float = DEFAULT_BOT_TIMEOUT,
             notifier: Notifier, docker: Docker | None = None) -> ShutdownReport:
    """Stop what was asked under the orchestrator lock; alert when something changed or failed; journal."""
    journal = RunJournal(config.state_dir)
    report = ShutdownReport()
    lock = PidLock(config.state_dir / ORCHESTRATOR_LOCK)
    try:
        lock.acquire()
    except LockHeld as held:
        report.steps.append(Step("orchestrator", False, (
            f"an orchestrator is running (PID {held.pid or 'unknown'}): nothing was stopped; "
            "stop it through its supervisor (systemctl stop) or wait for it to finish")))
    else:
        try:
            report.steps.append(stop_bot(config.state_dir, timeout))
            if gateway:
                docker = docker or DockerClient.from_config(config)
                report.steps.append(stop_gateway(docker, config.docker_command_timeout))
        finally:
            lock.release()
    for step in report.steps:
        log.log(logging.INFO if step.stopped else logging.ERROR, "%s", step.detail)
    alerts = []
    if not report.nothing_to_stop:
        level = "info" if report.ok else "error"
        title = "Shutdown complete" if report.ok else "Shutdown incomplete: something is still running"
        delivered = notifier.send(level, report.summary(), title=title,
                                  fields={step.name: step.detail for step in report.steps})
        alerts.append({"level": level, "message": report.summary(), "delivered": delivered})
    bot_pid = next((step.pid for step in report.steps if step.name == "bot"), None)
    journal.update(bot_pid=bot_pid, alerts=alerts, gateway_requested=gateway,
                   steps=[asdict(step) for step in report.steps])
    journal.finish("shutdown", report.exit_code, report.summary(), own_checkpoint=False)
    return report


def _kill(pid: int, signum: signal.Signals) -> None:
    try:
        if os.getpgid(pid) == pid:  # a bot the orchestrator started leads its own group: wrappers and children too
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass  # already gone: the lock check that follows says so


def _released(state_dir: Path, pid: int, seconds: float, clock: Callable[[], float]) -> bool:
    """True once `pid` no longer holds state/bot.pid, within `seconds`."""
    deadline = clock() + seconds
    while running_bot(state_dir) == pid:
        if clock() >= deadline:
            return False
        time.sleep(POLL)
    return True


def _remove_stale_ready_record(state_dir: Path, pid: int) -> None:
    """A killed bot could not remove its readiness record; nobody may read it as live."""
    path = state_dir / READY_FILE
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


DESCRIPTION = ("Stop the bot gracefully (SIGTERM, a bounded wait, then SIGKILL) and, with --gateway, the Gateway "
               "container. Alerts and journals; safe to run twice. Configuration as for startup (environment and "
               ".env).")
EPILOG = "exit codes: 0 everything requested is stopped (or nothing was running), 1 otherwise (or a usage error)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.ArgumentParser(prog="python -m src.orchestration.ops.shutdown", description=DESCRIPTION,
                                epilog=EPILOG)
    parser.add_argument("--gateway", action="store_true", help="also stop the Gateway container (docker stop)")
    parser.add_argument("--timeout", type=cli.seconds(3600), default=DEFAULT_BOT_TIMEOUT, metavar="S",
                        help=f"seconds the bot gets after SIGTERM before SIGKILL (default {DEFAULT_BOT_TIMEOUT:g})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """CLI entry point: one line per component, then the verdict; exit 0 or 1."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s [%(levelname)s] %(message)s")
    config = config_for_cli("shutdown", environ)
    if config is None:
        return 1
    notifier = DiscordNotifier(config.discord_webhook_url, budget=10.0, username="IBKR Shutdown",
                               mention=config.discord_mention)
    try:
        report = shutdown(config, gateway=args.gateway, timeout=args.timeout, notifier=notifier)
    except OSError as exc:  # state/ unwritable, disk full
        print(f"shutdown: cannot write run state: {exc.strerror or exc}: fix STATE_DIR", file=sys.stderr)
        return 1
    print(f"shutdown: {'OK' if report.ok else 'FAILED'}: {report.summary()}")
    return report.exit_code


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
