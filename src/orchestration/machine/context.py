"""What one startup run knows (`StartupContext`) and every side effect it may cause (`Services`).

Kept apart from startup.py so that file is the machine alone. A test replaces one service
without patching five; `commands.real_services` wires the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.broker.strategy import check_strategy
from src.gameplan.loader import GameplanVerdict, read_emergency_plan
from src.gameplan.schema import Gameplan
from src.notifications.dispatch import AlertQueue
from src.notifications.heartbeat import Heartbeat
from src.orchestration.gateway.docker import DockerClient
from src.orchestration.gateway.logins import LoginBudget
from src.orchestration.health import GatewayHealthChecker, HandshakeResult
from src.orchestration.machine import bot as botproc

if TYPE_CHECKING:
    from src.orchestration.machine.states import StartupState


@dataclass
class StartupContext:
    """What the run has learned so far; handlers read and write it."""

    state: StartupState
    failed_from: StartupState | None = None
    gateway_restart_attempted: bool = False
    soft_restart_attempted: bool = False  # IBC's RESTART was tried (or could not be): the container comes next
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
    bot_process: Any = None  # the bot's Popen (or bot.AdoptedProcess), kept for --supervise
    adopted: bool = False  # a relaunched --supervise took over the running bot instead of starting one
    error_message: str | None = None
    retry_after: datetime | None = None  # failed inside IBKR's reset window: a retry is worth it after this (UTC)


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
    adopt_bot: Callable[[Path], Any] = botproc.adopt  # --supervise relaunched: the recorded bot, Popen-like
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = lambda: datetime.now(UTC)  # wall clock, for IBKR's reset windows
    sleep: Callable[[float], object] = time.sleep  # a long wait of the start-up's (GATEWAY_LOGIN_HOURS)
    read_emergency: Callable[[Path], tuple[Gameplan, bytes]] = read_emergency_plan
    logins: LoginBudget | None = None  # None: the configured budget in STATE_DIR
    heartbeat: Heartbeat | None = None  # HEARTBEAT_URL's push monitor (None: not configured)
    check_strategy: Callable[..., None] = check_strategy  # BOT_STRATEGY loaded in a child, with a deadline
