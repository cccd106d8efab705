"""The Gateway container's two moves: make sure it runs (a login, paid from the budget), and wait for its login.

`bring_up` is the one "make sure the container runs" of the start and the recovery: create it
with Compose, start it, or restart it — each a fresh IBKR login (on live, a 2FA push), so each is
recorded in the login budget before it is caused, and refused when the budget is spent.

`wait_for_login` polls the TWS handshake until a deadline on the injected monotonic clock;
Docker events wake it at once when the container changes state. Validated = our handshake
succeeds and the container runs and is not `unhealthy` (Docker's health is not waited for;
healthy at the deadline is success whatever Docker says).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from src.core.resetwindows import ResetWindow, next_window, window_at
from src.orchestration.gateway import ibc
from src.orchestration.gateway.docker import ContainerState, DockerClient, DockerError
from src.orchestration.gateway.logins import BudgetView, LoginBudget
from src.orchestration.health import GatewayHealthChecker, HandshakeResult

log = logging.getLogger(__name__)

INSPECT_EVERY = 5.0  # safety re-inspection while waiting, on top of pushed docker events
PROGRESS_EVERY = 10.0  # how often a long wait says where it is
EVENTS_MARGIN = 2.0  # a wait's `docker events` ends this long after its deadline, even if we are killed


@dataclass(frozen=True)
class BroughtUp:
    action: str  # create | start | restart
    said: str  # for the alert: "created and started", "started (was exited)", "restarted"


def bring_up(docker: DockerClient, state: ContainerState | None, logins: LoginBudget,
             run_id: str) -> BroughtUp | BudgetView:
    """Create, start or restart the container, paying one login first; the spent budget instead."""
    if state is None:
        action, act, said = "create", docker.compose_up, "created and started"
    elif state.up:
        action, act, said = "restart", docker.restart, "restarted"
    else:
        action, act, said = "start", docker.start, f"started (was {state.status})"
    view = logins.view()
    if view.left <= 0:
        return view
    logins.spend(action, run_id)
    log.info("Gateway container %s: %s (an IBKR login; %s)", docker.container, action, logins.view().describe())
    act()
    return BroughtUp(action, said)


def login_hours_begin(now: datetime, hours: tuple[ResetWindow, ...] | None) -> datetime | None:
    """GATEWAY_LOGIN_HOURS: None when a login we cause may happen now (no hours set, or now inside
    them); else when the next login hours begin (UTC). A login is a 2FA push on a live account:
    outside the hours nobody is there to approve it."""
    if not hours or window_at(now, hours) is not None:
        return None
    upcoming = next_window(now, hours)
    return upcoming.start if upcoming is not None else None


def budget_spent(view: BudgetView, limit: int) -> str:
    """The one line an operator gets when the login budget stops the orchestrator."""
    return (f"Gateway login budget spent: {view.used} logins caused in the last 24 h (GATEWAY_LOGIN_BUDGET="
            f"{limit}); the Gateway was NOT touched, so no 2FA push was sent; {view.describe()}: find why the "
            "Gateway does not log in (docker logs), then rerun")


def diagnose_login(docker: DockerClient, state: ContainerState | None, now: datetime,
                   windows: tuple[ResetWindow, ...]) -> ibc.LoginDiagnosis:
    """What IBC logged since the container's current (or last) start, never older lines; `state`
    None: inspect it now. A log that cannot be read fails closed (no blind restart: it may stack
    a second 2FA push)."""
    try:
        state = state or docker.inspect()
        if state is None:
            return ibc.diagnose("")
        return ibc.diagnose(docker.logs_since(state.started_at), None if state.running else state.exit_code,
                            now=now, windows=windows)
    except DockerError as exc:
        log.error("cannot read the Gateway's log (%s): not restarting it blind", exc.message)
        return ibc.diagnose_unreadable(exc.message)


@dataclass(frozen=True)
class Waited:
    """How a wait ended: `verdict` when validated, else `problem` (one line)."""

    verdict: HandshakeResult | None
    problem: str | None
    docker_health: str | None


def wait_for_login(docker: DockerClient, health: GatewayHealthChecker, budget: float, *, interval: float,
                   probe_timeout: float, clock: Callable[[], float] = time.monotonic,
                   wake: threading.Event | None = None) -> Waited:
    """Probe until validated or `budget` s pass; DockerError propagates (the caller maps it)."""
    wake = wake or threading.Event()
    deadline = clock() + budget
    wake.clear()
    watcher = docker.watch(lambda action: wake.set(), until=time.time() + budget + EVENTS_MARGIN)
    try:
        state, inspected_at, last_said = docker.inspect(), clock(), clock()
        while True:
            if wake.is_set() or clock() - inspected_at >= INSPECT_EVERY:
                wake.clear()
                state, inspected_at = docker.inspect(), clock()
            if state is None or not state.up:
                what = "gone" if state is None else state.describe()
                return Waited(None, f"Gateway container {docker.container} is {what}", None)
            result = health.check_handshake(timeout=min(probe_timeout, max(deadline - clock(), 0.0) + 0.5))
            now = clock()
            if result.ok and (state.health != "unhealthy" or now >= deadline):
                return Waited(result, None, state.health)
            if result.ok:  # API up while Docker says unhealthy: look again soon
                inspected_at = float("-inf")
            if now >= deadline:
                return Waited(None, f"Gateway not healthy within {budget:g} s (last probe: {result.describe()}; "
                                    f"container {state.describe()})", state.health)
            if now - last_said >= PROGRESS_EVERY:
                log.info("Waiting for the Gateway: %s (%.0f s left)", result.describe(), deadline - now)
                last_said = now
            wake.wait(min(interval, deadline - now))
    finally:
        watcher.close()
