"""The state machine's mechanics: the table as data, checked when it is built, run, concluded, rendered.

Modelled on python-statemachine: states and transitions are declared as data (`Row`s keyed by
an Enum), the definition is checked when the module that declares it loads (every target is a
known state, every state is reachable, no non-final state is a dead end, every handler exists),
and the machine renders itself (`render`). The outcome of a failed run — its exit code, its exit
code under `--supervise`, whether the operator is alerted — is data too, keyed by the state the
run failed from.

`MachineRun` is one run's life: the orchestrator lock, the step loop, signals, the last line of
defence against a crash (exit 1 promises nothing trades: a bot this run started is stopped), the
journal record and the final alert. Subclasses (startup.py) supply the table and the handlers.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from src.core.durations import ALERT_DRAIN, BOT_STOP_GRACE
from src.core.journal import RunJournal, recover_interrupted
from src.core.locks import LockHeld, PidLock
from src.core.redaction import redact
from src.core.resetwindows import new_york_time
from src.core.sdnotify import notify
from src.core.statefiles import ORCHESTRATOR_LOCK
from src.orchestration import exitcodes
from src.orchestration.machine import bot as botproc

log = logging.getLogger("src.orchestration.startup")



@dataclass(frozen=True)
class Row:
    """One state: its handler method (None: pass straight on to the only target) and where it may lead."""

    handler: str | None
    targets: frozenset[Any]


@dataclass(frozen=True)
class Outcome:
    """How a run that failed from a state ends."""

    exit_code: int
    supervised: int  # the exit code under --supervise (76-78: systemd must not restart)
    alert: bool  # a critical "operator needed" alert with the reason


FAILED = Outcome(exitcodes.FAILURE, exitcodes.FAILURE, alert=True)


class DefinitionError(Exception):
    """The transition table is wrong: a bug, found when the module loads."""


def check_definition(table: Mapping[Any, Row], initial: Enum, final: Iterable[Any],
                     handlers: object | None = None) -> None:
    """Every target known, every state reachable from `initial`, no dead end, every handler present."""
    final = frozenset(final)
    known = set(table) | final
    problems = [f"{state.name} -> {getattr(target, 'name', target)}: unknown target" for state, row in table.items()
                for target in row.targets if target not in known]
    problems += [f"{state.name} has no targets (a dead end)" for state, row in table.items() if not row.targets]
    problems += [f"{state.name} passes on without a handler but has {len(row.targets)} targets"
                 for state, row in table.items() if row.handler is None and len(row.targets) != 1]
    problems += [f"{state.name} has a row but is final" for state in table if state in final]
    seen, todo = {initial}, [initial]
    while todo:
        state = todo.pop()
        for target in table.get(state, Row(None, frozenset())).targets:
            if target not in seen and target in known:
                seen.add(target)
                todo.append(target)
    members = type(initial).__members__.values()
    problems += [f"{state.name} is unreachable from {initial.name}" for state in members if state not in seen]
    if handlers is not None:
        problems += [f"{state.name}: no handler {row.handler}" for state, row in table.items()
                     if row.handler and not callable(getattr(handlers, row.handler, None))]
    if problems:
        raise DefinitionError("; ".join(problems))


def render(table: Mapping[Any, Row], final: Mapping[Any, str], outcomes: Mapping[Any, Outcome]) -> str:
    """The machine as text: one line per state with its handler and targets, then the outcomes."""
    width = max(len(state.name) for state in table)
    lines = ["state machine (python -m src.orchestration.startup --print-transitions)", ""]
    for state, row in table.items():
        handler = row.handler or "(passes on)"
        targets = " | ".join(sorted(target.name for target in row.targets))
        lines.append(f"{state.name:<{width}}  {handler:<20}  -> {targets}")
    lines += ["", "final states:"] + [f"  {state.name}: {meaning}" for state, meaning in final.items()]
    lines += ["", "a failed run ends by the state it failed from (exit code / under --supervise / alert):"]
    lines += [f"  {state.name:<{width}}  {o.exit_code} / {o.supervised} / {'alert' if o.alert else 'no alert'}"
              for state, o in outcomes.items()]
    lines.append(f"  {'any other':<{width}}  {FAILED.exit_code} / {FAILED.supervised} / alert")
    return "\n".join(lines) + "\n"


HOLD_MARGIN = 60.0  # after IBKR's reset window ends, before the exit that has systemd start us again
HOLD_STEP = 60.0  # how often a hold tells systemd it is still alive (EXTEND_TIMEOUT_USEC)


def hold_until(until: datetime, *, status: str, margin: float, now: Callable[[], datetime],
               sleep: Callable[[float], object], stopped: Callable[[], bool], then: float = HOLD_STEP) -> None:
    """Wait until `until` (plus `margin`) or a stop, systemd's start timeout extended as it goes
    (sd_notify EXTEND_TIMEOUT_USEC, with `status` as STATUS=), and, once the hold is over, extended
    by `then` s: what comes after it (a whole start-up after a GATEWAY_LOGIN_HOURS hold) gets its own
    budget instead of the hold's last minute. Used by the reset-window hold (below) and by the wait
    for GATEWAY_LOGIN_HOURS (steps.py)."""
    while not stopped():
        left = (until - now()).total_seconds() + margin
        if left <= 0:
            notify(f"EXTEND_TIMEOUT_USEC={int(then * 1_000_000)}\nSTATUS={status}: over")
            return
        step = min(left, HOLD_STEP)
        notify(f"EXTEND_TIMEOUT_USEC={int((step + HOLD_STEP) * 1_000_000)}\nSTATUS={status}")
        sleep(step)


class Interrupted(Exception):
    """SIGTERM or SIGINT arrived while the machine was running."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.signame = signal.Signals(signum).name


