"""Zero-touch startup: bring up IB Gateway, prove it is logged in, pick the gameplan, start the bot.

`StartupOrchestrator` steps through `TRANSITIONS`, a table keyed by `StartupState`:
each state has one short handler that returns the next state, and a next state the
table does not allow is a bug that ends the run in FAILURE. Side effects (docker,
sockets, files, HTTP, processes) sit behind `Services`, so a test replaces one
without patching five.

Exit codes: 0 = bot running on a validated gameplan, 2 = bot running under
Strategy C (no trading), 1 = anything else.

    python -m src.orchestration.startup [--help]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from src.broker.strategy import PrerequisiteError, load_strategy
from src.gameplan.generator import generate_strategy_c
from src.gameplan.loader import GameplanVerdict, evaluate_gameplan, read_emergency_plan
from src.gameplan.schema import Gameplan
from src.notifications.discord import DiscordNotifier, redact
from src.notifications.dispatch import AlertQueue
from src.orchestration import bot as botproc
from src.orchestration import cli, deploy, exitcodes, ibc, status
from src.orchestration.config import REPO_ROOT, ConfigError, OrchestrationConfig
from src.orchestration.docker import (
    DAEMON_DOWN, MISSING_BINARY, PERMISSION, TIMEOUT, ContainerState, DockerClient, DockerError,
)
from src.orchestration.health import GatewayHealthChecker, HandshakeResult, account_problem
from src.orchestration.journal import RunJournal, recover_interrupted
from src.orchestration.locks import LockHeld, PidLock
from src.orchestration.logins import BudgetView, LoginBudget
from src.orchestration.logsetup import setup_logging
from src.atomic_file import write_atomic
from src.orchestration.sdnotify import notify

log = logging.getLogger("src.orchestration.startup")

EXIT_SUCCESS, EXIT_FAILURE, EXIT_STRATEGY_C = exitcodes.SUCCESS, exitcodes.FAILURE, exitcodes.STRATEGY_C
EXIT_LOGIN_BLOCKED, EXIT_CONFIG = exitcodes.LOGIN_BLOCKED, exitcodes.CONFIG  # --supervise only
EXIT_LOGIN_BUDGET_SPENT = exitcodes.LOGIN_BUDGET_SPENT  # --supervise only
DOCKER_DOWN_KINDS = {MISSING_BINARY, DAEMON_DOWN, PERMISSION, TIMEOUT}
INSPECT_EVERY = 5.0  # safety re-inspection while waiting, on top of pushed docker events
PROGRESS_EVERY = 10.0  # how often a long wait says where it is
ALERT_DRAIN = 5.0  # at exit, how long pending alerts may still take
BOT_STOP_GRACE = 20.0  # SIGTERM to SIGKILL, when stopping the bot
DOCKER_WAIT_POLL = 1.0  # how often to ask a Docker daemon that is not up yet
EVENTS_MARGIN = 2.0  # a wait's `docker events` ends this long after its deadline, even if we are killed


class StartupState(Enum):
    INITIALIZING = "initializing"
    GATEWAY_STARTING = "gateway_starting"
    GATEWAY_WAITING = "gateway_waiting"
    GATEWAY_VALIDATED = "gateway_validated"
    GAMEPLAN_LOADING = "gameplan_loading"
    BOT_STARTING = "bot_starting"
    BOT_RUNNING = "bot_running"
    SUCCESS = "success"
    FAILURE = "failure"
    # failure paths of spec §4
    GATEWAY_TIMEOUT = "gateway_timeout"
    GATEWAY_UNHEALTHY = "gateway_unhealthy"
    GAMEPLAN_INVALID = "gameplan_invalid"
    GAMEPLAN_MISSING = "gameplan_missing"
    BOT_START_FAILED = "bot_start_failed"
    DOCKER_UNAVAILABLE = "docker_unavailable"
    GATEWAY_LOGIN_FAILED = "gateway_login_failed"  # IBC says a human must act: never restarted
    LOGIN_BUDGET_SPENT = "login_budget_spent"  # GATEWAY_LOGIN_BUDGET logins caused in 24 h: touch nothing


S = StartupState
TERMINAL = frozenset({S.SUCCESS, S.FAILURE})

# state -> (handler method name, the states it may lead to)
TRANSITIONS: dict[StartupState, tuple[str, frozenset[StartupState]]] = {
    S.INITIALIZING: ("_initialize", frozenset({S.GATEWAY_STARTING, S.DOCKER_UNAVAILABLE, S.FAILURE})),
    S.GATEWAY_STARTING: ("_start_gateway", frozenset({S.GATEWAY_WAITING, S.DOCKER_UNAVAILABLE, S.FAILURE,
                                                       S.GATEWAY_LOGIN_FAILED, S.LOGIN_BUDGET_SPENT})),
    S.GATEWAY_WAITING: ("_wait_for_gateway",
                        frozenset({S.GATEWAY_VALIDATED, S.GATEWAY_UNHEALTHY, S.DOCKER_UNAVAILABLE})),
    S.GATEWAY_UNHEALTHY: ("_recover_gateway", frozenset({S.GATEWAY_WAITING, S.GATEWAY_TIMEOUT,
                                                         S.GATEWAY_LOGIN_FAILED, S.DOCKER_UNAVAILABLE,
                                                         S.LOGIN_BUDGET_SPENT})),
    S.GATEWAY_VALIDATED: ("_validate_gateway", frozenset({S.GAMEPLAN_LOADING, S.FAILURE})),
    S.GAMEPLAN_LOADING: ("_load_gameplan", frozenset({S.BOT_STARTING, S.GAMEPLAN_INVALID, S.GAMEPLAN_MISSING})),
    S.GAMEPLAN_INVALID: ("_deploy_strategy_c", frozenset({S.BOT_STARTING, S.FAILURE})),
    S.GAMEPLAN_MISSING: ("_deploy_strategy_c", frozenset({S.BOT_STARTING, S.FAILURE})),
    S.BOT_STARTING: ("_start_bot", frozenset({S.BOT_RUNNING, S.BOT_START_FAILED})),
    S.BOT_RUNNING: ("_finalize", frozenset({S.SUCCESS})),
    S.GATEWAY_TIMEOUT: ("_fail", frozenset({S.FAILURE})),
    S.GATEWAY_LOGIN_FAILED: ("_fail", frozenset({S.FAILURE})),
    S.BOT_START_FAILED: ("_fail", frozenset({S.FAILURE})),
    S.DOCKER_UNAVAILABLE: ("_fail", frozenset({S.FAILURE})),
    S.LOGIN_BUDGET_SPENT: ("_fail", frozenset({S.FAILURE})),
}


@dataclass
class StartupContext:
    """What the run has learned so far; handlers read and write it."""

    state: StartupState = S.INITIALIZING
    gateway_restart_attempted: bool = False
    twofa_extension_used: bool = False
    wait_timeout: float | None = None  # the next GATEWAY_WAITING's budget, when not the configured one
    gateway_problem: str | None = None
    gateway_verdict: HandshakeResult | None = None
    gameplan_verdict: GameplanVerdict | None = None
    gameplan_path: Path | None = None  # the plan file decided on (the analyst's, or Strategy C)
    plan_data: bytes | None = None  # its exact bytes as validated: snapshotted for the bot
    plan_strategy: str | None = None
    plan_authorized: bool = False
    strategy_c_reason: str | None = None
    bot_pid: int | None = None
    bot_log: Path | None = None
    bot_process: Any = None  # the bot's Popen, kept for --supervise
    error_message: str | None = None
    alert_failure: bool = True  # False when no human is needed (e.g. the bot is already up)
    supervise_code: int | None = None  # the do-not-restart exit code under --supervise, if any


@dataclass
class Services:
    """Every side effect the state handlers use; replace any one in a test."""

    docker: DockerClient
    health: GatewayHealthChecker
    alerts: AlertQueue
    evaluate_gameplan: Callable[[Path | None], GameplanVerdict]
    generate_strategy_c: Callable[[Path], Any]
    start_bot: Callable[..., botproc.BotStart]
    running_bot: Callable[[Path], int | None]
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)  # wall clock, for IBKR's reset windows
    read_emergency: Callable[[Path], tuple[Gameplan, bytes]] = read_emergency_plan
    logins: LoginBudget | None = None  # None: the configured budget in STATE_DIR

    @classmethod
    def real(cls, config: OrchestrationConfig) -> Services:
        notifier = DiscordNotifier(config.discord_webhook_url, budget=4.0, request_timeout=3.0)
        return cls(
            docker=DockerClient.from_config(config),
            health=GatewayHealthChecker(config.gateway_host, config.gateway_port, config.health_check_timeout,
                                        client_id=config.gateway_health_client_id),
            alerts=AlertQueue(notifier),
            evaluate_gameplan=evaluate_gameplan,
            generate_strategy_c=generate_strategy_c,
            start_bot=botproc.start_bot,
            running_bot=botproc.running_bot,
        )


class Interrupted(Exception):
    """SIGTERM or SIGINT arrived while the machine was running."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signame = signal.Signals(signum).name


