"""Zero-touch startup: bring up IB Gateway, prove it is logged in, pick the gameplan, start the bot.

The machine is `TRANSITIONS` (state -> handler and the states it may lead to), `OUTCOMES` (how
a run that failed from a state ends) and one short handler per state below; `machine.py` runs
it and checks the definition when this module loads. Side effects sit behind `Services`, so a
test replaces one without patching five. `--print-transitions` renders the table (the README's
diagram is that output).

Exit codes: 0 = bot running on a validated gameplan, 2 = bot running under Strategy C (no
trading), 1 = anything else (76/77/78 under --supervise: do not restart).

    python -m src.orchestration.startup [--help]
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from src.broker.strategy import PrerequisiteError, load_strategy
from src.gameplan.loader import GameplanVerdict, read_emergency_plan
from src.gameplan.schema import Gameplan
from src.notifications.dispatch import AlertQueue
from src.orchestration import bot as botproc
from src.orchestration import exitcodes, ibc
from src.orchestration.config import REPO_ROOT, OrchestrationConfig
from src.orchestration.docker import (
    DAEMON_DOWN, MISSING_BINARY, PERMISSION, TIMEOUT, ContainerState, DockerClient, DockerError, wait_for_daemon,
)
from src.orchestration.gateway import BroughtUp, bring_up, budget_spent, diagnose_login, wait_for_login
from src.orchestration.handoff import bot_args, plan_mismatch, snapshot_plan
from src.orchestration.health import GatewayHealthChecker, HandshakeResult, account_problem
from src.orchestration.journal import RunJournal
from src.orchestration.logins import BudgetView, LoginBudget
from src.orchestration.machine import Outcome, Row, MachineRun, check_definition, render

log = logging.getLogger(__name__)

DOCKER_DOWN_KINDS = {MISSING_BINARY, DAEMON_DOWN, PERMISSION, TIMEOUT}


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
    # failure paths of spec §4, and the ones live accounts need
    GATEWAY_TIMEOUT = "gateway_timeout"
    GATEWAY_UNHEALTHY = "gateway_unhealthy"
    GAMEPLAN_INVALID = "gameplan_invalid"
    GAMEPLAN_MISSING = "gameplan_missing"
    BOT_START_FAILED = "bot_start_failed"
    DOCKER_UNAVAILABLE = "docker_unavailable"
    ALREADY_RUNNING = "already_running"  # the bot is up: nothing to do, nobody to alert
    CONFIG_INVALID = "config_invalid"  # e.g. BOT_STRATEGY does not import
    GATEWAY_LOGIN_FAILED = "gateway_login_failed"  # IBC says a human must act: never restarted
    LOGIN_BUDGET_SPENT = "login_budget_spent"  # GATEWAY_LOGIN_BUDGET logins in 24 h: touch nothing
    LOGIN_BUDGET_STILL_SPENT = "login_budget_still_spent"  # the same exhaustion, alerted already


S = StartupState
_ = frozenset
TRANSITIONS: dict[StartupState, Row] = {
    S.INITIALIZING: Row("_initialize", _({S.GATEWAY_STARTING, S.DOCKER_UNAVAILABLE, S.ALREADY_RUNNING,
                                          S.CONFIG_INVALID})),
    S.GATEWAY_STARTING: Row("_start_gateway", _({S.GATEWAY_WAITING, S.DOCKER_UNAVAILABLE, S.FAILURE,
                                                 S.GATEWAY_LOGIN_FAILED, S.LOGIN_BUDGET_SPENT,
                                                 S.LOGIN_BUDGET_STILL_SPENT})),
    S.GATEWAY_WAITING: Row("_wait_for_gateway", _({S.GATEWAY_VALIDATED, S.GATEWAY_UNHEALTHY, S.DOCKER_UNAVAILABLE})),
    S.GATEWAY_UNHEALTHY: Row("_recover_gateway", _({S.GATEWAY_WAITING, S.GATEWAY_TIMEOUT, S.GATEWAY_LOGIN_FAILED,
                                                    S.DOCKER_UNAVAILABLE, S.LOGIN_BUDGET_SPENT,
                                                    S.LOGIN_BUDGET_STILL_SPENT})),
    S.GATEWAY_VALIDATED: Row("_validate_gateway", _({S.GAMEPLAN_LOADING, S.FAILURE})),
    S.GAMEPLAN_LOADING: Row("_load_gameplan", _({S.BOT_STARTING, S.GAMEPLAN_INVALID, S.GAMEPLAN_MISSING})),
    S.GAMEPLAN_INVALID: Row("_deploy_strategy_c", _({S.BOT_STARTING, S.FAILURE})),
    S.GAMEPLAN_MISSING: Row("_deploy_strategy_c", _({S.BOT_STARTING, S.FAILURE})),
    S.BOT_STARTING: Row("_start_bot", _({S.BOT_RUNNING, S.BOT_START_FAILED})),
    S.BOT_RUNNING: Row("_finalize", _({S.SUCCESS})),
    **{state: Row(None, _({S.FAILURE})) for state in (
        S.GATEWAY_TIMEOUT, S.GATEWAY_LOGIN_FAILED, S.BOT_START_FAILED, S.DOCKER_UNAVAILABLE, S.ALREADY_RUNNING,
        S.CONFIG_INVALID, S.LOGIN_BUDGET_SPENT, S.LOGIN_BUDGET_STILL_SPENT)},
}
FINAL = {S.SUCCESS: "the bot is running: exit 0, or 2 under Strategy C (no trading)",
         S.FAILURE: "nothing is trading: exit 1 (or as below), the reason journalled and alerted"}
OUTCOMES: dict[StartupState, Outcome] = {
    S.ALREADY_RUNNING: Outcome(exitcodes.FAILURE, exitcodes.FAILURE, alert=False),
    S.CONFIG_INVALID: Outcome(exitcodes.FAILURE, exitcodes.CONFIG, alert=True),
    S.GATEWAY_LOGIN_FAILED: Outcome(exitcodes.FAILURE, exitcodes.LOGIN_BLOCKED, alert=True),
    S.LOGIN_BUDGET_SPENT: Outcome(exitcodes.FAILURE, exitcodes.LOGIN_BUDGET_SPENT, alert=True),
    S.LOGIN_BUDGET_STILL_SPENT: Outcome(exitcodes.FAILURE, exitcodes.LOGIN_BUDGET_SPENT, alert=False),
}
TERMINAL = frozenset(FINAL)


def render_transitions() -> str:
    return render(TRANSITIONS, FINAL, OUTCOMES)


@dataclass
class StartupContext:
    """What the run has learned so far; handlers read and write it."""

    state: StartupState = S.INITIALIZING
    failed_from: StartupState | None = None
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


@dataclass
class Services:
    """Every side effect the state handlers use; replace any one in a test (commands.real_services: the real ones)."""

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


class StartupOrchestrator(MachineRun):
    """Runs the startup state machine once and returns an exit code (then supervises, with `supervise`)."""

    TABLE, FINAL, OUTCOMES, SUCCESS_STATE, FAILURE_STATE = TRANSITIONS, FINAL, OUTCOMES, S.SUCCESS, S.FAILURE

    def __init__(self, config: OrchestrationConfig, services: Services, journal: RunJournal | None = None,
                 log_file: Path | None = None, supervise: bool = False) -> None:
        self.config, self.services = config, services
        self.journal = journal or RunJournal(config.state_dir)
        self.context = StartupContext()
        self.logins = services.logins or LoginBudget(config.state_dir, config.gateway_login_budget)
        super().__init__(log_file, supervise)

    # --- handlers: one per state ----------------------------------------------------------

    def _initialize(self) -> StartupState:
        cfg, ctx = self.config, self.context
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        pid = self.services.running_bot(cfg.state_dir)
        if pid is not None:
            ctx.error_message = (f"the bot is already running (PID {pid}): nothing was restarted; stop it first "
                                 "(python -m src.orchestration.shutdown) to start afresh")
            return S.ALREADY_RUNNING
        if not cfg.discord_webhook_url:
            log.warning("DISCORD_WEBHOOK_URL not set: alerts go to the log only")
        try:
            load_strategy(cfg.bot_strategy)  # importable and implements the protocol, before anything runs
        except PrerequisiteError as exc:
            return self._fail(f"BOT_STRATEGY: {exc}", S.CONFIG_INVALID)
        return self._docker(lambda: log.info("Docker Engine %s answering", self._wait_for_docker())) \
            or S.GATEWAY_STARTING

    def _start_gateway(self) -> StartupState:
        docker = self.services.docker
        state = self._docker(docker.inspect, "the Gateway could not be started")
        if isinstance(state, StartupState):
            return state
        if state is not None and (state.up or state.status == "restarting"):
            log.info("Gateway container %s already %s", docker.container, state.describe())
            return S.GATEWAY_WAITING
        if state is not None:  # why did it stop? IBC's exit code and log since its last start
            login = self._diagnose_login(state)
            what = f"Gateway container {docker.container} is {state.describe()}: {login.describe()}"
            if login.kind == ibc.RESET_WINDOW:  # a login now would fail too: the supervisor retries later
                return self._fail(f"{what}; NOT started", S.FAILURE)
            if login.no_retry or login.kind == ibc.TWOFA_PENDING:
                return self._fail(f"{what}; NOT restarted: operator needed", S.GATEWAY_LOGIN_FAILED)
        return self._bring_up(state, "the Gateway could not be started") or S.GATEWAY_WAITING

    def _wait_for_gateway(self) -> StartupState:
        """Poll the handshake until the deadline; Docker events wake the loop at once."""
        cfg, ctx = self.config, self.context
        budget, ctx.wait_timeout = ctx.wait_timeout or cfg.gateway_health_timeout, None
        waited = self._docker(lambda: wait_for_login(
            self.services.docker, self.services.health, budget, interval=cfg.gateway_health_retry_interval,
            probe_timeout=cfg.health_check_timeout, clock=self.services.clock, wake=self.wake), unhealthy=True)
        if isinstance(waited, StartupState):
            return waited
        if waited.verdict is None:
            ctx.gateway_problem = waited.problem
            return S.GATEWAY_UNHEALTHY
        ctx.gateway_verdict = waited.verdict
        self.journal.update(gateway={"handshake": waited.verdict.describe(), "docker_health": waited.docker_health})
        return S.GATEWAY_VALIDATED

    def _recover_gateway(self) -> StartupState:
        ctx, cfg = self.context, self.config
        problem, login = ctx.gateway_problem or "Gateway unhealthy", self._diagnose_login(None)
        decision = ibc.decide_recovery(login, restart_attempted=ctx.gateway_restart_attempted,
                                       twofa_wait_used=ctx.twofa_extension_used, twofa_wait=cfg.twofa_wait_timeout)
        if decision == ibc.WAIT_FOR_2FA:
            ctx.twofa_extension_used, ctx.wait_timeout = True, cfg.twofa_wait_timeout
            self.alert("critical", f"APPROVE THE IBKR LOGIN ON YOUR PHONE: {login.describe()}. Waiting "
                       f"{cfg.twofa_wait_timeout:g} s more; the Gateway is NOT restarted (a restart would send a "
                       "second push)", title="IBKR second-factor approval needed")
            return S.GATEWAY_WAITING
        if decision != ibc.RESTART:
            never = "; the second-factor approval never came" if login.kind == ibc.TWOFA_PENDING else ""
            return self._fail(*{ibc.BLOCKED: (f"{problem}{never}: {login.describe()}; NOT restarted: operator needed",
                                              S.GATEWAY_LOGIN_FAILED),
                                ibc.TRY_LATER: (f"{problem}: {login.describe()}; NOT restarted: rerun later",
                                                  S.GATEWAY_TIMEOUT),
                                }.get(decision, (f"{problem}, after one restart: operator needed", S.GATEWAY_TIMEOUT)))
        ctx.gateway_restart_attempted = True
        log.warning("%s: restarting it once", problem)
        state = self._docker(self.services.docker.inspect, f"{problem}; the restart failed", S.GATEWAY_TIMEOUT)
        spent = state if isinstance(state, StartupState) else self._bring_up(
            state, f"{problem}; the restart failed", S.GATEWAY_TIMEOUT, reason=problem)
        return spent or S.GATEWAY_WAITING

    def _validate_gateway(self) -> StartupState:
        cfg, verdict = self.config, self.context.gateway_verdict
        problem = account_problem(verdict.accounts if verdict else (), cfg.trading_mode, cfg.expected_accounts)
        if problem:  # the wrong account must never get a bot, and a restart cannot change the account
            return self._fail(f"{problem}: no bot started, the Gateway left as it is", S.FAILURE)
        log.info("Gateway validated: %s", verdict.describe() if verdict else "handshake ok")
        return S.GAMEPLAN_LOADING

    def _load_gameplan(self) -> StartupState:
        path, ctx = self.config.gameplan_path, self.context
        verdict = ctx.gameplan_verdict = self.services.evaluate_gameplan(path)
        self.journal.update(gameplan={"path": str(path) if path else None, "verdict": verdict.kind,
                                      "reason": self.redact(verdict.reason), "deployed": None})
        if verdict.usable and verdict.plan is not None:
            self._plan_in_force(path, verdict.plan, verdict.data)
            log.info("Gameplan %s validated: %s", path, verdict.reason)
            if not verdict.plan.trading_authorized:  # the analyst chose no trading: the exit code says so
                ctx.strategy_c_reason = "the gameplan itself grants no trading authority (Strategy C)"
            return S.BOT_STARTING
        ctx.strategy_c_reason = f"gameplan {verdict.kind}: {verdict.reason}"
        log.warning("Gameplan not usable (%s): %s", verdict.kind, verdict.reason)
        return S.GAMEPLAN_MISSING if verdict.kind in ("missing", "not_configured") else S.GAMEPLAN_INVALID

    def _deploy_strategy_c(self) -> StartupState:
        path = self.config.emergency_gameplan_path
        try:
            self.services.generate_strategy_c(path)
            self._plan_in_force(path, *self.services.read_emergency(path))  # read back, validated
        except Exception as exc:
            return self._fail(f"Strategy C could not be written to {path}: {type(exc).__name__}: {exc}", S.FAILURE)
        self.alert("warning", f"Strategy C deployed (NO trading): {self.context.strategy_c_reason}",
                   title="Strategy C: no trading today until a valid gameplan is provided")
        return S.BOT_STARTING

    def _start_bot(self) -> StartupState:
        cfg, ctx = self.config, self.context
        ctx.bot_log = cfg.log_dir / f"bot_{datetime.now():%Y%m%d_%H%M%S}_{self.journal.run_id}.log"
        snapshot, sha256 = snapshot_plan(cfg.state_dir, ctx.plan_data or b"")
        self.journal.update(gameplan={**self.journal.record["gameplan"], "deployed": str(ctx.gameplan_path),
                                      "snapshot": str(snapshot), "sha256": sha256})
        started = self.services.start_bot(cfg.bot_command, bot_args(cfg, snapshot, sha256), log_path=ctx.bot_log,
                                          state_dir=cfg.state_dir, cwd=REPO_ROOT, env=cfg.bot_env,
                                          ready_timeout=cfg.bot_ready_timeout)
        ctx.bot_pid, ctx.bot_process = started.pid, started.process
        mismatch = plan_mismatch(started.record or {}, sha256, ctx.plan_strategy, ctx.plan_authorized) \
            if started.ready else None
        if started.ready and not mismatch:
            log.info("Bot ready (PID %s): %s", started.pid, started.record)
            return S.BOT_RUNNING
        if started.process is not None and started.process.poll() is None:
            botproc.stop_process(started.process, grace=5)  # never leave a half-started bot behind
        return self._fail(f"the bot reports {mismatch}: it was stopped" if mismatch
                          else f"the bot did not start: {started.reason}{self.bot_log_excerpt()}", S.BOT_START_FAILED)

    def _finalize(self) -> StartupState:
        ctx = self.context
        mode = f"STRATEGY C (no trading): {ctx.strategy_c_reason}" if ctx.strategy_c_reason else "validated gameplan"
        self.alert("warning" if ctx.strategy_c_reason else "info",
                   f"Trading system up: bot PID {ctx.bot_pid} on {mode}",
                   fields={"gameplan": str(ctx.gameplan_path), "bot log": str(ctx.bot_log)})
        return S.SUCCESS

    # --- helpers --------------------------------------------------------------------------

    def _fail(self, reason: str, state: StartupState) -> StartupState:
        self.context.error_message = reason
        return state

    def _docker(self, call: Callable[[], Any], failure: str = "", state: StartupState = S.FAILURE,
                unhealthy: bool = False) -> Any:
        """`call()`'s result; a DockerError becomes DOCKER_UNAVAILABLE, GATEWAY_UNHEALTHY or `state`."""
        try:
            return call()
        except DockerError as exc:
            if exc.kind in DOCKER_DOWN_KINDS:
                return self._fail(f"Docker unavailable: {exc.message}", S.DOCKER_UNAVAILABLE)
            if unhealthy:
                self.context.gateway_problem = exc.message
                return S.GATEWAY_UNHEALTHY
            return self._fail(f"{failure}: {exc.message}", state)

    def _wait_for_docker(self) -> str:
        started = self.services.clock()
        try:
            return wait_for_daemon(self.services.docker, self.config.docker_wait_timeout, clock=self.services.clock,
                                   sleep=self.wake.wait)
        finally:
            self.journal.update(docker_wait_seconds=round(self.services.clock() - started, 3))

    def _bring_up(self, state: ContainerState | None, failure: str, on_error: StartupState = S.FAILURE,
                  reason: str | None = None) -> StartupState | None:
        """Create/start/restart (a login from the budget); a state to go to instead, or None when done."""
        done = self._docker(lambda: bring_up(self.services.docker, state, self.logins, self.journal.run_id),
                            failure, on_error)
        if isinstance(done, BroughtUp):
            container = self.services.docker.container
            self.alert(*(("warning", f"{reason}: restarted the Gateway container (the one automatic restart)")
                         if reason else ("info", f"Gateway container {container} {done.said}")))
            return None
        return done if isinstance(done, StartupState) else self._budget_spent(done)

    def _budget_spent(self, view: BudgetView) -> StartupState:
        self.context.error_message = budget_spent(view, self.config.gateway_login_budget)
        if view.already_alerted():
            return S.LOGIN_BUDGET_STILL_SPENT  # the operator was told about this exhaustion already
        self.logins.mark_alerted(view)
        return S.LOGIN_BUDGET_SPENT

    def _diagnose_login(self, state: ContainerState | None) -> ibc.LoginDiagnosis:
        return diagnose_login(self.services.docker, state, self.services.now(), self.config.ibkr_reset_windows)

    def _plan_in_force(self, path: Path | None, plan: Gameplan, data: bytes | None) -> None:
        ctx = self.context
        ctx.gameplan_path, ctx.plan_data, ctx.plan_strategy, ctx.plan_authorized = \
            path, data, plan.strategy, plan.trading_authorized


check_definition(TRANSITIONS, S.INITIALIZING, FINAL, StartupOrchestrator)


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """The CLI (src.orchestration.commands)."""
    from src.orchestration import commands

    return commands.main(argv, environ)


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