class MachineRun:
    """One run: lock, steps, signals, crash containment, the journal record, the exit code.

    Subclasses set TABLE, FINAL, OUTCOMES, SUCCESS_STATE and FAILURE_STATE, and `context`
    (with `state`, `failed_from`, `error_message`, `strategy_c_reason`, `bot_process`,
    `bot_pid`, `bot_log`), `config` (with `state_dir`, `secrets`), `services` (with `alerts`,
    `clock`) and `journal`.
    """

    TABLE: Mapping[Any, Row]
    FINAL: Mapping[Any, str]
    OUTCOMES: Mapping[Any, Outcome]
    SUCCESS_STATE: Any
    FAILURE_STATE: Any
    context: Any
    config: Any
    services: Any
    journal: RunJournal
    # What runs after a successful start under --supervise (supervise.supervise, set by the orchestrator that
    # uses this machine: the machine stays below the supervisor, which it never imports)
    supervisor: Callable[[Any], int]

    def __init__(self, log_file: Path | None, supervise: bool) -> None:
        self.stopped_by: int | None = None  # the signal that stopped the start-up (None: it ran its course)
        self.log_file = log_file
        self.supervise = supervise
        self.wake = threading.Event()  # a wait loop's alarm (docker events, signals)
        self.stop = threading.Event()  # supervision: a stop signal or the bot's exit
        self.signal_name: str | None = None
        self.run_name = "Startup"  # what a failure alert calls this run ("Daily cycle" for the supervisor's)
        self._phase = "startup"  # startup -> concluding -> supervising
        self._lock = PidLock(self.config.state_dir / ORCHESTRATOR_LOCK)

    def handle_signal(self, signum: int, frame: object = None) -> None:
        """SIGTERM/SIGINT: abort the start-up (exit 1), or end supervision gracefully."""
        self.signal_name = signal.Signals(signum).name
        if self._phase == "startup":
            raise Interrupted(signum)
        self.stop.set()  # concluding: finish writing first; supervising: stop the bot
        self.wake.set()

    def run(self) -> int:
        """The whole run; raises only OSError when state/ cannot be written (exit 1 in the CLI)."""
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
            retry_after = getattr(self.context, "retry_after", None)
            if self.supervise and code == exitcodes.FAILURE and retry_after is not None:
                self._hold_past_the_window(retry_after)
            if self.supervise and code in (exitcodes.SUCCESS, exitcodes.STRATEGY_C):
                self._phase = "supervising"
                code = self.supervisor(self)  # the phase after a successful start
            return code
        except OSError as exc:  # state/ unwritable or full: no journal, so say it everywhere else
            where = f" ({exc.filename})" if exc.filename else ""
            reason = f"cannot write run state{where}: {exc.strerror or exc}: fix STATE_DIR/LOG_DIR"
            log.error("Startup failed: %s", reason)
            self.alert("critical", f"Startup failed: {reason}", title="Startup FAILED: operator needed")
            self.services.alerts.flush(ALERT_DRAIN)
            raise
        finally:
            # the conclusion and supervision already waited ALERT_DRAIN: a hung webhook delays the exit once
            self.services.alerts.close(ALERT_DRAIN if self._phase == "startup" else 0)
            self._lock.release()

    def _hold_past_the_window(self, until: datetime) -> None:
        """Under --supervise, a start-up that failed inside IBKR's reset window exits only once the
        window is over (plus HOLD_MARGIN), so systemd's restart comes after it, instead of three quick
        retries inside it that spend its start limit and end with no one alerted."""
        log.warning("IBKR's reset window lasts until %s: exiting after it, so the restart comes then",
                    new_york_time(until))
        hold_until(until, status=f"waiting for IBKR's reset window to end ({new_york_time(until)}), then exit 1 "
                   "for a restart", margin=HOLD_MARGIN, now=self.services.now, sleep=self.stop.wait,
                   stopped=self.stop.is_set)

    def _run_machine(self) -> int:
        log.info("Zero-touch startup %s: starting", self.journal.run_id)
        ctx = self.context
        try:
            while ctx.state in self.TABLE:
                self.step()
        except Interrupted as stop:
            self._phase = "concluding"  # a second signal must not interrupt the clean-up below
            log.warning("Stopped by %s in state %s", stop.signame, ctx.state.name)
            ctx.error_message = f"interrupted by {stop.signame} in state {ctx.state.name}: {self.stop_started_bot()}"
            self.stopped_by = stop.signum  # asked for: not a failure to alert (exit 1, or 128+N under --supervise)
            ctx.state = self.FAILURE_STATE
        except Exception as exc:  # the last line of defence: one sentence, a traceback in the log only
            log.error("Orchestrator crashed in state %s: %s", ctx.state.name,
                      self.redact(f"{type(exc).__name__}: {exc}"), exc_info=True)
            ctx.error_message = (f"orchestrator crashed in {ctx.state.name}: {type(exc).__name__}: {exc}: "
                                 f"{self.stop_started_bot()}")  # exit 1 promises nothing is trading
            ctx.state = self.FAILURE_STATE
        return self._conclude()

    def step(self) -> None:
        """Run the current state's handler and take the transition it returns."""
        ctx, source = self.context, self.context.state
        entered = self.services.clock()
        row = self.TABLE[source]
        target = getattr(self, row.handler)() if row.handler else next(iter(row.targets))
        if target not in row.targets:
            ctx.error_message = f"internal error: transition {source.name} -> {target} is not in the table"
            target = self.FAILURE_STATE
        if target is self.FAILURE_STATE:
            ctx.failed_from = source
        spent = self.services.clock() - entered
        log.info("%s -> %s (%.3f s in %s)", source.name, target.name, spent, source.name)
        ctx.state = target  # first: a signal during the checkpoint's fsync is then "in" the state the record shows
        self.journal.transition(source.name, target.name, spent)
        notify(f"STATUS={target.name}")

    def _conclude(self) -> int:
        self._phase = "concluding"
        ctx = self.context
        if ctx.state is self.SUCCESS_STATE:
            code, outcome = (exitcodes.STRATEGY_C, "strategy_c") if ctx.strategy_c_reason \
                else (exitcodes.SUCCESS, "success")
            reason = ctx.strategy_c_reason
        elif self.stopped_by is not None:  # the operator (systemctl stop, Ctrl-C) stopped it: nobody to page
            # exit 1 (nothing is trading); under --supervise 128+N, which the unit counts as a clean stop
            code, outcome = (128 + self.stopped_by if self.supervise else exitcodes.FAILURE), "stopped"
            reason = ctx.error_message or "stopped"
            log.info("%s stopped before it finished: %s", self.run_name, self.redact(reason))
            notify(f"STATUS=stopped (exit {code}): {self.redact(reason).splitlines()[0][:200]}")
            self.alert("info", f"{self.run_name} stopped before it finished: {reason}",
                       title=f"{self.run_name} stopped")
        else:
            ends = self.OUTCOMES.get(ctx.failed_from, FAILED)
            code, outcome = (ends.supervised if self.supervise else ends.exit_code), "failure"
            reason = ctx.error_message or "unknown failure"
            log.error("Startup failed: %s", self.redact(reason))
            notify(f"STATUS=FAILED (exit {code}): {self.redact(reason).splitlines()[0][:200]}")  # not a bare FAILURE
            if ends.alert:
                self.alert("critical", f"{self.run_name} failed: {reason}",
                           title=f"{self.run_name} FAILED: operator needed")
        self.services.alerts.flush(ALERT_DRAIN)
        self.journal.update(
            bot_pid=ctx.bot_pid, bot_log=str(ctx.bot_log) if ctx.bot_log else None,
            alerts=[{"level": lvl, "message": self.redact(msg), "delivered": ok}
                    for lvl, msg, ok in self.services.alerts.sent],
        )
        self.journal.finish(outcome, code, self.redact(reason) if reason else None)
        log.info("Exit %d (%s)", code, outcome)
        return code

    def _refuse(self, reason: str) -> int:
        """A run that must not touch anything: journal it (append only) and exit 1."""
        log.error("%s: nothing was changed", reason)
        self.services.alerts.close(0)
        self.journal.finish("refused", exitcodes.FAILURE, reason, own_checkpoint=False)
        return exitcodes.FAILURE

    def stop_started_bot(self) -> str:
        """Exit 1 says nothing is trading: stop a bot this run already started."""
        proc = self.context.bot_process
        if proc is None or proc.poll() is not None:
            return "nothing was left half-started"
        botproc.stop_process(proc, grace=BOT_STOP_GRACE)
        return f"the bot it had started (PID {self.context.bot_pid}) was stopped"

    def bot_log_excerpt(self) -> str:
        """'; log PATH; last lines: ...' for a failure message, so the operator sees why at once."""
        path = self.context.bot_log
        if path is None:
            return ""
        last = botproc.tail(path)
        return f"; log {path}" + (f"; last lines:\n{last}" if last else "")

    def alert(self, level: str, message: str, *, title: str | None = None,
              fields: dict[str, str] | None = None) -> None:
        fields = {**(fields or {}), "run": self.journal.run_id}
        if self.log_file:
            fields["orchestrator log"] = str(self.log_file)
        self.services.alerts.alert(level, self.redact(message), title=title, fields=fields)

    def redact(self, text: str) -> str:
        return redact(text, self.config.secrets)

