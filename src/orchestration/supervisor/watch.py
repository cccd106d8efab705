"""After the handoff: watch the Gateway, and meet an outage with the start-up's own policy.

The supervisor loop calls `GatewayWatch.tick(seen)` on every turn with what it sees (the
container's state from Docker events or inspect, the bot's connection state from its
readiness record). While the bot is connected there is nothing to do. Otherwise an `Outage`
opens, and:

* inside one of IBKR's reset windows (IBKR_RESET_WINDOWS, plus the Gateway's own
  AUTO_RESTART_TIME) it is logged and shown in STATUS=, never alerted and never acted on: a login
  there would fail too;
* a dead container (outside a window) is met at once: IBC's log since its last start is read
  (2FA pending, rejected, existing session, exit 87/88 -> no restart, a critical alert), else one
  restart paid from the login budget (spent: the Gateway is left alone, one critical alert);
* an API that stays down with the container up (the "port open, API dead" failure) gets the
  same policy once it has been down GATEWAY_DOWN_ALERT_AFTER s (counted from the window's end
  when it began inside one), and at once when IBC shows a pending 2FA (a phone is waiting);
* an API that answers while the bot stays disconnected (IBKR's servers unreachable from the
  Gateway) is alerted after GATEWAY_DOWN_ALERT_AFTER s and never restarted: a restart is a fresh
  login and cannot reach IBKR either.

At most one restart per outage, never while a 2FA push waits, and with GATEWAY_LOGIN_HOURS set
only inside them (outside, the restart waits for them, with one warning); alerts go through the AlertGate
(one per problem, one "Gateway back after N min" when it clears). The bot is never stopped: its
gate is closed while it is disconnected, and it reconnects by itself. Every decision is
recorded (`record`), with its reason. Side effects are the injected collaborators; the clocks
are injected, so tests drive it second by second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from src.core.resetwindows import ResetWindow, new_york_time, next_window_end
from src.notifications.dedupe import AlertGate, describe_duration
from src.orchestration.gateway import ibc
from src.orchestration.gateway.bringup import BroughtUp, bring_up, budget_spent, diagnose_login, login_hours_begin
from src.orchestration.gateway.docker import ContainerState, DockerClient, DockerError
from src.orchestration.gateway.logins import BudgetView, LoginBudget
from src.orchestration.health import IB_LOST, GatewayHealthChecker

log = logging.getLogger(__name__)

# Only `connected` is trading-ready: `degraded` (1100, a frozen API, a failed resync) is a pause like any other,
# alerted once it lasts GATEWAY_DOWN_ALERT_AFTER outside a reset window.
HEALTHY = frozenset({"connected"})
LOOK_EVERY = 5.0  # during an outage: how often IBC's log and the API are looked at again
DEFERRED_LOOK_EVERY = 60.0  # a restart waiting for GATEWAY_LOGIN_HOURS: a look a minute is enough
DOWN, TWOFA, OPERATOR, DEFERRED = "gateway-down", "gateway-2fa", "gateway-operator", "gateway-deferred"
OUTAGE_KEYS = (DOWN, TWOFA, OPERATOR, DEFERRED)  # cleared, with one "back after" message, when the bot reconnects


@dataclass(frozen=True)
class Seen:
    """One look at the world: the container (None: gone) and the bot's connection state (None: unknown)."""

    container: ContainerState | None
    bot_connection: str | None
    bot_since: datetime | None = None  # when the bot's connection state last changed (UTC)
    docker_problem: str | None = None  # the container's state is unknown: Docker did not answer (or refused)