class StartupOrchestrator:
    """Runs the startup state machine once and returns an exit code.

    With `supervise=True` it then stays the bot's parent (systemd Type=notify, or
    keeping a WSL distro alive): READY=1 once the bot is ready, a graceful stop on
    SIGTERM, and a non-zero exit if the bot dies so the supervisor restarts it.
    """

    def __init__(self, config: OrchestrationConfig, services: Services | None = None,
                 journal: RunJournal | None = None, log_file: Path | None = None,
                 supervise: bool = False) -> None:
        self.config = config
        self.services = services or Services.real(config)
        self.journal = journal or RunJournal(config.state_dir)
        self.log_file = log_file
        self.supervise = supervise
        self.context = StartupContext()
        self.logins = self.services.logins or LoginBudget(config.state_dir, config.gateway_login_budget)
        self._lock = PidLock(config.state_dir / "orchestrator.lock")
        self._wake = threading.Event()
        self._stop = threading.Event()  # supervision: a stop signal or the bot's exit
        self._signal: str | None = None
        self._phase = "startup"  # startup -> concluding -> supervising

    def handle_signal(self, signum: int, frame: object = None) -> None:
        """SIGTERM/SIGINT: abort the start-up (exit 1), or end supervision gracefully."""
        self._signal = signal.Signals(signum).name
        if self._phase == "startup":
            raise Interrupted(signum)
        self._stop.set()  # concluding: finish writing first; supervising: stop the bot

    # --- the machine ----------------------------------------------------------------

    def run(self) -> int:
        """Execute the whole sequence; raises only OSError when state/ cannot be written (exit 1 in main)."""
        self.journal.update(log_file=str(self.log_file) if self.log_file else None)
        try:
            try:
                self._lock.acquire()
            except LockHeld as held:
                return self._refuse(f"another orchestrator is already running (PID {held.pid or 'unknown'})")
            recovered = recover_interrupted(self.config.state_dir)
            if recovered:
                log.warning("Previous run %s ended abruptly; recorded it as interrupted", recovered.get("run_id"))
            code = self._run_machine()
            if self.supervise and code in (EXIT_SUCCESS, EXIT_STRATEGY_C):
                code = self._supervise()
            return code
        except OSError as exc:  # state/ unwritable or full: no journal, so say it everywhere else
            where = f" ({exc.filename})" if exc.filename else ""
            reason = f"cannot write run state{where}: {exc.strerror or exc}: fix STATE_DIR/LOG_DIR"
            log.error("Startup failed: %s", reason)
            self._alert("critical", f"Startup failed: {reason}", title="Startup FAILED: operator needed")
            self.services.alerts.flush(ALERT_DRAIN)
            raise
        finally:
            # _conclude and _supervise already waited ALERT_DRAIN: a hung webhook delays the exit once
            self.services.alerts.close(ALERT_DRAIN if self._phase == "startup" else 0)
            self._lock.release()

    def _run_machine(self) -> int:
        log.info("Zero-touch startup %s: starting", self.journal.run_id)
        try:
            while self.context.state not in TERMINAL:
                self.step()
        except Interrupted as stop:
            self._phase = "concluding"  # a second signal must not interrupt the clean-up below
            where = self.context.state.name
            log.error("Interrupted by %s in state %s", stop.signame, where)
            left = self._stop_started_bot()
            self.context.error_message = f"interrupted by {stop.signame} in state {where}: {left}"
            self.context.state = S.FAILURE
        except Exception as exc:  # the last line of defence: one sentence, a traceback in the log only
            log.error("Orchestrator crashed in state %s: %s", self.context.state.name,
                      self._redact(f"{type(exc).__name__}: {exc}"), exc_info=True)
            left = self._stop_started_bot()  # exit 1 promises nothing is trading
            self.context.error_message = (
                f"orchestrator crashed in {self.context.state.name}: {type(exc).__name__}: {exc}: {left}"
            )
            self.context.state = S.FAILURE
        return self._conclude()

    def _stop_started_bot(self) -> str:
        """Exit 1 says nothing is trading: stop a bot this run already started."""
        proc = self.context.bot_process
        if proc is None or proc.poll() is not None:
            return "nothing was left half-started"
        botproc.stop_process(proc, grace=BOT_STOP_GRACE)
        return f"the bot it had started (PID {self.context.bot_pid}) was stopped"

    def step(self) -> None:
        """Run the current state's handler and take the transition it returns."""
        source = self.context.state
        entered = self.services.clock()
        if source not in TRANSITIONS:
            raise RuntimeError(f"no handler for state {source.name}")
        handler_name, allowed = TRANSITIONS[source]
        target = getattr(self, handler_name)()
        if target not in allowed:
            self.context.error_message = f"internal error: transition {source.name} -> {target} is not in the table"
            target = S.FAILURE
        spent = self.services.clock() - entered
        log.info("%s -> %s (%.3f s in %s)", source.name, target.name, spent, source.name)
        self.journal.transition(source.name, target.name, spent)
        self.context.state = target
        notify(f"STATUS={target.name}")

    def _conclude(self) -> int:
        self._phase = "concluding"
        ctx = self.context
        if ctx.state is S.SUCCESS:
            code, outcome = (EXIT_STRATEGY_C, "strategy_c") if ctx.strategy_c_reason else (EXIT_SUCCESS, "success")
            reason = ctx.strategy_c_reason
        else:
            code, outcome, reason = EXIT_FAILURE, "failure", ctx.error_message or "unknown failure"
            if self.supervise and ctx.supervise_code is not None:
                code = ctx.supervise_code  # systemd: RestartPreventExitStatus
            log.error("Startup failed: %s", self._redact(reason))
            if ctx.alert_failure:
                self._alert("critical", f"Startup failed: {reason}", title="Startup FAILED: operator needed")
        self.services.alerts.flush(ALERT_DRAIN)
        self.journal.update(
            bot_pid=ctx.bot_pid, bot_log=str(ctx.bot_log) if ctx.bot_log else None,
            alerts=[{"level": lvl, "message": self._redact(msg), "delivered": ok}
                    for lvl, msg, ok in self.services.alerts.sent],
        )
        self.journal.finish(outcome, code, self._redact(reason) if reason else None)
        log.info("Exit %d (%s)", code, outcome)
        return code

    def _refuse(self, reason: str) -> int:
        """A run that must not touch anything: journal it (append only) and exit 1."""
        log.error("%s: nothing was changed", reason)
        self.services.alerts.close(0)
        self.journal.finish("refused", EXIT_FAILURE, reason, own_checkpoint=False)
        return EXIT_FAILURE

    def _supervise(self) -> int:
        """Stay the bot's parent until SIGTERM/SIGINT (exit 0) or the bot's death (exit 1)."""
        ctx, proc = self.context, self.context.bot_process
        self._phase = "supervising"
        record = RunJournal(self.config.state_dir, run_id=self.journal.run_id)
        record.update(phase="supervise", bot_pid=ctx.bot_pid, bot_log=str(ctx.bot_log))
        mode = "Strategy C, no trading" if ctx.strategy_c_reason else "validated gameplan"
        notify(f"READY=1\nSTATUS=bot PID {ctx.bot_pid} running ({mode})")
        log.info("Supervising the bot (PID %s) until SIGTERM", ctx.bot_pid)

        def wait_for_the_bot() -> None:
            proc.wait()
            self._stop.set()

        threading.Thread(target=wait_for_the_bot, name="bot-wait", daemon=True).start()
        self._stop.wait()
        if self._signal:
            notify(f"STOPPING=1\nSTATUS=stopping on {self._signal}")
            bot_code = botproc.stop_process(proc, grace=BOT_STOP_GRACE)
            reason = f"stopped by {self._signal}: the bot exited with code {bot_code}"
            if self.config.supervise_stop_gateway:
                reason += "; " + self._stop_gateway()
            code, outcome = EXIT_SUCCESS, "stopped"
            self._alert("info", f"Trading system stopped ({reason})")
        else:
            reason = f"the bot exited unexpectedly with code {proc.returncode}{self._bot_log_excerpt()}"
            code, outcome = EXIT_FAILURE, "bot_died"
            self._alert("critical", reason, title="Bot DIED: the supervisor will restart the service")
        log.log(logging.INFO if code == EXIT_SUCCESS else logging.ERROR, "Supervision ended: %s", self._redact(reason))
        self.services.alerts.flush(ALERT_DRAIN)
        record.finish(outcome, code, self._redact(reason), own_checkpoint=False)
        return code

    def _stop_gateway(self) -> str:
        try:
            self.services.docker.stop()
            return f"Gateway container {self.services.docker.container} stopped"
        except DockerError as exc:
            return f"the Gateway could not be stopped: {exc.message}"

    # --- handlers: one per state ----------------------------------------------------

    def _initialize(self) -> StartupState:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        pid = self.services.running_bot(cfg.state_dir)
        if pid is not None:
            self.context.alert_failure = False
            self.context.error_message = (
                f"the bot is already running (PID {pid}): nothing was restarted; "
                "stop it first (python -m src.orchestration.shutdown) to start afresh"
            )
            return S.FAILURE
        if not cfg.discord_webhook_url:
            log.warning("DISCORD_WEBHOOK_URL not set: alerts go to the log only")
        try:
            load_strategy(cfg.bot_strategy)  # importable and implements the protocol, before anything runs
        except PrerequisiteError as exc:
            self.context.error_message = f"BOT_STRATEGY: {exc}"
            self.context.supervise_code = EXIT_CONFIG
            return S.FAILURE
        try:
            version = self._wait_for_docker()
        except DockerError as exc:
            return self._docker_down(exc)
        log.info("Docker Engine %s answering", version)
        return S.GATEWAY_STARTING

    def _wait_for_docker(self) -> str:
        """Ask the daemon until it answers or DOCKER_WAIT_TIMEOUT passes (Docker Desktop after logon)."""
        clock, started = self.services.clock, self.services.clock()
        deadline = started + self.config.docker_wait_timeout
        while True:
            try:
                version = self.services.docker.ping(timeout=max(1.0, min(10.0, deadline - clock())))
                waited = clock() - started
                self.journal.update(docker_wait_seconds=round(waited, 3))
                return version
            except DockerError as exc:
                left = deadline - clock()
                if exc.kind == PERMISSION or left <= 0:
                    self.journal.update(docker_wait_seconds=round(clock() - started, 3))
                    raise
                if clock() - started < DOCKER_WAIT_POLL:
                    log.warning("Docker not available yet (%s): waiting up to %.0f s (DOCKER_WAIT_TIMEOUT)",
                                exc.message, left)
                self._wake.wait(min(DOCKER_WAIT_POLL, left))

    def _start_gateway(self) -> StartupState:
        docker = self.services.docker
        try:
            state = docker.inspect()
            if state is not None and state.up:
                log.info("Gateway container %s already %s", docker.container, state.describe())
            elif state is not None and state.status == "restarting":
                log.info("Gateway container %s is being restarted by Docker", docker.container)
            else:
                if state is not None:  # why did it stop? IBC's exit code and log since its last start
                    login = self._diagnose_login(state)
                    what = f"Gateway container {docker.container} is {state.describe()}: {login.describe()}"
                    if login.no_retry or login.kind == ibc.TWOFA_PENDING:
                        return self._login_blocked(what)
                    if login.kind == ibc.RESET_WINDOW:  # a login now would fail too: the supervisor retries
                        self.context.error_message = f"{what}; NOT started"
                        return S.FAILURE
                return self._bring_up(state) or S.GATEWAY_WAITING
        except DockerError as exc:
            if exc.kind in DOCKER_DOWN_KINDS:
                return self._docker_down(exc)
            self.context.error_message = f"the Gateway could not be started: {exc.message}"
            return S.FAILURE
        return S.GATEWAY_WAITING

    def _wait_for_gateway(self) -> StartupState:
        """Poll the handshake until the deadline; Docker events wake the loop at once."""
        cfg, clock, docker = self.config, self.services.clock, self.services.docker
        budget = self.context.wait_timeout or cfg.gateway_health_timeout
        self.context.wait_timeout = None
        deadline = clock() + budget
        self._wake.clear()
        watcher = docker.watch(lambda action: self._wake.set(), until=time.time() + budget + EVENTS_MARGIN)
        try:
            state, inspected_at, last_said = docker.inspect(), clock(), clock()
            while True:
                if self._wake.is_set() or clock() - inspected_at >= INSPECT_EVERY:
                    self._wake.clear()
                    state, inspected_at = docker.inspect(), clock()
                if state is None or not state.up:
                    what = "gone" if state is None else state.describe()
                    self.context.gateway_problem = f"Gateway container {docker.container} is {what}"
                    return S.GATEWAY_UNHEALTHY
                left = deadline - clock()
                result = self.services.health.check_handshake(
                    timeout=min(cfg.health_check_timeout, max(left, 0.0) + 0.5))
                now = clock()
                # our handshake decides; Docker's health is not waited for, only an `unhealthy` doubts it
                # (and not at the deadline: healthy at the deadline is success)
                if result.ok and (state.health != "unhealthy" or now >= deadline):
                    self.context.gateway_verdict = result
                    self.journal.update(gateway={"handshake": result.describe(), "docker_health": state.health})
                    return S.GATEWAY_VALIDATED
                if result.ok:  # API up while Docker says unhealthy: look again soon
                    inspected_at = float("-inf")
                if now >= deadline:
                    self.context.gateway_problem = (
                        f"Gateway not healthy within {budget:g} s "
                        f"(last probe: {result.describe()}; container {state.describe()})")
                    return S.GATEWAY_UNHEALTHY
                if now - last_said >= PROGRESS_EVERY:
                    log.info("Waiting for the Gateway: %s (%.0f s left)", result.describe(), deadline - now)
                    last_said = now
                self._wake.wait(min(cfg.gateway_health_retry_interval, deadline - now))
        except DockerError as exc:
            return self._docker_down(exc) if exc.kind in DOCKER_DOWN_KINDS else self._unhealthy(exc.message)
        finally:
            watcher.close()

    def _recover_gateway(self) -> StartupState:
        ctx, docker = self.context, self.services.docker
        problem = ctx.gateway_problem or "Gateway unhealthy"
        login = self._diagnose_login(None)
        if login.kind == ibc.TWOFA_PENDING:
            if ctx.twofa_extension_used or self.config.twofa_wait_timeout <= 0:
                return self._login_blocked(f"{problem}; the second-factor approval never came: {login.describe()}")
            ctx.twofa_extension_used = True
            ctx.wait_timeout = self.config.twofa_wait_timeout
            self._alert("critical", f"APPROVE THE IBKR LOGIN ON YOUR PHONE: {login.describe()}. Waiting "
                        f"{self.config.twofa_wait_timeout:g} s more; the Gateway is NOT restarted (a restart "
                        "would send a second push)", title="IBKR second-factor approval needed")
            return S.GATEWAY_WAITING
        if login.no_retry:
            return self._login_blocked(f"{problem}: {login.describe()}")
        if login.retry_later:  # IBKR's servers: IBC retries by itself; a restart now is a wasted login
            ctx.error_message = f"{problem}: {login.describe()}; NOT restarted: rerun later"
            return S.GATEWAY_TIMEOUT
        if ctx.gateway_restart_attempted:
            ctx.error_message = f"{problem}, after one restart: operator needed"
            return S.GATEWAY_TIMEOUT
        ctx.gateway_restart_attempted = True
        log.warning("%s: restarting it once", problem)
        try:
            spent = self._bring_up(docker.inspect())
            if spent is not None:
                return spent
        except DockerError as exc:
            if exc.kind in DOCKER_DOWN_KINDS:
                return self._docker_down(exc)
            ctx.error_message = f"{problem}; the restart failed: {exc.message}"
            return S.GATEWAY_TIMEOUT
        self._alert("warning", f"{problem}: restarted the Gateway container (the one automatic restart)")
        return S.GATEWAY_WAITING

    def _validate_gateway(self) -> StartupState:
        cfg, verdict = self.config, self.context.gateway_verdict
        problem = account_problem(verdict.accounts if verdict else (), cfg.trading_mode, cfg.expected_accounts)
        if problem:  # the wrong account must never get a bot, and a restart cannot change the account
            self.context.error_message = f"{problem}: no bot started, the Gateway left as it is"
            return S.FAILURE
        log.info("Gateway validated: %s", verdict.describe() if verdict else "handshake ok")
        return S.GAMEPLAN_LOADING

    def _load_gameplan(self) -> StartupState:
        verdict = self.services.evaluate_gameplan(self.config.gameplan_path)
        self.context.gameplan_verdict = verdict
        self.journal.update(gameplan={"path": str(self.config.gameplan_path) if self.config.gameplan_path else None,
                                      "verdict": verdict.kind, "reason": self._redact(verdict.reason),
                                      "deployed": None})
        if verdict.usable and verdict.plan is not None:
            self._plan_in_force(self.config.gameplan_path, verdict.plan, verdict.data)
            log.info("Gameplan %s validated: %s", self.config.gameplan_path, verdict.reason)
            if verdict.plan is not None and not verdict.plan.trading_authorized:
                # the analyst chose no trading: no alert needed, but the exit code says what runs
                self.context.strategy_c_reason = "the gameplan itself grants no trading authority (Strategy C)"
            return S.BOT_STARTING
        self.context.strategy_c_reason = f"gameplan {verdict.kind}: {verdict.reason}"
        log.warning("Gameplan not usable (%s): %s", verdict.kind, verdict.reason)
        return S.GAMEPLAN_MISSING if verdict.kind in ("missing", "not_configured") else S.GAMEPLAN_INVALID

    def _deploy_strategy_c(self) -> StartupState:
        path = self.config.emergency_gameplan_path
        try:
            self.services.generate_strategy_c(path)
            self._plan_in_force(path, *self.services.read_emergency(path))  # read back, validated
        except Exception as exc:
            self.context.error_message = f"Strategy C could not be written to {path}: {type(exc).__name__}: {exc}"
            return S.FAILURE
        self._alert("warning", f"Strategy C deployed (NO trading): {self.context.strategy_c_reason}",
                    title="Strategy C: no trading today until a valid gameplan is provided")
        return S.BOT_STARTING

    def _start_bot(self) -> StartupState:
        cfg, ctx = self.config, self.context
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        ctx.bot_log = cfg.log_dir / f"bot_{stamp}_{self.journal.run_id}.log"
        snapshot, sha256 = self._snapshot_plan()
        args = ["--gateway-host", cfg.gateway_host, "--gateway-port", str(cfg.gateway_port),
                "--gameplan", str(snapshot), "--gameplan-sha256", sha256, "--log-level", cfg.bot_log_level,
                "--client-id", str(cfg.bot_client_id), "--health-client-id", str(cfg.gateway_health_client_id),
                "--state-dir", str(cfg.state_dir), *(["--strategy", cfg.bot_strategy] if cfg.bot_strategy else [])]
        started = self.services.start_bot(cfg.bot_command, args, log_path=ctx.bot_log, state_dir=cfg.state_dir,
                                          cwd=REPO_ROOT, env=cfg.bot_env, ready_timeout=cfg.bot_ready_timeout)
        ctx.bot_pid = started.pid
        ctx.bot_process = started.process
        mismatch = self._plan_mismatch(started.record or {}, sha256) if started.ready else None
        if started.ready and not mismatch:
            log.info("Bot ready (PID %s): %s", started.pid, started.record)
            return S.BOT_RUNNING
        if started.process is not None and started.process.poll() is None:
            botproc.stop_process(started.process, grace=5)  # never leave a half-started bot behind
        ctx.error_message = (f"the bot reports {mismatch}: it was stopped" if mismatch
                             else f"the bot did not start: {started.reason}{self._bot_log_excerpt()}")
        return S.BOT_START_FAILED

    def _finalize(self) -> StartupState:
        ctx = self.context
        mode = f"STRATEGY C (no trading): {ctx.strategy_c_reason}" if ctx.strategy_c_reason else "validated gameplan"
        self._alert("warning" if ctx.strategy_c_reason else "info",
                    f"Trading system up: bot PID {ctx.bot_pid} on {mode}",
                    fields={"gameplan": str(ctx.gameplan_path), "bot log": str(ctx.bot_log)})
        return S.SUCCESS

    def _fail(self) -> StartupState:
        return S.FAILURE

    # --- helpers ----------------------------------------------------------------------

    def _plan_in_force(self, path: Path | None, plan: Gameplan, data: bytes | None) -> None:
        """The plan decided on, and the exact bytes that were validated."""
        ctx = self.context
        ctx.gameplan_path, ctx.plan_data = path, data
        ctx.plan_strategy, ctx.plan_authorized = plan.strategy, plan.trading_authorized

    def _snapshot_plan(self) -> tuple[Path, str]:
        """Write the validated bytes to state/PLAN_FILE (atomically): the bot reads that, never the
        analyst's file, which may be rewritten between validation and the bot's start."""
        data = self.context.plan_data or b""
        sha256 = hashlib.sha256(data).hexdigest()
        snapshot = self.config.state_dir / botproc.PLAN_FILE
        write_atomic(snapshot, data)
        self.journal.update(gameplan={**self.journal.record["gameplan"], "deployed": str(self.context.gameplan_path),
                                      "snapshot": str(snapshot), "sha256": sha256})
        return snapshot, sha256

    def _plan_mismatch(self, record: dict[str, Any], sha256: str) -> str | None:
        """How the bot's readiness record differs from the plan this run validated, or None."""
        ctx = self.context
        expected = {"gameplan_sha256": sha256, "strategy": ctx.plan_strategy, "trading_authorized": ctx.plan_authorized}
        wrong = {k: record.get(k) for k, v in expected.items() if record.get(k) != v}
        if not wrong:
            return None
        return ("a plan other than the one validated: " + ", ".join(f"{k} {v!r} (expected {expected[k]!r})"
                                                                     for k, v in wrong.items()))

    def _bot_log_excerpt(self) -> str:
        """'; log PATH; last lines: ...' for a failure message, so the operator sees why at once."""
        path = self.context.bot_log
        if path is None:
            return ""
        last = botproc.tail(path)
        return f"; log {path}" + (f"; last lines:\n{last}" if last else "")

    def _diagnose_login(self, state: ContainerState | None) -> ibc.LoginDiagnosis:
        """What IBC logged since the container's current (or last) start, never older lines;
        `state` None: inspect it now."""
        docker = self.services.docker
        try:
            state = state or docker.inspect()
            if state is None:
                return ibc.diagnose("")
            exit_code = None if state.running else state.exit_code
            return ibc.diagnose(docker.logs_since(state.started_at), exit_code, now=self.services.now(),
                                windows=self.config.ibkr_reset_windows)
        except DockerError as exc:  # fail closed: a blind restart may stack a second 2FA push
            log.error("cannot read the Gateway's log (%s): not restarting it blind", exc.message)
            return ibc.diagnose_unreadable(exc.message)

    def _bring_up(self, state: ContainerState | None) -> StartupState | None:
        """Create, start or restart the container: each a fresh IBKR login, paid from the budget first.
        Returns LOGIN_BUDGET_SPENT (nothing touched) or None (done)."""
        docker = self.services.docker
        if state is None:
            action, act, said = "create", docker.compose_up, "created and started"
        elif state.up:
            action, act, said = "restart", docker.restart, "restarted"
        else:
            action, act, said = "start", docker.start, f"started (was {state.status})"
        view = self.logins.view()
        if view.left <= 0:
            return self._budget_spent(view)
        self.logins.spend(action, self.journal.run_id)
        log.info("Gateway container %s: %s (an IBKR login; %s)", docker.container, action,
                 self.logins.view().describe())
        act()
        if action != "restart":  # the restart path alerts with its reason
            self._alert("info", f"Gateway container {docker.container} {said}")
        return None

    def _budget_spent(self, view: BudgetView) -> StartupState:
        ctx, cfg = self.context, self.config
        ctx.error_message = (f"Gateway login budget spent: {view.used} logins caused in the last 24 h "
                             f"(GATEWAY_LOGIN_BUDGET={cfg.gateway_login_budget}); the Gateway was NOT touched, so "
                             f"no 2FA push was sent; {view.describe()}: find why the Gateway does not log in "
                             "(docker logs), then rerun")
        ctx.supervise_code = EXIT_LOGIN_BUDGET_SPENT
        if view.alerted_for is not None and view.alerted_for == view.frees_at:
            ctx.alert_failure = False  # the operator was told about this exhaustion already
            log.info("Login budget exhaustion already alerted: not alerting again")
        else:
            self.logins.mark_alerted(view)
        return S.LOGIN_BUDGET_SPENT

    def _login_blocked(self, reason: str) -> StartupState:
        self.context.error_message = f"{reason}; NOT restarted: operator needed"
        self.context.supervise_code = EXIT_LOGIN_BLOCKED
        return S.GATEWAY_LOGIN_FAILED

    def _docker_down(self, exc: DockerError) -> StartupState:
        self.context.error_message = f"Docker unavailable: {exc.message}"
        return S.DOCKER_UNAVAILABLE

    def _unhealthy(self, problem: str) -> StartupState:
        self.context.gateway_problem = problem
        return S.GATEWAY_UNHEALTHY

    def _alert(self, level: str, message: str, *, title: str | None = None,
               fields: dict[str, str] | None = None) -> None:
        fields = {**(fields or {}), "run": self.journal.run_id}
        if self.log_file:
            fields["orchestrator log"] = str(self.log_file)
        self.services.alerts.alert(level, self._redact(message), title=title, fields=fields)

    def _redact(self, text: str) -> str:
        return redact(text, self.config.secrets)


