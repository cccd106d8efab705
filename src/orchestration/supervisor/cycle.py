"""The daily cycle: the start-up machine run again from GAMEPLAN_LOADING, the Gateway left alone.

At DAILY_CYCLE_TIME the supervisor evaluates GAMEPLAN_PATH for the new trading date with the
machine's own handlers (so the checks, the Strategy C fallback and its alert, the plan snapshot
and its sha256, the bot's readiness and plan check are exactly the start-up's), stops the old
bot only once the new plan is decided, and starts the new one. Each cycle is a run of its own in
state/runs.jsonl (`kind: daily_cycle`, with the supervising run's id). The Gateway is not
touched: no login, no 2FA push.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from src.core.durations import BOT_STOP_GRACE
from src.core.journal import RunJournal
from src.orchestration import exitcodes
from src.orchestration.machine import bot as botproc
from src.orchestration.machine.context import StartupContext
from src.orchestration.machine.states import S
from src.orchestration.machine.steps import StartupSteps  # the start-up machine it supervises

log = logging.getLogger(__name__)


def run_daily_cycle(orch: StartupSteps, record: Callable[[str, str], None]) -> str | None:
    """Re-evaluate the plan and restart the bot on it; None when a bot runs again, else why not (exit 1)."""
    old_ctx, supervisor_run = orch.context, orch.journal.run_id
    orch.journal = RunJournal(orch.config.state_dir)
    orch.journal.update(kind="daily_cycle", supervisor_run=supervisor_run)
    orch.context = StartupContext(S.GAMEPLAN_LOADING, gateway_verdict=old_ctx.gateway_verdict)
    orch.run_name = "Daily cycle"
    log.info("Daily cycle %s: evaluating %s for the new trading date", orch.journal.run_id, orch.config.gameplan_path)
    while orch.context.state in orch.TABLE and orch.context.state is not S.BOT_STARTING:
        orch.step()
    if old_ctx.bot_process is not None:  # a new plan is decided, or none could be: the old bot ends either way
        code = botproc.stop_process(old_ctx.bot_process, grace=BOT_STOP_GRACE)
        log.info("Daily cycle: the previous bot (PID %s) stopped with code %s", old_ctx.bot_pid, code)
    while orch.context.state in orch.TABLE:
        orch.step()
    code = orch._conclude()
    orch._phase = "supervising"
    ctx = orch.context
    record("daily_cycle", f"run {orch.journal.run_id}: exit {code}; "
           + (f"bot PID {ctx.bot_pid} on {ctx.gameplan_path}" if code in (exitcodes.SUCCESS, exitcodes.STRATEGY_C)
              else ctx.error_message or "failed"))
    if code in (exitcodes.SUCCESS, exitcodes.STRATEGY_C):
        return None
    return f"daily cycle {orch.journal.run_id} failed: {ctx.error_message or 'unknown failure'}"