@dataclass(frozen=True)
class WatchSettings:
    windows: tuple[ResetWindow, ...]
    alert_after: float  # GATEWAY_DOWN_ALERT_AFTER
    login_timeout: float  # GATEWAY_HEALTH_TIMEOUT: how long a restarted Gateway may take to log in
    twofa_wait: float  # TWOFA_WAIT_TIMEOUT
    login_budget: int  # GATEWAY_LOGIN_BUDGET, for the spent-budget text
    probe_timeout: float  # HEALTH_CHECK_TIMEOUT
    login_hours: tuple[ResetWindow, ...] | None = None  # GATEWAY_LOGIN_HOURS: when a restart may log in; None = any
    soft_restarts: LoginBudget | None = None  # GATEWAY_SOFT_RESTART_BUDGET's record (None or limit 0: no soft rung)


@dataclass
class Outage:
    """One stretch of the bot not being connected, from its first sight to its end."""

    began: float  # monotonic
    began_at: datetime  # wall clock, UTC
    kind: str = "unknown"  # dead | api_down | link_down | weekly_login
    window_end: datetime | None = None  # the last reset window seen during it ended then (UTC)
    restarted: bool = False
    restarted_at: datetime | None = None  # the bot must have (re)connected after this to close the outage
    deadline: float | None = None  # a restart's (or 2FA wait's) deadline, monotonic
    twofa_waited: bool = False
    blocked: str | None = None  # no more automatic action: why
    deferred_to: datetime | None = None  # the restart waits for GATEWAY_LOGIN_HOURS to begin then (UTC)
    tried: list[str] = field(default_factory=list)
    soft_tried: bool = False  # IBC's RESTART was asked for (or could not be): the next rung is the container
    reconnect_tried: bool = False  # IBC's RECONNECTACCOUNT was asked for (a lost link, the API up)
    next_look: float = float("-inf")
    last_seen: ContainerState | None = None  # the container as the last look saw it: a change is looked at at once