# --- CLI ------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.ArgumentParser(
        prog="python -m src.orchestration.startup",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Zero-touch startup: start IB Gateway, prove it is logged in, validate today's gameplan "
                    "(or deploy Strategy C), start the bot and confirm it is ready. Configuration comes from "
                    "environment variables and .env (see README).",
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
    mode.add_argument("--print-task-xml", action="store_true",
                      help="print a Windows Task Scheduler task running this checkout through wsl.exe")
    parser.add_argument("--json", action="store_true", help="with --status: JSON for scripts")
    parser.add_argument("--wsl-distro", default="Ubuntu", help="with --print-task-xml: the WSL distribution")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """CLI entry point: configuration errors and crashes become one line and a clear exit code."""
    args = parse_args(argv)
    try:
        config = OrchestrationConfig.from_env(environ)
    except ConfigError as exc:
        print(f"startup: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG if args.supervise else EXIT_FAILURE
    if args.status:
        return status.main(config, args.json)
    try:
        if args.print_systemd_unit:
            print(deploy.systemd_unit(config), end="")
            return EXIT_SUCCESS
        if args.print_task_xml:
            print(deploy.task_xml(distro=args.wsl_distro), end="")
            return EXIT_SUCCESS
    except deploy.DeployError as exc:
        print(f"startup: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    journal = RunJournal(config.state_dir)
    log_file = setup_logging(config.log_dir, journal.run_id, config.secrets)
    orchestrator = StartupOrchestrator(config, journal=journal, log_file=log_file, supervise=args.supervise)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, orchestrator.handle_signal)
    try:
        return orchestrator.run()
    except OSError as exc:  # state/ or logs/ unwritable, disk full
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"startup: cannot write run state{where}: {exc.strerror or exc}: fix STATE_DIR/LOG_DIR",
              file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
