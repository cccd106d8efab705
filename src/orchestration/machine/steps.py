"""The startup handlers' helpers: Docker errors mapped to states, the login-budgeted bring-up, IBC's verdict.

A mixin of `StartupOrchestrator` (startup.py), so that file holds only the machine: the table,
the outcomes and one short handler per state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from src.core.resetwindows import new_york_time
from src.gameplan.schema import Gameplan
from src.orchestration.config import start_timeout
from src.orchestration.gateway import ibc
from src.orchestration.gateway.bringup import BroughtUp, bring_up, budget_spent, diagnose_login, login_hours_begin
from src.orchestration.gateway.docker import (
    DAEMON_DOWN,
    MISSING_BINARY,
    PERMISSION,
    TIMEOUT,
    ContainerState,
    DockerError,
    wait_for_daemon,
)
from src.orchestration.gateway.logins import BudgetView, LoginBudget
from src.orchestration.machine.engine import MachineRun, hold_until
from src.orchestration.machine.handoff import snapshot_plan
from src.orchestration.machine.states import S, StartupState

log = logging.getLogger("src.orchestration.startup")

DOCKER_DOWN_KINDS = {MISSING_BINARY, DAEMON_DOWN, PERMISSION, TIMEOUT}


class StartupSteps(MachineRun):
    """What the handlers share; `logins` is the Gateway login budget."""

    logins: LoginBudget

    def _why_stopped(self, state: ContainerState) -> StartupState | None:
        """A stopped Gateway IBC says a human must fix (exit 87/88, 2FA, rejected...) is not started."""
        login = self._diagnose_login(state)
        what = f"Gateway container {self.services.docker.container} is {state.describe()}: {login.describe()}"
        if login.kind == ibc.RESET_WINDOW:  # a login now would fail too: the supervisor retries later
            self.context.retry_after = login.retry_after
            return self._fail(f"{what}; NOT started", S.FAILURE)
        if login.no_retry or login.kind == ibc.TWOFA_PENDING:
            return self._fail(f"{what}; NOT restarted: operator needed", S.GATEWAY_LOGIN_FAILED)
        return None

    def _wait_for_approval(self, login: ibc.LoginDiagnosis) -> StartupState:
        """A 2FA push is pending: never restart (a second push would be sent); wait TWOFA_WAIT_TIMEOUT more."""
        wait = self.config.twofa_wait_timeout
        self.context.twofa_extension_used, self.context.wait_timeout = True, wait
        self.alert("critical", f"APPROVE THE IBKR LOGIN ON YOUR PHONE: {login.describe()}. Waiting {wait:g} s more; "
                   "the Gateway is NOT restarted (a restart would send a second push)",
                   title="IBKR second-factor approval needed")
        return S.GATEWAY_WAITING

    def _not_restarted(self, decision: str, problem: str, login: ibc.LoginDiagnosis) -> StartupState:
        if decision == ibc.BLOCKED:
            never = "; the second-factor approval never came" if login.kind == ibc.TWOFA_PENDING else ""
            return self._fail(f"{problem}{never}: {login.describe()}; NOT restarted: operator needed",
                              S.GATEWAY_LOGIN_FAILED)
        if decision == ibc.TRY_LATER:
            self.context.retry_after = login.retry_after
            return self._fail(f"{problem}: {login.describe()}; NOT restarted: rerun later", S.GATEWAY_TIMEOUT)
        return self._fail(f"{problem}, after one restart: operator needed", S.GATEWAY_TIMEOUT)

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
        if self.supervise and (opens := login_hours_begin(self.services.now(), self.config.gateway_login_hours)):
            self._hold_for_login_hours(opens)
            current = self._docker(self.services.docker.inspect, failure, on_error)  # as it is after the wait
            if isinstance(current, StartupState):
                return current
            if current is not None and current.up and not (state is not None and state.up):
                log.info("Gateway container %s was started meanwhile: no login of ours", current.name)
                return None
            state = current
        done = self._docker(lambda: bring_up(self.services.docker, state, self.logins, self.journal.run_id),
                            failure, on_error)
        if isinstance(done, BroughtUp):
            container = self.services.docker.container
            self.alert(*(("warning", f"{reason}: restarted the Gateway container (the one automatic restart)")
                         if reason else ("info", f"Gateway container {container} {done.said}")))
            return None
        return done if isinstance(done, StartupState) else self._budget_spent(done)

    def _hold_for_login_hours(self, opens: datetime) -> None:
        """Under --supervise, outside GATEWAY_LOGIN_HOURS the login waits for them (a 2FA push at
        night would go unanswered); a stop signal ends the wait, and the run, without a login."""
        text = (f"the Gateway needs a login (on a live account a 2FA push on your phone) outside "
                f"GATEWAY_LOGIN_HOURS: it is logged in at {new_york_time(opens)}")
        log.warning("Start-up: %s", text)
        self.journal.update(login_held_until=opens.isoformat())
        self.alert("warning", f"{text}; start it yourself sooner if you are up",
                   title="Gateway login waits for the login hours")
        hold_until(opens, status=f"waiting for GATEWAY_LOGIN_HOURS ({new_york_time(opens)}) to log the Gateway in",
                   margin=0.0, now=self.services.now, sleep=self.services.sleep, stopped=lambda: False,
                   then=float(start_timeout(self.config)))  # the start-up after it: its whole budget again

    def _budget_spent(self, view: BudgetView) -> StartupState:
        self.context.error_message = budget_spent(view, self.config.gateway_login_budget)
        if view.already_alerted():
            return S.LOGIN_BUDGET_STILL_SPENT  # the operator was told about this exhaustion already
        self.logins.mark_alerted(view)
        return S.LOGIN_BUDGET_SPENT

    def _diagnose_login(self, state: ContainerState | None) -> ibc.LoginDiagnosis:
        return diagnose_login(self.services.docker, state, self.services.now(), self.config.reset_windows)

    def _hand_over(self) -> tuple[Path, str]:
        snapshot, sha256 = snapshot_plan(self.config.state_dir, self.context.plan_data or b"")
        self.journal.update(gameplan={**self.journal.record["gameplan"], "deployed": str(self.context.gameplan_path),
                                      "snapshot": str(snapshot), "sha256": sha256})
        return snapshot, sha256

    def _plan_in_force(self, path: Path | None, plan: Gameplan, data: bytes | None) -> None:
        ctx = self.context
        ctx.gameplan_path, ctx.plan_data, ctx.plan_strategy, ctx.plan_authorized = \
            path, data, plan.strategy, plan.trading_authorized