class GatewayWatch:
    """The Gateway after the handoff (see the module's docstring)."""

    def __init__(self, *, docker: DockerClient, health: GatewayHealthChecker, logins: LoginBudget,
                 gate: AlertGate, settings: WatchSettings, alert: Callable[..., None],
                 record: Callable[..., None], clock: Callable[[], float], now: Callable[[], datetime],
                 run_id: str) -> None:
        self.docker, self.health, self.logins, self.gate = docker, health, logins, gate
        self.settings, self._alert, self.record = settings, alert, record
        self.clock, self.now, self.run_id = clock, now, run_id
        self.outage: Outage | None = None

    # --- the loop's entry points ------------------------------------------------------------

    def tick(self, seen: Seen) -> str:
        """React to what is seen now; the STATUS= line that says where things stand."""
        mono, now = self.clock(), self.now()
        up = seen.docker_problem is not None or (seen.container is not None and seen.container.up)
        if up and seen.bot_connection in HEALTHY and not self._from_before_the_restart(seen):
            return self._healthy(seen)
        outage = self.outage or self._begin(seen, mono, now)
        if seen.docker_problem is not None:  # act on no state but what Docker says: never blind
            self._raise(DOWN, "critical", f"Gateway down and Docker does not answer ({seen.docker_problem}): "
                        "nothing was touched", title="Gateway DOWN: Docker does not answer",
                        due=self._down_for(outage, now))
            return f"Gateway down, Docker does not answer: {seen.docker_problem}"
        window_end = next_window_end(now, self.settings.windows)
        if window_end is not None:
            if outage.window_end != window_end:
                outage.window_end = window_end
                self.record("in_reset_window", f"outage inside IBKR's reset window until {new_york_time(window_end)}: "
                            "not alerted, not acted on")
            self._pending_approval(seen, outage, mono, now)  # a phone waiting is never expected
            return f"Gateway down inside IBKR's reset window (until {new_york_time(window_end)}): expected"
        if outage.blocked:
            return f"Gateway down, operator needed: {outage.blocked}"
        if seen.container != outage.last_seen:  # e.g. Docker's `die` came after the bot's disconnect
            outage.last_seen, outage.next_look = seen.container, float("-inf")
        if mono < outage.next_look:
            return self._status(outage, mono)
        outage.next_look = mono + LOOK_EVERY
        try:
            if outage.deadline is not None and mono < outage.deadline:
                self._awaiting(seen, outage, mono, now)
            else:
                outage.deadline = None
                self._decide(seen, outage, mono, now)
        except DockerError as exc:
            self._raise(DOWN, "critical", f"Gateway down and Docker does not answer ({exc.message}): nothing "
                        "could be tried", title="Gateway DOWN: Docker does not answer", due=self._down_for(outage, now))
        return self._status(outage, mono)

    def planned_login(self, why: str) -> str:
        """A controlled login (WEEKLY_LOGIN_TIME): one restart, unless something forbids it; what was done."""
        if self.outage is not None:
            return self._skip(why, "the Gateway is already down (its recovery owns it)")
        try:
            state = self.docker.inspect()
            login = diagnose_login(self.docker, state, self.now(), self.settings.windows)
            if login.kind == ibc.TWOFA_PENDING:
                return self._skip(why, "a second-factor approval is already pending (never stacked)")
            if next_window_end(self.now(), self.settings.windows) is not None:
                return self._skip(why, "IBKR's servers are in a reset window (a login would fail)")
            began_at = self.now()
            done = bring_up(self.docker, state, self.logins, self.run_id)
        except DockerError as exc:
            return self._skip(why, f"Docker does not answer ({exc.message})")
        if not isinstance(done, BroughtUp):
            self._budget_spent(done)
            return self._skip(why, "the login budget is spent")
        outage = self.outage = Outage(self.clock(), self.now(), kind="weekly_login", restarted=True,
                                      restarted_at=began_at)
        outage.deadline = outage.began + self.settings.login_timeout + self.settings.twofa_wait
        outage.tried.append(f"{why}: Gateway {done.said}")
        self.record("planned_login", f"{why}: Gateway {done.said} ({self.logins.view().describe()})")
        self._alert("warning", f"{why}: the Gateway was {done.said} for the week's IBKR login; approve the "
                    "second-factor push on your phone now", title="Weekly IBKR login: approve it on your phone")
        return f"{why}: Gateway {done.said}"

    # --- the policy -------------------------------------------------------------------------

    def _begin(self, seen: Seen, mono: float, now: datetime) -> Outage:
        outage = self.outage = Outage(mono, now)
        what = "gone" if seen.container is None else seen.container.describe()
        self.record("outage_began", f"bot connection {seen.bot_connection or 'unknown'}, container {what}")
        log.warning("Gateway outage: the bot is %s, the container %s", seen.bot_connection or "not connected", what)
        return outage

    def _pending_approval(self, seen: Seen, outage: Outage, mono: float, now: datetime) -> None:
        """Inside a reset window nothing is done, but a pending 2FA push is still alerted (IBC's own
        restart after the weekly invalidation asks for one, often inside the nightly window)."""
        if mono < outage.next_look or outage.twofa_waited or seen.container is None or not seen.container.up:
            return
        outage.next_look = mono + LOOK_EVERY
        try:
            login = diagnose_login(self.docker, seen.container, now, self.settings.windows)
        except DockerError:
            return
        if login.kind == ibc.TWOFA_PENDING:
            outage.twofa_waited = True
            outage.deadline = mono + self.settings.twofa_wait
            self._approve(login, "the Gateway is logging in inside IBKR's reset window")

    def _decide(self, seen: Seen, outage: Outage, mono: float, now: datetime) -> None:
        state, name = seen.container, self.docker.container
        down_for = self._down_for(outage, now)
        if state is None or not state.up:
            outage.kind = "dead"
            what = f"Gateway container {name} {'is gone' if state is None else 'is ' + state.describe()}"
            self._act(outage, diagnose_login(self.docker, state, now, self.settings.windows), what, state, now)
            return
        api = self.health.check_handshake(timeout=self.settings.probe_timeout)
        now = self.now()  # a frozen API answers nothing: the probe took its whole deadline, which counts as down
        down_for = self._down_for(outage, now)
        if api.ok or api.reason == IB_LOST:  # the API answers: a restart is a fresh login, which cannot help
            outage.kind = "link_down"
            if down_for >= self.settings.alert_after and not outage.reconnect_tried:
                self._reconnect(outage)  # the ladder's gentlest rung: IBC asks the Gateway to reconnect
            state_word = seen.bot_connection or "not connected"
            self._raise(DOWN, "warning", f"the Gateway's API answers but the bot has been {state_word} "
                        f"for {describe_duration(down_for)} (IBKR's servers unreachable from the Gateway?); "
                        "the Gateway is NOT restarted: a restart is a fresh IBKR login and would not help",
                        title="Trading paused: the bot is not connected", due=down_for)
            return
        outage.kind = "api_down"
        login = diagnose_login(self.docker, state, now, self.settings.windows)
        what = (f"Gateway API down for {describe_duration(down_for)} with container {name} {state.describe()} "
                f"(last probe: {api.describe()})")
        if login.kind == ibc.TWOFA_PENDING or login.no_retry or down_for >= self.settings.alert_after:
            self._act(outage, login, what, state, now)
        else:  # the next look when GATEWAY_DOWN_ALERT_AFTER is reached, not a whole LOOK_EVERY later
            outage.next_look = min(outage.next_look, self.clock() + self.settings.alert_after - down_for)

    def _awaiting(self, seen: Seen, outage: Outage, mono: float, now: datetime) -> None:
        """A restart (or a 2FA wait) is under way: only a pending 2FA or a no-retry verdict changes it."""
        login = diagnose_login(self.docker, seen.container, now, self.settings.windows)
        if login.kind == ibc.TWOFA_PENDING and not outage.twofa_waited:
            outage.twofa_waited = True
            outage.deadline = max(outage.deadline or mono, mono + self.settings.twofa_wait)
            self._approve(login, "the Gateway is logging in again")
        elif login.no_retry:
            self._block(outage, f"the Gateway's login failed: {login.describe()}; NOT restarted: operator needed")

    def _act(self, outage: Outage, login: ibc.LoginDiagnosis, what: str, state: ContainerState | None,
             now: datetime) -> None:
        decision = ibc.decide_recovery(login, restart_attempted=outage.restarted, twofa_wait_used=outage.twofa_waited,
                                       twofa_wait=self.settings.twofa_wait)
        self.record("decision", f"{what}: IBC: {login.describe()} -> {decision}")
        if decision == ibc.WAIT_FOR_2FA:
            outage.twofa_waited, outage.deadline = True, self.clock() + self.settings.twofa_wait
            self._approve(login, what)
        elif decision == ibc.BLOCKED:
            never = "; the second-factor approval never came" if login.kind == ibc.TWOFA_PENDING else ""
            self._block(outage, f"{what}{never}: {login.describe()}; NOT restarted: operator needed")
        elif decision == ibc.GIVE_UP:
            tried = "; ".join(outage.tried) or "one restart"
            self._block(outage, f"{what}, after {tried}: operator needed; the Gateway is left as it is "
                        "(another login could lock the account)")
        elif decision == ibc.TRY_LATER:
            self._raise(DOWN, "warning", f"{what}: {login.describe()}; NOT restarted (a login would fail now); "
                        "looking again every few seconds", title="Gateway DOWN", due=self._down_for(outage, now))
        elif outage.kind == "api_down" and not outage.soft_tried and self._soft_restart(outage, what, login):
            return  # the Gateway restarts itself, keeping its session: no login, no push, at any hour
        elif (opens := login_hours_begin(now, self.settings.login_hours)) is not None:
            self._defer(outage, what, login, opens, now)
        else:
            self._restart(outage, what, login, state)

    def _reconnect(self, outage: Outage) -> None:
        """IBC's RECONNECTACCOUNT (the Gateway's Ctrl-Alt-R): the link to IBKR's servers tried again, the
        session and the API untouched. Once per outage; what it did is recorded, and the alert says it."""
        outage.reconnect_tried = True
        try:
            answer = self.docker.ibc_command("RECONNECTACCOUNT")
        except DockerError as exc:
            self.record("reconnect_failed", exc.message)
            return
        outage.tried.append("IBC asked the Gateway to reconnect to IBKR")
        self.record("reconnect", f"RECONNECTACCOUNT: IBC answered {answer[:80]!r}")

    def _soft_restart(self, outage: Outage, what: str, login: ibc.LoginDiagnosis) -> bool:
        """The ladder's first rung for a dead API with the container up: IBC's own RESTART (File > Restart),
        which keeps the session: no login, no 2FA push, no login budget; its own daily cap. False: not
        possible (cap spent, command server silent): the container restart comes next."""
        outage.soft_tried = True
        budget = self.settings.soft_restarts
        if budget is None or budget.limit == 0:
            return False
        view = budget.view()
        if view.left == 0:
            self.record("soft_restart_skipped", f"{what}: {view.describe().replace('logins', 'soft restarts')}")
            return False
        budget.spend("ibc_restart", self.run_id)
        try:
            answer = self.docker.ibc_command("RESTART")
        except DockerError as exc:
            self.record("soft_restart_failed", f"{what}: {exc.message}: the container restart comes next")
            return False
        if not answer.startswith("OK"):
            self.record("soft_restart_failed",
                        f"{what}: IBC answered {answer[:120]!r}: the container restart comes next")
            return False
        outage.deadline = self.clock() + self.settings.login_timeout
        outage.tried.append("IBC restarted the Gateway (no login)")
        self.record("soft_restart", f"{what}: IBC answered {answer[:80]!r}; waiting {self.settings.login_timeout:g} s "
                    "for the API (the session kept: no login, no 2FA push)")
        self._raise(DOWN, "warning", f"{what}: {login.describe()}; IBC restarted the Gateway (its own restart: the "
                    "session kept, no login, no 2FA push); trading is paused until the bot reconnects",
                    title="Gateway API DOWN: soft restart")
        return True

    def _defer(self, outage: Outage, what: str, login: ibc.LoginDiagnosis, opens: datetime, now: datetime) -> None:
        """Outside GATEWAY_LOGIN_HOURS the one restart waits: a 2FA push nobody can approve at night
        would be lost, and the login with it."""
        if outage.deferred_to != opens:
            outage.deferred_to = opens
            self.record("restart_deferred", f"{what}: {login.describe()} -> restart at {new_york_time(opens)}, "
                        "when GATEWAY_LOGIN_HOURS begin")
        self._raise(DEFERRED, "warning", f"{what}: {login.describe()}; NOT restarted now: outside "
                    "GATEWAY_LOGIN_HOURS (a restart is a fresh IBKR login, on a live account a 2FA push on your "
                    f"phone); the one automatic restart comes at {new_york_time(opens)}, or restart the Gateway "
                    "yourself sooner", title="Gateway DOWN: the restart waits for the login hours")
        outage.next_look = self.clock() + min(DEFERRED_LOOK_EVERY, max(LOOK_EVERY, (opens - now).total_seconds()))

    def _restart(self, outage: Outage, what: str, login: ibc.LoginDiagnosis, state: ContainerState | None) -> None:
        outage.restarted, outage.restarted_at = True, self.now()  # before: a failed attempt is never repeated
        try:
            done = bring_up(self.docker, state, self.logins, self.run_id)
        except DockerError as exc:
            self._block(outage, f"{what}: the one automatic restart failed ({exc.message}): operator needed")
            return
        if not isinstance(done, BroughtUp):
            outage.blocked = "the Gateway login budget is spent"
            self._budget_spent(done)
            return
        outage.deadline = self.clock() + self.settings.login_timeout
        outage.tried.append(f"the Gateway {done.said} once")
        self.record("restart", f"{what}: Gateway {done.said} ({self.logins.view().describe()})")
        self._raise(DOWN, "warning", f"{what}: {login.describe()}; the Gateway was {done.said} (the one automatic "
                    f"restart; {self.logins.view().describe()}); trading is paused until the bot reconnects",
                    title="Gateway DOWN: restarted once")

    def _healthy(self, seen: Seen) -> str:
        outage, self.outage = self.outage, None
        said = [message for key in OUTAGE_KEYS
                if (message := self.gate.clear(key, "Gateway back after {duration}")) is not None]
        if outage is not None:
            took = describe_duration(self.clock() - outage.began)
            tried = "; ".join(outage.tried) or "nothing had to be done"
            self.record("back", f"bot {seen.bot_connection} again after {took} ({outage.kind}; {tried})")
            log.info("Gateway back after %s: the bot is %s (%s)", took, seen.bot_connection, tried)
            if said or outage.blocked or outage.restarted:
                said = [f"Gateway back after {took}"]
            elif outage.kind == "weekly_login":
                said = [f"Weekly IBKR login done: Gateway back after {took}"]
        if said:
            self._alert("info", f"{said[0]}: the bot is {seen.bot_connection}, trading resumes under the plan in force",
                        title="Gateway back")
        return f"Gateway up, bot {seen.bot_connection}"

    # --- alerts and bookkeeping ---------------------------------------------------------------

    def _approve(self, login: ibc.LoginDiagnosis, what: str) -> None:
        self.record("twofa_pending", f"{what}: waiting {self.settings.twofa_wait:g} s for the approval, no restart")
        self._raise(TWOFA, "critical", f"APPROVE THE IBKR LOGIN ON YOUR PHONE: {login.describe()}. {what}; "
                    f"waiting {self.settings.twofa_wait:g} s; the Gateway is NOT restarted (a restart would send a "
                    "second push)",
                    title="IBKR second-factor approval needed")

    def _block(self, outage: Outage, why: str) -> None:
        outage.blocked = why
        self.record("blocked", why)
        self._raise(OPERATOR, "critical", why, title="Gateway DOWN: operator needed")

    def _budget_spent(self, view: BudgetView) -> None:
        text = budget_spent(view, self.settings.login_budget)
        self.record("budget_spent", text)
        if not view.already_alerted():
            self.logins.mark_alerted(view)
            self._alert("critical", text, title="Gateway login budget spent: operator needed")

    def _raise(self, key: str, level: str, message: str, *, title: str, due: float | None = None) -> None:
        """Alert `message` once per open problem `key`; with `due`, only once the outage is that old."""
        if due is not None and due < self.settings.alert_after:
            return
        if self.gate.raise_(key, level, message):
            self._alert(level, message, title=title)

    def _skip(self, why: str, reason: str) -> str:
        self.record("planned_login_skipped", f"{why}: not done: {reason}")
        log.warning("%s: not done: %s", why, reason)
        self._alert("warning", f"{why}: NOT done: {reason}; the heads-up's push will not come now",
                    title="Weekly IBKR login skipped")
        return f"{why}: skipped ({reason})"

    def _from_before_the_restart(self, seen: Seen) -> bool:
        """A "connected" the bot wrote before our restart is stale: the restart dropped it."""
        restarted_at = self.outage.restarted_at if self.outage else None
        return restarted_at is not None and seen.bot_since is not None and seen.bot_since <= restarted_at

    def _down_for(self, outage: Outage, now: datetime) -> float:
        since = max(outage.began_at, outage.window_end) if outage.window_end else outage.began_at
        return max(0.0, (now - since).total_seconds())

    def _status(self, outage: Outage, mono: float) -> str:
        took = describe_duration(mono - outage.began)
        if outage.deadline is not None:
            return f"Gateway down {took} ({outage.kind}): {'; '.join(outage.tried) or 'waiting for the 2FA approval'}"
        if outage.deferred_to is not None and not outage.restarted:
            return (f"Gateway down {took} ({outage.kind}): the restart waits for GATEWAY_LOGIN_HOURS "
                    f"({new_york_time(outage.deferred_to)})")
        return f"Gateway down {took} ({outage.kind})"
