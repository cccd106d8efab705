"""`--supervise`: after a successful start, stay the bot's parent until a stop signal or the bot's death.

For systemd `Type=notify` (READY=1 once the bot is ready, STATUS=, STOPPING=1) and to keep a WSL
distro alive under Task Scheduler. SIGTERM/SIGINT: stop the bot gracefully (and the Gateway too
with SUPERVISE_STOP_GATEWAY=true), exit 0. The bot dies: a critical alert, exit 1, so the
supervisor restarts the service (within its start limits and the Gateway login budget).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from src.orchestration import bot as botproc
from src.orchestration import exitcodes
from src.orchestration.docker import DockerError
from src.orchestration.journal import RunJournal
from src.orchestration.sdnotify import notify

if TYPE_CHECKING:
    from src.orchestration.startup import StartupOrchestrator

log = logging.getLogger(__name__)

BOT_STOP_GRACE = 20.0  # SIGTERM to SIGKILL, when stopping the bot
ALERT_DRAIN = 5.0  # at exit, how long pending alerts may still take


def supervise(orch: StartupOrchestrator) -> int:
    """Block until `orch.stop` is set (a signal, or the bot's exit), then end as the reason says."""
    ctx, proc = orch.context, orch.context.bot_process
    record = RunJournal(orch.config.state_dir, run_id=orch.journal.run_id)
    record.update(phase="supervise", bot_pid=ctx.bot_pid, bot_log=str(ctx.bot_log))
    mode = "Strategy C, no trading" if ctx.strategy_c_reason else "validated gameplan"
    notify(f"READY=1\nSTATUS=bot PID {ctx.bot_pid} running ({mode})")
    log.info("Supervising the bot (PID %s) until SIGTERM", ctx.bot_pid)

    def wait_for_the_bot() -> None:
        proc.wait()
        orch.stop.set()

    threading.Thread(target=wait_for_the_bot, name="bot-wait", daemon=True).start()
    orch.stop.wait()
    if orch.signal_name:
        notify(f"STOPPING=1\nSTATUS=stopping on {orch.signal_name}")
        bot_code = botproc.stop_process(proc, grace=BOT_STOP_GRACE)
        reason = f"stopped by {orch.signal_name}: the bot exited with code {bot_code}"
        if orch.config.supervise_stop_gateway:
            reason += "; " + _stop_gateway(orch)
        code, outcome = exitcodes.SUCCESS, "stopped"
        orch.alert("info", f"Trading system stopped ({reason})")
    else:
        reason = f"the bot exited unexpectedly with code {proc.returncode}{orch.bot_log_excerpt()}"
        code, outcome = exitcodes.FAILURE, "bot_died"
        orch.alert("critical", reason, title="Bot DIED: the supervisor will restart the service")
    log.log(logging.INFO if code == exitcodes.SUCCESS else logging.ERROR, "Supervision ended: %s", orch.redact(reason))
    orch.services.alerts.flush(ALERT_DRAIN)
    record.finish(outcome, code, orch.redact(reason), own_checkpoint=False)
    return code


def _stop_gateway(orch: StartupOrchestrator) -> str:
    docker = orch.services.docker
    try:
        if docker.inspect() is not None:  # never a container that is not ours (inspect refuses it)
            docker.stop()
        return f"Gateway container {docker.container} stopped"
    except DockerError as exc:
        return f"the Gateway could not be stopped: {exc.message}"
