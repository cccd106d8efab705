"""Zero-touch startup: bring up IB Gateway, prove it is logged in, pick the gameplan, start the bot.

The machine is `TRANSITIONS` (state -> handler and the states it may lead to), `OUTCOMES` (how
a run that failed from a state ends) and one short handler per state below; `machine/engine.py` runs
it and checks the definition when this module loads. Side effects sit behind `Services`, so a
test replaces one without patching five. `--print-transitions` renders the table
(docs/ARCHITECTURE.md's diagram is that output).

Exit codes: 0 = bot running on a validated gameplan, 2 = bot running under Strategy C (no
trading), 1 = anything else (76/77/78 under --supervise: do not restart).

    python -m src.orchestration.startup [--help]
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path

from src.broker.strategy import PrerequisiteError
from src.core.journal import RunJournal
from src.core.statefiles import SOFT_RESTARTS_FILE
from src.firewall.plan import plan_in_force_now
from src.orchestration import exitcodes
from src.orchestration.config import REPO_ROOT, OrchestrationConfig
from src.orchestration.gateway import ibc
from src.orchestration.gateway.bringup import wait_for_login
from src.orchestration.gateway.docker import DockerError
from src.orchestration.gateway.logins import LoginBudget
from src.orchestration.health import account_problem
from src.orchestration.machine import bot as botproc
from src.orchestration.machine.context import Services, StartupContext
from src.orchestration.machine.engine import Outcome, Row, check_definition, render
from src.orchestration.machine.handoff import bot_args, plan_env, plan_mismatch
from src.orchestration.machine.states import S, StartupState
from src.orchestration.machine.steps import StartupSteps
from src.orchestration.ops import commands
from src.orchestration.supervisor.supervise import supervise as supervise_after_start

log = logging.getLogger(__name__)

__all__ = ["FINAL", "OUTCOMES", "TERMINAL", "TRANSITIONS", "Services", "StartupContext", "StartupOrchestrator",
           "StartupState", "main", "render_transitions"]

_ = frozenset
TRANSITIONS: dict[StartupState, Row] = {
    S.INITIALIZING: Row("_initialize", _({S.GATEWAY_STARTING, S.DOCKER_UNAVAILABLE, S.ALREADY_RUNNING,
                                          S.CONFIG_INVALID, S.ADOPTING})),
    S.ADOPTING: Row("_adopt", _({S.BOT_RUNNING, S.NOT_ADOPTED, S.ALREADY_RUNNING, S.DOCKER_UNAVAILABLE})),
    S.GATEWAY_STARTING: Row("_start_gateway", _({S.GATEWAY_WAITING, S.DOCKER_UNAVAILABLE, S.FAILURE,
                                                 S.GATEWAY_LOGIN_FAILED, S.LOGIN_BUDGET_SPENT,
                                                 S.LOGIN_BUDGET_STILL_SPENT})),
    S.GATEWAY_WAITING: Row("_wait_for_gateway", _({S.GATEWAY_VALIDATED, S.GATEWAY_UNHEALTHY, S.DOCKER_UNAVAILABLE})),
    S.GATEWAY_UNHEALTHY: Row("_recover_gateway", _({S.GATEWAY_WAITING, S.GATEWAY_TIMEOUT, S.GATEWAY_LOGIN_FAILED,
                                                    S.DOCKER_UNAVAILABLE, S.LOGIN_BUDGET_SPENT,
                                                    S.LOGIN_BUDGET_STILL_SPENT})),
    S.GATEWAY_VALIDATED: Row("_validate_gateway", _({S.GAMEPLAN_LOADING, S.WRONG_ACCOUNT})),
    S.GAMEPLAN_LOADING: Row("_load_gameplan", _({S.BOT_STARTING, S.GAMEPLAN_INVALID, S.GAMEPLAN_MISSING})),
    S.GAMEPLAN_INVALID: Row("_deploy_strategy_c", _({S.BOT_STARTING, S.FAILURE})),
    S.GAMEPLAN_MISSING: Row("_deploy_strategy_c", _({S.BOT_STARTING, S.FAILURE})),
    S.BOT_STARTING: Row("_start_bot", _({S.BOT_RUNNING, S.BOT_START_FAILED})),
    S.BOT_RUNNING: Row("_finalize", _({S.SUCCESS})),
    **{state: Row(None, _({S.FAILURE})) for state in (
        S.GATEWAY_TIMEOUT, S.GATEWAY_LOGIN_FAILED, S.BOT_START_FAILED, S.DOCKER_UNAVAILABLE, S.ALREADY_RUNNING,
        S.CONFIG_INVALID, S.WRONG_ACCOUNT, S.LOGIN_BUDGET_SPENT, S.LOGIN_BUDGET_STILL_SPENT, S.NOT_ADOPTED)},
}
FINAL = {S.SUCCESS: "the bot is running: exit 0, or 2 under Strategy C (no trading)",
         S.FAILURE: "nothing is trading: exit 1 (or as below), the reason journalled and alerted"}
OUTCOMES: dict[StartupState, Outcome] = {
    S.ALREADY_RUNNING: Outcome(exitcodes.FAILURE, exitcodes.FAILURE, alert=False),
    S.NOT_ADOPTED: Outcome(exitcodes.FAILURE, exitcodes.FAILURE, alert=True),
    S.CONFIG_INVALID: Outcome(exitcodes.FAILURE, exitcodes.CONFIG, alert=True),
    # the credentials or TRADING_MODE/EXPECTED_ACCOUNTS are wrong: a restart logs in to the same account
    S.WRONG_ACCOUNT: Outcome(exitcodes.FAILURE, exitcodes.CONFIG, alert=True),
    S.GATEWAY_LOGIN_FAILED: Outcome(exitcodes.FAILURE, exitcodes.LOGIN_BLOCKED, alert=True),
    S.LOGIN_BUDGET_SPENT: Outcome(exitcodes.FAILURE, exitcodes.LOGIN_BUDGET_SPENT, alert=True),
    S.LOGIN_BUDGET_STILL_SPENT: Outcome(exitcodes.FAILURE, exitcodes.LOGIN_BUDGET_SPENT, alert=False),
}
TERMINAL = frozenset(FINAL)


def render_transitions() -> str:
    return render(TRANSITIONS, FINAL, OUTCOMES)


class StartupOrchestrator(StartupSteps):
    """Runs the startup state machine once and returns an exit code (then supervises, with `supervise`)."""

    TABLE, FINAL, OUTCOMES, SUCCESS_STATE, FAILURE_STATE = TRANSITIONS, FINAL, OUTCOMES, S.SUCCESS, S.FAILURE
    supervisor = staticmethod(supervise_after_start)  # the phase after a successful start under --supervise

    def __init__(self, config: OrchestrationConfig, services: Services, journal: RunJournal | None = None,
                 log_file: Path | None = None, supervise: bool = False) -> None:
        self.config, self.services = config, services
        self.journal = journal or RunJournal(config.state_dir)
        self.context = StartupContext(S.INITIALIZING)
        self.logins = services.logins or LoginBudget(config.state_dir, config.gateway_login_budget)
        super().__init__(log_file, supervise)

    # --- handlers: one per state ----------------------------------------------------------

    def _initialize(self) -> StartupState:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        pid = self.services.running_bot(cfg.state_dir)
        if pid is not None and self.supervise:
            return S.ADOPTING  # a supervisor that died (or was killed) left its bot: take it over, not refuse
        if pid is not None:
            return self._fail(f"the bot is already running (PID {pid}): nothing was restarted; stop it first "
                              "(python -m src.orchestration.ops.shutdown) to start afresh", S.ALREADY_RUNNING)
        if not cfg.discord_webhook_url:
            log.warning("DISCORD_WEBHOOK_URL not set: alerts go to the log only")
        try:  # importable and implements the protocol, before anything runs; in a child, so it cannot end us
            self.services.check_strategy(cfg.bot_strategy, cwd=REPO_ROOT, env=cfg.bot_env)
        except PrerequisiteError as exc:
            return self._fail(f"BOT_STRATEGY: {exc}", S.CONFIG_INVALID)
        return self._docker(lambda: log.info("Docker Engine %s answering", self._wait_for_docker())) \
            or S.GATEWAY_STARTING

    def _adopt(self) -> StartupState:
        """Take over the running bot this configuration started, once the Gateway answers for the right
        account; its plan in force is what the firewall enforces. Anything doubtful: the operator decides."""
        cfg, ctx = self.config, self.context
        pid = self.services.running_bot(cfg.state_dir)
        proc = self.services.adopt_bot(cfg.state_dir)
        if proc is None or proc.pid != pid:  # e.g. the runtime started by hand: not ours to take over
            return self._fail(f"the bot is already running (PID {pid}), not started by this configuration's "
                              "orchestrator: nothing was restarted; stop it first (python -m "
                              "src.orchestration.ops.shutdown) to start afresh", S.ALREADY_RUNNING)
        state = self._docker(self.services.docker.inspect, "the running bot cannot be adopted")
        if isinstance(state, StartupState):
            return state
        probe = self.services.health.check_handshake()
        problems = [] if state is not None and state.up else [
            f"the Gateway container is {'absent' if state is None else state.describe()}"]
        if not probe.ok:
            problems.append(f"the Gateway's API does not answer ({probe.describe()})")
        elif (wrong := account_problem(probe.accounts, cfg.trading_mode, cfg.expected_accounts)):
            problems.append(wrong)
        if problems:
            return self._fail(f"the bot is running (PID {proc.pid}) but was not adopted: "
                              f"{'; '.join(problems)}; nothing was touched: check it, or stop it "
                              "(python -m src.orchestration.ops.shutdown) to start afresh", S.NOT_ADOPTED)
        in_force = plan_in_force_now(cfg.state_dir)
        if in_force.authority is None or not in_force.authority.authorized:
            ctx.strategy_c_reason = f"adopted under {in_force.reason}"
        ctx.bot_pid, ctx.bot_process, ctx.adopted, ctx.bot_log = proc.pid, proc, True, proc.log
        self.journal.update(adopted={"bot_pid": proc.pid, "plan": in_force.reason})
        log.warning("Supervisor relaunched: adopting the running bot (PID %d) and the Gateway (%s); %s", proc.pid,
                    probe.describe(), in_force.reason)
        return S.BOT_RUNNING

    def _start_gateway(self) -> StartupState:
        docker = self.services.docker
        state = self._docker(docker.inspect, "the Gateway could not be started")
        if isinstance(state, StartupState):
            return state
        if state is not None and (state.up or state.status == "restarting"):
            log.info("Gateway container %s already %s", docker.container, state.describe())
            return S.GATEWAY_WAITING
        return (state is not None and self._why_stopped(state)) or \
            self._bring_up(state, "the Gateway could not be started") or S.GATEWAY_WAITING

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
            return self._wait_for_approval(login)
        if decision != ibc.RESTART:
            return self._not_restarted(decision, problem, login)
        if login.logged_in and not ctx.soft_restart_attempted and self._soft_restart(problem):
            return S.GATEWAY_WAITING  # IBC restarts the Gateway itself, keeping its session: no login, no push
        ctx.gateway_restart_attempted = True
        log.warning("%s: restarting it once", problem)
        state = self._docker(self.services.docker.inspect, f"{problem}; the restart failed", S.GATEWAY_TIMEOUT)
        spent = state if isinstance(state, StartupState) else self._bring_up(
            state, f"{problem}; the restart failed", S.GATEWAY_TIMEOUT, reason=problem)
        return spent or S.GATEWAY_WAITING

    def _soft_restart(self, problem: str) -> bool:
        """The start-up's first rung for a logged-in Gateway whose API does not answer: IBC's RESTART (its
        command server, through docker exec), from GATEWAY_SOFT_RESTART_BUDGET; False: not possible."""
        ctx, cfg = self.context, self.config
        ctx.soft_restart_attempted = True
        budget = LoginBudget(cfg.state_dir, cfg.gateway_soft_restart_budget, file=SOFT_RESTARTS_FILE)
        if cfg.gateway_soft_restart_budget == 0 or budget.view().left == 0:
            return False
        budget.spend("ibc_restart", self.journal.run_id)
        try:
            answer = self.services.docker.ibc_command("RESTART")
        except DockerError as exc:
            log.warning("%s: IBC's soft restart is not possible (%s): the container restart comes next", problem,
                        exc.message)
            return False
        if not answer.startswith("OK"):
            return False
        log.warning("%s: IBC restarts the Gateway itself (%s): no login, no 2FA push", problem, answer)
        self.journal.update(soft_restart={"problem": self.redact(problem), "answer": answer[:80]})
        return True

    def _validate_gateway(self) -> StartupState:
        cfg, verdict = self.config, self.context.gateway_verdict
        problem = account_problem(verdict.accounts if verdict else (), cfg.trading_mode, cfg.expected_accounts)
        if problem:  # the wrong account must never get a bot, and a restart cannot change the account
            return self._fail(f"{problem}: no bot started, the Gateway left as it is", S.WRONG_ACCOUNT)
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
        snapshot, sha256 = self._hand_over()
        # A runtime (notify) gets its arguments and must report the plan it runs; any other bot (api) gets
        # nothing appended, only its environment, and is held to the plan in force at the wire by the firewall.
        runtime = cfg.bot_ready == "notify"
        started = self.services.start_bot(cfg.bot_command, bot_args(cfg, snapshot, sha256) if runtime else [],
                                          log_path=ctx.bot_log, state_dir=cfg.state_dir, cwd=REPO_ROOT,
                                          env={**cfg.bot_env, **plan_env(cfg, snapshot, sha256)},
                                          ready_timeout=cfg.bot_ready_timeout, ready_by=cfg.bot_ready,
                                          client_id=cfg.bot_client_id)
        ctx.bot_pid, ctx.bot_process = started.pid, started.process
        mismatch = started.ready and runtime and plan_mismatch(started.record or {}, sha256, ctx.plan_strategy,
                                                               ctx.plan_authorized)
        if started.ready and not mismatch:
            log.info("Bot ready (PID %s): %s", started.pid, started.record)
            return S.BOT_RUNNING
        if started.process is not None:  # never leave a half-started bot behind
            botproc.stop_process(started.process, grace=5)
        return self._fail(f"the bot reports {mismatch}: it was stopped" if mismatch
                          else f"the bot did not start: {started.reason}{self.bot_log_excerpt()}", S.BOT_START_FAILED)

    def _finalize(self) -> StartupState:
        ctx = self.context
        mode = f"STRATEGY C (no trading): {ctx.strategy_c_reason}" if ctx.strategy_c_reason else "validated gameplan"
        what = (f"Supervisor relaunched: adopted the running bot PID {ctx.bot_pid} (not restarted) on {mode}"
                if ctx.adopted else f"Trading system up: bot PID {ctx.bot_pid} on {mode}")
        self.alert("warning" if ctx.strategy_c_reason or ctx.adopted else "info", what,
                   fields={"gameplan": str(ctx.gameplan_path), "bot log": str(ctx.bot_log)})
        if self.config.read_only_api and not ctx.strategy_c_reason:
            self.journal.update(read_only_api=True)
            self.alert("critical", "The Gateway's API is READ-ONLY (READ_ONLY_API=yes): today's plan grants trading "
                       "authority, yet no order can reach IBKR (the Gateway answers each with error 321). Set "
                       "READ_ONLY_API=no and restart the Gateway, or leave it so on purpose.",
                       title="Read-only API: nothing can trade")
        return S.SUCCESS

check_definition(TRANSITIONS, S.INITIALIZING, FINAL, StartupOrchestrator)


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """The CLI (src.orchestration.ops.commands), running this module's orchestrator."""
    return commands.main(argv, environ, StartupOrchestrator, render_transitions)


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
