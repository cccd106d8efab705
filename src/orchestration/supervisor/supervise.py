"""`--supervise`: after a successful start, the operator's unattended week.

One loop, woken by Docker events (the Gateway container's die/start/health), the bot's exit, a
signal or the next timer, and otherwise every TICK s to read the bot's connection state:

* the Gateway: `watch.GatewayWatch` meets an outage with the start-up's policy (reset windows
  expected and not alerted, IBC's log read before anything, one restart within the login
  budget, never while a 2FA push waits); the bot keeps running, its gate closed meanwhile;
* the daily cycle: at DAILY_CYCLE_TIME (New York) on each trading day of TRADING_CALENDAR, the
  gameplan is evaluated again and the bot restarted on it, or on Strategy C (`cycle.py`),
  without touching the Gateway; deferred while the Gateway is down;
* a late plan: GAMEPLAN_PATH written or changed at any other time (looked at every PLAN_LOOK_EVERY s)
  with a usable plan for today that is not the plan in force runs the cycle for it at once, so a plan
  the analyst delivers after DAILY_CYCLE_TIME does not wait for tomorrow; an unusable one changes
  nothing (the plan in force stays) and is recorded;
* the weekly login: a heads-up alert the evening before, and at WEEKLY_LOGIN_TIME (when set) one
  controlled restart, so IBKR's weekly 2FA push comes when the operator is awake;
* the order firewall: found down (its Docker events wake the loop), it is started again and the
  operator alerted (`firewallwatch.py`); no order passes meanwhile;
* systemd: READY=1 once, STATUS= whenever the situation changes, STOPPING=1 on the way out.

SIGTERM/SIGINT: stop the bot gracefully (and the Gateway too with SUPERVISE_STOP_GATEWAY=true),
exit 0. The bot dies, or cannot be restarted by the daily cycle: a critical alert, exit 1, so
systemd restarts the service (the Gateway, still up, is not logged in again). Every decision is
a line in state/supervisor.jsonl, with its reason.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from src.core import schedule
from src.core.durations import ALERT_DRAIN, BOT_STOP_GRACE
from src.core.journal import RunJournal, append_line, utc_now
from src.core.resetwindows import new_york_time
from src.core.sdnotify import notify
from src.core.statefiles import (
    PLAN_SHA256_FILE,
    SOFT_RESTARTS_FILE,
    SUPERVISOR_LOG,
    firewall_session_since,
    read_ready_record,
)
from src.firewall.plan import read_validated_sha256
from src.notifications.dedupe import AlertGate
from src.orchestration import exitcodes
from src.orchestration.gateway.docker import ContainerState, DockerError, EventWatcher
from src.orchestration.gateway.firewallwatch import FirewallWatch
from src.orchestration.gateway.logins import LoginBudget
from src.orchestration.machine import bot as botproc
from src.orchestration.machine.steps import StartupSteps  # the start-up machine it supervises
from src.orchestration.supervisor.cycle import run_daily_cycle  # the machine's own handlers, run again
from src.orchestration.supervisor.watch import GatewayWatch, Seen, WatchSettings

log = logging.getLogger(__name__)

TICK = 1.0  # how often the bot's connection state is read when nothing else wakes the loop
INSPECT_EVERY = 60.0  # a safety `docker inspect`, on top of the pushed Docker events
EVENTS_RETRY = 5.0  # a `docker events` stream that ended (daemon restart) is started again this often
PLAN_LOOK_EVERY = 5.0  # how often GAMEPLAN_PATH's identity is looked at for a late plan (one stat)
MEMORY_LOOK_EVERY = 300.0  # how often the Gateway container's memory is read (one docker stats)
MEMORY = "gateway-memory"  # its AlertGate key


class Supervisor:
    """The loop of `supervise` (see the module's docstring)."""

    def __init__(self, orch: StartupSteps) -> None:
        self.orch, self.config, self.services = orch, orch.config, orch.services
        cfg, clock = orch.config, orch.services.clock
        self.run_id = orch.journal.run_id  # the start-up's run: supervision is its last phase
        self.run = RunJournal(cfg.state_dir, run_id=self.run_id)
        self.failure_alerted = False
        self.crashed = False  # an unforeseen exception ended supervision
        self.deferred = False  # the due daily cycle waits for the Gateway (recorded once)
        self.watch = GatewayWatch(
            docker=self.services.docker, health=self.services.health, logins=orch.logins,
            gate=AlertGate.in_state_dir(cfg.state_dir), alert=self.alert, record=self.record, clock=clock,
            now=self.services.now, run_id=self.run_id,
            settings=WatchSettings(windows=cfg.reset_windows, alert_after=cfg.gateway_down_alert_after,
                                   login_timeout=cfg.gateway_health_timeout, twofa_wait=cfg.twofa_wait_timeout,
                                   login_budget=cfg.gateway_login_budget, probe_timeout=cfg.health_check_timeout,
                                   login_hours=cfg.gateway_login_hours,
                                   soft_restarts=LoginBudget(cfg.state_dir, cfg.gateway_soft_restart_budget,
                                                             file=SOFT_RESTARTS_FILE)))
        self.plan_stamp = _stamp(cfg.gameplan_path)  # GAMEPLAN_PATH as the start-up (or the last cycle) saw it
        self.plan_looked_at = clock()
        self.record_looked_at = clock() - PLAN_LOOK_EVERY  # the first turn looks at once
        self.firewall = FirewallWatch(docker=self.services.docker, gate=self.watch.gate, alert=self.alert,
                                      record=self.record, clock=clock)
        self.firewall_changed = threading.Event()
        self.pinged_at = float("-inf")
        self.memory_looked_at = float("-inf")
        self.firewall_inspected_at = float("-inf")
        self.firewall_status: str | None = None
        now = self.services.now()
        self.next_cycle = schedule.next_daily_cycle(now, cfg.daily_cycle_time, cfg.trading_calendar)
        self.next_heads_up = schedule.next_heads_up(now, cfg.weekly_login)
        self.next_login = schedule.next_weekly(now, cfg.weekly_login) if cfg.weekly_login else None
        self.events_changed = threading.Event()
        self.container: ContainerState | None = None
        self.docker_problem: str | None = None  # the last inspect failed: the state is unknown
        self.inspected_at = float("-inf")
        self.events_started_at = float("-inf")
        self.watcher: EventWatcher | None = None
        self.status = ""

    def run_until_stopped(self) -> int:
        orch, ctx = self.orch, self.orch.context
        self.run.update(phase="supervise", bot_pid=ctx.bot_pid, bot_log=str(ctx.bot_log))
        mode = "Strategy C, no trading" if ctx.strategy_c_reason else "validated gameplan"
        notify(f"READY=1\nSTATUS=bot PID {ctx.bot_pid} running ({mode}); next daily cycle "
               f"{new_york_time(self.next_cycle)}")
        log.info("Supervising the bot (PID %s) and the Gateway until SIGTERM; next daily cycle %s", ctx.bot_pid,
                 new_york_time(self.next_cycle))
        self.record("supervising", f"bot PID {ctx.bot_pid} on {mode}; next daily cycle "
                    f"{new_york_time(self.next_cycle)}")
        self._watch_bot(ctx.bot_process)
        failure: str | None = None
        try:
            while not orch.stop.is_set() and failure is None:
                failure = self._turn_or_crash()
                if failure is None:
                    orch.wake.wait(self._sleep_for())
                    orch.wake.clear()
        finally:
            if self.watcher is not None:
                self.watcher.close()
        return self._end(failure)

    def _turn_or_crash(self) -> str | None:
        """A turn; an exception nobody foresaw ends supervision as a failure (journalled, alerted, the bot
        stopped: exit 1 promises nothing trades, and systemd starts the service afresh), never silently."""
        try:
            return self.turn()
        except Exception as exc:  # the last line of defence: one sentence, the traceback in the log only
            log.error("Supervisor crashed: %s", self.orch.redact(f"{type(exc).__name__}: {exc}"), exc_info=True)
            self.record("crashed", f"{type(exc).__name__}: {exc}")
            self.crashed = True
            return f"the supervisor crashed ({type(exc).__name__}: {exc}): the bot was stopped"

    def turn(self) -> str | None:
        """One look at everything; the reason to end supervision with exit 1, or None."""
        proc = self.orch.context.bot_process
        if proc is not None and proc.poll() is not None:
            return f"the bot exited unexpectedly with code {proc.returncode}{self.orch.bot_log_excerpt()}"
        if proc is not None:
            self._keep_the_bot_record(proc.pid)
        self._look_at_the_container()
        status = self.watch.tick(Seen(self.container, *self._bot_connection(), docker_problem=self.docker_problem))
        self._look_at_the_firewall()
        if self.firewall_status:
            status += f"; {self.firewall_status}"
        self._heartbeat(trading_ready=self.watch.outage is None and self.firewall.down_since is None)
        self._look_at_the_memory()
        now = self.services.now()
        if now >= self.next_heads_up:
            self._heads_up(now)
        if self.next_login is not None and now >= self.next_login:
            self.next_login = schedule.next_weekly(now, self.config.weekly_login)
            status = self.watch.planned_login("Weekly IBKR login (WEEKLY_LOGIN_TIME)")
        if now < self.next_cycle and self.watch.outage is None and self._late_plan():
            failure = self._daily_cycle(now, late=True)
            if failure:
                return failure
        if now >= self.next_cycle:
            if self.watch.outage is None:
                failure = self._daily_cycle(now)
                if failure:
                    return failure
            else:
                if not self.deferred:
                    self.deferred = True
                    self.record("daily_cycle_deferred", "the Gateway is down: the cycle runs once the bot reconnects")
                status += "; daily cycle deferred until the Gateway is back"
        self._say(f"{status}; next daily cycle {new_york_time(self.next_cycle)}")
        return None

    # --- the parts of a turn -------------------------------------------------------------------

    def _look_at_the_container(self) -> None:
        clock = self.services.clock
        if self.watcher is None and clock() - self.events_started_at >= EVENTS_RETRY:
            self.events_started_at = clock()
            self.watcher = self.services.docker.watch(self._on_event, firewall=True)
        if self.events_changed.is_set() or clock() - self.inspected_at >= INSPECT_EVERY:
            self.events_changed.clear()
            self.inspected_at = clock()
            try:
                self.container, self.docker_problem = self.services.docker.inspect(), None
            except DockerError as exc:
                log.warning("cannot inspect the Gateway container: %s", exc.message)
                self.docker_problem = exc.message
                self.inspected_at = clock() - INSPECT_EVERY + EVENTS_RETRY  # look again soon

    def _look_at_the_memory(self) -> None:
        """The Gateway container's memory every MEMORY_LOOK_EVERY s: one warning above GATEWAY_MEMORY_ALERT_MB,
        one all-clear once it is back under 90 % of it."""
        limit, clock = self.config.gateway_memory_alert_mb, self.services.clock
        if not limit or clock() - self.memory_looked_at < MEMORY_LOOK_EVERY:
            return
        self.memory_looked_at = clock()
        try:
            used = self.services.docker.memory_mb()
        except DockerError:
            return
        if used is None:
            return
        if used > limit:
            if self.watch.gate.raise_(MEMORY, "warning", f"{used:.0f} MB"):
                self.record("gateway_memory", f"{used:.0f} MB, above GATEWAY_MEMORY_ALERT_MB={limit}")
                self.alert("warning", f"The Gateway container uses {used:.0f} MB, above GATEWAY_MEMORY_ALERT_MB="
                           f"{limit} (the JVM grows; a Gateway out of memory stops answering): plan a restart at a "
                           "quiet hour, or raise JAVA_HEAP_SIZE", title="Gateway memory high")
        elif used < 0.9 * limit:
            back = self.watch.gate.clear(MEMORY, "")
            if back is not None:
                self.record("gateway_memory", f"{used:.0f} MB, back under GATEWAY_MEMORY_ALERT_MB={limit}")

    def _heartbeat(self, *, trading_ready: bool) -> None:
        """HEARTBEAT_URL's ping every HEARTBEAT_INTERVAL s while trading-ready; none otherwise, so the monitor
        alerts on a pause as on a machine that is down."""
        heartbeat, clock = self.services.heartbeat, self.services.clock
        if heartbeat is None or not trading_ready or clock() - self.pinged_at < self.config.heartbeat_interval:
            return
        if heartbeat.ping():
            self.pinged_at = clock()

    def _look_at_the_firewall(self) -> None:
        clock = self.services.clock
        due = clock() - self.firewall_inspected_at >= INSPECT_EVERY or (
            self.firewall.down_since is not None and clock() - self.firewall_inspected_at >= TICK)
        if self.firewall_changed.is_set() or due:
            self.firewall_changed.clear()
            self.firewall_inspected_at = clock()
            try:
                state = self.services.docker.inspect_firewall()
            except DockerError as exc:
                log.warning("cannot inspect the order firewall's container: %s", exc.message)
                return  # Docker itself is the problem: the Gateway's watch reports it
            self.firewall_status = self.firewall.tick(state)

    def _on_event(self, action: str) -> None:
        if action.startswith("firewall:"):
            if action != "firewall:start":
                self.record("firewall_event", action.removeprefix("firewall:"))
            self.firewall_changed.set()
        elif action == "stream-ended":
            self.watcher = None  # started again by the next turn
            self.firewall_changed.set()
        elif action.startswith("health_status"):
            self.record("docker_health", action)
        self.events_changed.set()
        self.orch.wake.set()

    def _bot_connection(self) -> tuple[str | None, datetime | None]:
        if self.config.bot_ready == "api":  # any bot: its session through the order firewall
            since_ts = firewall_session_since(self.config.state_dir, self.config.bot_client_id)
            if since_ts is None:
                return "disconnected", None
            return "connected", datetime.fromtimestamp(since_ts, UTC)
        record = read_ready_record(self.config.state_dir) or {}
        if record.get("pid") != self.orch.context.bot_pid:
            return None, None
        try:
            since = datetime.fromisoformat(str(record["connection_since"]))
        except (KeyError, ValueError):
            since = None
        return record.get("connection"), since

    def _heads_up(self, now: datetime) -> None:
        self.next_heads_up = schedule.next_heads_up(now, self.config.weekly_login)
        when = (f"the supervisor logs the Gateway in again at {new_york_time(self.next_login)} "
                "(WEEKLY_LOGIN_TIME): approve the push then" if self.next_login else
                "the Gateway's next login will need your approval on the phone; set WEEKLY_LOGIN_TIME to choose when")
        self.record("heads_up", when)
        self.alert("warning", f"IBKR ends the week's session: {when}", title="Heads-up: weekly IBKR login")

    def _keep_the_bot_record(self, pid: int) -> None:
        """state/bot_process.json names the bot this supervisor runs, or is rewritten (every PLAN_LOOK_EVERY s):
        damaged under it, it would have `--status` and `shutdown` lose the bot while it trades."""
        clock = self.services.clock
        if clock() - self.record_looked_at < PLAN_LOOK_EVERY:
            return
        self.record_looked_at = clock()
        try:
            repaired = botproc.repair_record(self.config.state_dir, pid, self.orch.context.bot_log)
        except OSError as exc:
            log.warning("Supervisor: cannot rewrite the bot's process record: %s", exc.strerror or exc)
            return
        if repaired:
            log.warning("Supervisor: state/bot_process.json did not name the running bot (PID %d): rewritten", pid)
            self.record("bot_record_repaired", f"state/bot_process.json did not name the bot, PID {pid}: rewritten")

    def _late_plan(self) -> bool:
        """GAMEPLAN_PATH changed since the last look, and now holds a usable plan for today other than the
        plan in force: run the cycle for it."""
        clock, path = self.services.clock, self.config.gameplan_path
        if path is None or clock() - self.plan_looked_at < PLAN_LOOK_EVERY:
            return False
        self.plan_looked_at = clock()
        stamp = _stamp(path)
        if stamp == self.plan_stamp:
            return False
        self.plan_stamp = stamp
        verdict = self.services.evaluate_gameplan(path)
        if not verdict.usable or verdict.data is None:
            self.record("late_plan_ignored", f"{path} changed but is not usable ({verdict.kind}: {verdict.reason}): "
                        "the plan in force stays")
            return False
        sha256 = hashlib.sha256(verdict.data).hexdigest()
        if sha256 == read_validated_sha256(self.config.state_dir / PLAN_SHA256_FILE):
            return False
        self.record("late_plan", f"{path} now holds a usable plan for today ({sha256[:12]}): the cycle runs for it")
        return True

    def _daily_cycle(self, now: datetime, *, late: bool = False) -> str | None:
        if not late:
            self.next_cycle = schedule.next_daily_cycle(now, self.config.daily_cycle_time,
                                                        self.config.trading_calendar)
        self.plan_stamp = _stamp(self.config.gameplan_path)
        self.deferred = False
        failure = run_daily_cycle(self.orch, self.record)
        self.failure_alerted = failure is not None  # the cycle's own conclusion alerted it
        self._watch_bot(self.orch.context.bot_process)
        return failure

    def _watch_bot(self, proc: object) -> None:
        def wait_for_it() -> None:
            proc.wait()  # type: ignore[attr-defined]
            self.orch.wake.set()

        if proc is not None:
            threading.Thread(target=wait_for_it, name="bot-wait", daemon=True).start()

    def _sleep_for(self) -> float:
        now = self.services.now()
        timers = [self.next_cycle, self.next_heads_up] + ([self.next_login] if self.next_login else [])
        until_next = min((t - now).total_seconds() for t in timers)
        return float(max(0.0, min(TICK, until_next)))

    def _say(self, status: str) -> None:
        if status != self.status:
            self.status = status
            notify(f"STATUS={status}")
            log.info("Supervisor: %s", status)

    def alert(self, level: str, message: str, *, title: str | None = None) -> None:
        """Send an alert, and record it (the supervisor's alerts belong to no run's record)."""
        self.record("alert", f"{level}: {message}")
        self.orch.alert(level, message, title=title)

    def record(self, event: str, detail: str) -> None:
        """One supervisor decision, with its reason, in state/supervisor.jsonl (secrets redacted)."""
        try:
            append_line(self.config.state_dir / SUPERVISOR_LOG,
                        {"at": utc_now(), "run_id": self.run_id, "event": event,
                         "detail": self.orch.redact(detail)})
        except OSError as exc:
            log.error("cannot record the supervisor's decision %s (%s): %s", event, exc, self.orch.redact(detail))

    # --- the end -------------------------------------------------------------------------------

    def _end(self, failure: str | None) -> int:
        orch = self.orch
        proc = orch.context.bot_process
        if failure is None:
            notify(f"STOPPING=1\nSTATUS=stopping on {orch.signal_name}")
            bot_code = botproc.stop_process(proc, grace=BOT_STOP_GRACE) if proc is not None else None
            reason = f"stopped by {orch.signal_name}: the bot exited with code {bot_code}"
            if orch.config.supervise_stop_gateway:
                reason += "; " + _stop_gateway(orch)
            code, outcome = exitcodes.SUCCESS, "stopped"
            self.alert("info", f"Trading system stopped ({reason})")
        else:
            notify(f"STATUS=FAILED: {orch.redact(failure).splitlines()[0][:200]}; stopping")  # never the last good news
            orch.stop_started_bot()  # exit 1 promises nothing trades
            reason, code = failure, exitcodes.FAILURE
            outcome = "supervisor_crashed" if self.crashed else "bot_died"
            if not self.failure_alerted:
                self.alert("critical", reason, title="Supervisor CRASHED: systemd restarts the service"
                           if self.crashed else "Bot DIED: systemd restarts the service")
            if orch.services.heartbeat is not None:
                orch.services.heartbeat.fail(orch.redact(reason), wait=ALERT_DRAIN)
        self.record(outcome, reason)
        log.log(logging.INFO if code == exitcodes.SUCCESS else logging.ERROR, "Supervision ended: %s",
                orch.redact(reason))
        orch.services.alerts.flush(ALERT_DRAIN)
        self.run.finish(outcome, code, orch.redact(reason), own_checkpoint=False)
        return code


def _stamp(path: Path | None) -> tuple[int, ...] | None:
    """A file's identity and timestamp (a change of either is a new plan to look at); None without a path."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError as exc:
        return (-1, exc.errno or 0)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def supervise(orch: StartupSteps) -> int:
    """Block until a stop signal or the bot's death, watching the Gateway and running the daily cycle."""
    return Supervisor(orch).run_until_stopped()


def _stop_gateway(orch: StartupSteps) -> str:
    docker = orch.services.docker
    try:
        if docker.inspect() is not None:  # never a container that is not ours (inspect refuses it)
            docker.stop()
        return f"Gateway container {docker.container} stopped"
    except DockerError as exc:
        return f"the Gateway could not be stopped: {exc.message}"
