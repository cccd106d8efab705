"""The startup CLI: `python -m src.orchestration.startup [--supervise | --status | --print-...]`.

A thin wrapper: parse, read the configuration (a bad value is one line, exit 1; 78 under
--supervise; also a line in runs.jsonl and one critical alert while it stays bad, when the webhook
itself is valid), wire the real side effects (`real_services`), run the orchestrator, map a state
directory that cannot be written to one line and exit 1. Exit 2 is only ever "bot running
under Strategy C": a usage error exits 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import Protocol

from src.core import cli
from src.core.journal import RunJournal, append_line, utc_now
from src.core.sdnotify import notify
from src.core.statefiles import RUNS_FILE
from src.gameplan.generator import generate_strategy_c
from src.gameplan.loader import evaluate_gameplan
from src.notifications.dedupe import AlertGate
from src.notifications.discord import DiscordNotifier
from src.notifications.dispatch import AlertQueue
from src.notifications.heartbeat import Heartbeat
from src.orchestration import exitcodes
from src.orchestration.config import OrchestrationConfig, Salvage, config_for_cli
from src.orchestration.gateway.docker import DockerClient
from src.orchestration.health import GatewayHealthChecker
from src.orchestration.machine import bot as botproc
from src.orchestration.machine.context import Services
from src.orchestration.ops import deploy, status
from src.orchestration.ops.logsetup import setup_logging


def real_services(config: OrchestrationConfig) -> Services:
    """The side effects of a real run: the docker CLI, the TWS handshake, Discord, the bot process."""
    notifier = DiscordNotifier(config.discord_webhook_url, budget=4.0, request_timeout=3.0,
                               mention=config.discord_mention)
    return Services(
        docker=DockerClient.from_config(config),
        health=GatewayHealthChecker(config.gateway_host, config.gateway_port, config.health_check_timeout,
                                    client_id=config.gateway_health_client_id),
        alerts=AlertQueue(notifier),
        evaluate_gameplan=evaluate_gameplan,
        generate_strategy_c=generate_strategy_c,
        start_bot=botproc.start_bot,
        running_bot=botproc.running_bot,
        heartbeat=Heartbeat(config.heartbeat_url, config.heartbeat_fail_url) if config.heartbeat_url else None,
    )


CONFIG_PROBLEM = "config-invalid"  # the AlertGate key of a configuration that does not validate


def report_config_error(line: str, found: Salvage, code: int) -> None:
    """A configuration that does not validate, told where a remote operator looks: one runs.jsonl line
    (--status shows it) under the STATE_DIR it names (if valid, else the default), and one critical alert
    while it stays the same error, when DISCORD_WEBHOOK_URL itself is valid. Best effort: never raises."""
    now = utc_now()
    notify(f"STATUS=FAILED (exit {code}): {line[:200]}")  # under systemd, its status says what to fix
    record = {"run_id": uuid.uuid4().hex[:12], "pid": os.getpid(), "started_at": now, "ended_at": now,
              "kind": "config", "transitions": [], "outcome": "config_invalid", "exit_code": code, "reason": line}
    try:
        append_line(found.state_dir / RUNS_FILE, record)
    except OSError as exc:
        print(f"startup: cannot record it in {found.state_dir / RUNS_FILE}: {exc.strerror or exc}", file=sys.stderr)
    if not found.discord_webhook_url:
        return
    gate = AlertGate.in_state_dir(found.state_dir)
    known = gate.open_problems().get(CONFIG_PROBLEM)
    if known is not None and known.message != line:
        gate.clear(CONFIG_PROBLEM, "")
    if gate.raise_(CONFIG_PROBLEM, "critical", line):
        logging.getLogger("src.notifications").addHandler(logging.NullHandler())  # stderr has its one line
        notifier = DiscordNotifier(found.discord_webhook_url, budget=4.0, request_timeout=3.0,
                                   mention=found.discord_mention)
        notifier.send("critical", f"{line}: nothing was started; fix it, then start again",
                      title="Startup FAILED: bad configuration")


ALERTED_BEFORE_EXIT = {str(code) for code in exitcodes.NO_RETRY}  # 76-78: the orchestrator alerted already


def systemd_gave_up(config: OrchestrationConfig, env: Mapping[str, str],
                    notifier: DiscordNotifier | None = None) -> int:
    """The OnFailure= unit's run: one critical alert and one runs.jsonl line saying that systemd stopped
    restarting the service, and why (MONITOR_SERVICE_RESULT: start-limit-hit, timeout, signal...). An exit
    the orchestrator alerted itself before it exited (76-78) is journalled only."""
    result = env.get("MONITOR_SERVICE_RESULT", "unknown")
    status_ = env.get("MONITOR_EXIT_STATUS", "")
    reason = (f"systemd stopped restarting ibkr-zero-touch.service (result {result}"
              + (f", exit status {status_}" if status_ else "") + "): the trading system is DOWN; look at "
              "`systemctl status ibkr-zero-touch` and `journalctl -u ibkr-zero-touch`, fix, then "
              "`sudo systemctl reset-failed ibkr-zero-touch && sudo systemctl start ibkr-zero-touch`")
    alert = not (result == "exit-code" and status_ in ALERTED_BEFORE_EXIT)
    journal = RunJournal(config.state_dir)
    journal.update(kind="systemd_gave_up")
    delivered = False
    if alert:
        notifier = notifier or DiscordNotifier(config.discord_webhook_url, budget=10.0, request_timeout=5.0,
                                               mention=config.discord_mention)
        delivered = notifier.send("critical", reason, title="Trading system DOWN: systemd gave up")
    journal.update(alerts=[{"level": "critical", "message": reason, "delivered": delivered}] if alert else [])
    journal.finish("systemd_gave_up", exitcodes.FAILURE, reason, own_checkpoint=False)
    print(f"startup: {reason}", file=sys.stderr)
    return exitcodes.SUCCESS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.ArgumentParser(
        prog="python -m src.orchestration.startup",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Zero-touch startup: start IB Gateway, prove it is logged in, validate today's gameplan "
                    "(or deploy Strategy C), start the bot and confirm it is ready. Configuration comes from "
                    "environment variables and .env (see docs/CONFIGURATION.md).",
        epilog="exit codes:\n  0 bot running on a validated gameplan\n  2 bot running under Strategy C "
               "(no trading)\n  1 failure (the reason is logged and alerted), or a usage error\n"
               "  76, 77, 78 with --supervise only (do not restart): Gateway login budget spent / IBKR login "
               "blocked / bad configuration",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--supervise", action="store_true",
                      help="stay the bot's parent: sd_notify READY=1 once it is ready, graceful stop on SIGTERM, "
                           "non-zero exit if the bot dies (for systemd Type=notify, and to keep WSL alive)")
    mode.add_argument("--status", action="store_true", help="report Gateway, bot, gameplan and last run; exit 0 if up")
    mode.add_argument("--print-systemd-unit", action="store_true", help="print a systemd unit for this checkout")
    mode.add_argument("--print-transitions", action="store_true",
                      help="print the state machine: every state, its handler and where it may lead")
    mode.add_argument("--print-failure-unit", action="store_true",
                      help="print the systemd unit the main unit's OnFailure= starts (an alert when systemd gives up)")
    mode.add_argument("--print-boot-unit", action="store_true",
                      help="print the systemd unit that starts the main unit at boot, once boot has finished")
    mode.add_argument("--systemd-gave-up", action="store_true",
                      help="(run by the OnFailure= unit) alert the operator that systemd stopped restarting "
                           "the service")
    mode.add_argument("--print-task-xml", action="store_true",
                      help="print a Windows Task Scheduler task running this checkout through wsl.exe")
    parser.add_argument("--json", action="store_true", help="with --status: JSON for scripts")
    parser.add_argument("--wsl-distro", default="Ubuntu", help="with --print-task-xml: the WSL distribution")
    return parser.parse_args(argv)


class Orchestrator(Protocol):
    """What the CLI runs: `startup.StartupOrchestrator` (handed in by `startup.main`, the module above this one)."""

    services: Services
    journal: RunJournal

    def handle_signal(self, signum: int, frame: object = None) -> None: ...
    def run(self) -> int: ...
    def redact(self, text: str) -> str: ...


def main(argv: list[str] | None, environ: dict[str, str] | None, orchestrator_for: Callable[..., Orchestrator],
         transitions: Callable[[], str]) -> int:
    """CLI entry point: configuration errors and crashes become one line and a clear exit code. `orchestrator_for`
    builds the start-up's orchestrator, `transitions` renders its machine (`startup.main` gives both)."""
    args = parse_args(argv)
    code = exitcodes.CONFIG if args.supervise else exitcodes.FAILURE
    reporting = not (args.print_transitions or args.status or args.print_systemd_unit or args.print_task_xml
                     or args.print_failure_unit or args.print_boot_unit)
    config = config_for_cli("startup", environ, lambda line, found: report_config_error(line, found, code)
                            if reporting else None)
    if config is None:
        return code
    if reporting:
        AlertGate.in_state_dir(config.state_dir).clear(CONFIG_PROBLEM, "")  # a later bad one alerts again
    if args.status:
        return status.report(config, args.json)
    if args.print_transitions:  # no configuration needed, but a bad one is still reported above
        print(transitions(), end="")
        return exitcodes.SUCCESS
    try:
        if args.print_systemd_unit:
            print(deploy.systemd_unit(config), end="")
            return exitcodes.SUCCESS
        if args.print_task_xml:
            print(deploy.task_xml(distro=args.wsl_distro), end="")
            return exitcodes.SUCCESS
        if args.print_failure_unit:
            print(deploy.failure_unit(config), end="")
            return exitcodes.SUCCESS
        if args.print_boot_unit:
            print(deploy.boot_unit(), end="")
            return exitcodes.SUCCESS
    except deploy.DeployError as exc:
        print(f"startup: {exc}", file=sys.stderr)
        return exitcodes.FAILURE
    if args.systemd_gave_up:
        return systemd_gave_up(config, os.environ if environ is None else environ)
    journal = RunJournal(config.state_dir)
    log_file = setup_logging(config.log_dir, journal.run_id, config.secrets)
    orchestrator = orchestrator_for(config, real_services(config), journal=journal, log_file=log_file,
                                    supervise=args.supervise)
    # SIGHUP too: the wrapper execs us, so a closed wsl.exe session's hang-up reaches us directly
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, orchestrator.handle_signal)
    try:
        code = orchestrator.run()
        heartbeat = orchestrator.services.heartbeat
        if args.supervise and heartbeat is not None and code not in (exitcodes.SUCCESS, exitcodes.STRATEGY_C):
            heartbeat.fail(orchestrator.redact(str(orchestrator.journal.record.get("reason") or f"exit {code}")),
                           wait=5.0)
        return code
    except OSError as exc:  # state/ or logs/ unwritable, disk full
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"startup: cannot write run state{where}: {exc.strerror or exc}: fix STATE_DIR/LOG_DIR",
              file=sys.stderr)
        return exitcodes.FAILURE
