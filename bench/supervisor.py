"""Scenario 8 ("supervisor"): what `python -m src.orchestration.startup --supervise` does for the
operator after the handoff, measured on the real CLI, real Docker and the simulator container.

Three parts, each run of the orchestrator a Compose project of its own (`zt-bench-...`), with a
local webhook (testkit.webhook) standing in for Discord, off IBKR's calendar (testkit.schedule):

* (a) `kill`: the Gateway container of a supervised run is `docker kill`ed (outside any reset
  window), `kills` times on the same stack, each once the previous outage is over (the bot
  trading-ready again, the supervisor's all-clear recorded, KILL_SETTLE s more;
  GATEWAY_LOGIN_BUDGET = kills + 1, so every kill may be met with its one restart). Measured:
  from `docker kill` being called to the webhook receiving the first alert after it (one
  monotonic clock), and to the bot trading-ready again (its readiness record: connection
  `connected`, `connection_since` after the kill);
* (b) `outage`: a fresh supervised stack per repetition whose simulator runs its timed outage
  (SIM_OUTAGE_AFTER / SIM_OUTAGE_FOR, kind `closed`) inside a reset window set around now
  (IBKR_RESET_WINDOWS), so the supervisor logs it and leaves it alone. Measured: from the end of
  the outage to the bot's readiness record saying connected. The end is the simulator's own
  "API: open again" line, timed by Docker (`docker logs --timestamps`: when the line reached the
  daemon, UTC, ns); the schedule's end (the simulator's login moment + after + for) is kept
  beside it as a check. The baseline: the same outage under the plain start-up (no
  `--supervise`: the orchestrator exits after the handoff, the bot runs on alone), which is what
  the operator had before; each such run then also kills its container and waits `no_watch_wait`
  s for an alert that never comes (nothing watches after the handoff);
* (c) `idle`: one supervised, healthy stack left alone for `idle_seconds`, sampled every
  `sample_every` s: the orchestrator's CPU seconds (its own, its reaped children's: every docker
  CLI call it made and waited for, and its live children's: the `docker events` stream; the bot
  and its descendants excluded) and RSS (its own; and with its live non-bot children), the bot's
  own CPU and RSS for information. It runs in a thread beside (a) and (b): CPU seconds do not
  depend on who else runs, and ten minutes in sequence would cost ten minutes more. Its baseline,
  a cron-style poller (`docker inspect` every 60 s), costs one `docker inspect` a minute, measured
  here with the same CLI on the same daemon.

A cron-style poller's time to alert is not run, it is computed: it sees a death at its next poll,
so with polls every `cron_every` s the delay is uniform on [0, cron_every) plus one `docker
inspect` (measured): median cron_every/2, p95 0.95 cron_every.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.contenders import project_env, stop_bots
from bench.env import BenchError, Gateway, RunDir, parse_utc, stop_pid
from src.statefiles import SUPERVISOR_LOG, read_ready_record
from testkit.docker import container_state, docker
from testkit.schedule import window_around_now
from testkit.webhook import WebhookReceiver

log = logging.getLogger("bench")
STARTUP = [sys.executable, "-m", "src.orchestration.startup"]
# the daily cycle every day (not only on NYSE's), the API-down alert far away: as the integration tests
QUIET = {"TRADING_CALENDAR": "ALWAYS", "GATEWAY_DOWN_ALERT_AFTER": "300"}
POLL = 0.02
OPEN_LINE = "API: open again"  # src/simulator/server.py, when a `closed` outage ends
BEGIN_LINE = "API: simulated outage (closed)"
KILL_SETTLE = 3.0  # after the all-clear, before the next kill: Docker's health and the bot settled


@dataclass
class SupervisorOptions:
    kills: int = 19  # at most 19: each restart is a login, GATEWAY_LOGIN_BUDGET is at most 20
    outages: int = 10
    baseline_outages: int = 5  # the same outage under the plain start-up (0: none)
    outage_after: float = 12.0  # s after the simulator's login: the supervisor has taken over by then
    outage_for: float = 5.0
    idle_seconds: float = 600.0  # 0: no idle part
    sample_every: float = 3.0
    no_watch_wait: float = 20.0  # after killing a plain start-up's container: how long to wait for an alert
    cron_every: float = 60.0
    workdir: Path = field(default_factory=Path.cwd)

    def as_meta(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "workdir"}


def estimate_seconds(o: SupervisorOptions) -> float:
    kills = 15 + o.kills * 12
    outages = (o.outages + o.baseline_outages) * (15 + o.outage_after + o.outage_for) + o.baseline_outages * (
        o.no_watch_wait + 2)
    return max(kills + outages, o.idle_seconds + 20 if o.idle_seconds else 0)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """`condition()`'s first truthy value, polled every POLL s; BenchError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"waited {timeout:g} s for {what}")
        time.sleep(POLL)


class Supervised:
    """One orchestrator run (supervised or not) with its own Gateway, run directory and webhook."""

    def __init__(self, opts: SupervisorOptions, name: str, *, sim: dict[str, object] | None = None,
                 settings: dict[str, str] | None = None, supervise: bool = True) -> None:
        self.gw = Gateway(0.5, sim=dict(sim or {}))
        self.run = RunDir.make(opts.workdir, name)
        self.hook = WebhookReceiver()
        self.settings = {**QUIET, **(settings or {})}
        self.supervise = supervise
        self.proc: subprocess.Popen[bytes] | None = None
        self.t0 = 0.0

    def __enter__(self) -> Supervised:
        self.hook.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            stop_bots(self.run, (read_ready_record(self.run.state) or {}).get("pid"))
            self.gw.down()
            self.hook.stop()

    def start(self, timeout: float = 90) -> None:
        """Launch the orchestrator; return once the supervisor took over (or, not supervised, once the
        start-up ended with exit 0 and its bot is ready)."""
        env = project_env(self.gw, self.run, {**self.settings, "DISCORD_WEBHOOK_URL": self.hook.url})
        self.t0 = time.time()
        with open(self.run.root / "orchestrator.out", "ab") as out:
            self.proc = subprocess.Popen([*STARTUP, *(["--supervise"] if self.supervise else [])], env=env,
                                         cwd=self.run.root, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        proc = self.proc
        if self.supervise:
            wait_for(lambda: proc.poll() is not None or self.decisions("supervising"), timeout,
                     "the supervisor to take over")
            if proc.poll() is not None:
                raise BenchError(f"the supervised orchestrator exited {proc.returncode}: {self.tail()}")
        else:
            wait_for(lambda: proc.poll() is not None, timeout, "the start-up to end")
            if proc.returncode != 0:
                raise BenchError(f"the start-up exited {proc.returncode}: {self.tail()}")
        wait_for(lambda: self.connection() == "connected", 30, "the bot connected")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(40)
        except subprocess.TimeoutExpired:
            stop_pid(self.proc.pid)

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.run.root / "orchestrator.out").read_text(errors="replace")[-1500:]
        return ""

    # --- what the operator sees ---------------------------------------------------------------

    def decisions(self, event: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = (self.run.state / SUPERVISOR_LOG).read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):
                d = json.loads(line)
                if event is None or d.get("event") == event:
                    out.append(d)
        return out

    def record(self) -> dict[str, Any]:
        return read_ready_record(self.run.state) or {}

    def connection(self) -> str | None:
        return self.record().get("connection")

    def connected_since(self, after: float) -> float | None:
        """When the bot's record says it became connected, if that was after `after` (POSIX time)."""
        r = self.record()
        if r.get("connection") != "connected" or not r.get("connection_since"):
            return None
        since = parse_utc(r["connection_since"])
        return since if since > after else None

    def alerts(self, before: int = 0) -> list[tuple[float, str]]:
        """(monotonic arrival, text) of each alert the webhook received from index `before` on."""
        out = []
        for r in self.hook.received[before:]:
            text = ""
            with contextlib.suppress(KeyError, IndexError, TypeError):
                text = r.json["embeds"][0]["description"]
            out.append((r.at, text))
        return out

    def bot_pid(self) -> int | None:
        pid = self.record().get("pid")
        return pid if isinstance(pid, int) else None


# --- (a) container death -> alert ---------------------------------------------------------------------

def kill_reps(opts: SupervisorOptions, progress: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = []
    if opts.kills <= 0:
        return samples
    budget = min(opts.kills + 1, 20)
    with Supervised(opts, "supervisor-kill", settings={"GATEWAY_LOGIN_BUDGET": str(budget)}) as world:
        world.start()
        for rep in range(opts.kills):
            try:
                s = one_kill(world, rep)
            except (BenchError, OSError) as exc:
                s = {"error": f"scenario 8 kill {rep}: {exc}"}
            s.update(scenario="8", part="kill", contender="project", rep=rep, compose_project=world.gw.project)
            progress(s)
            samples.append(s)
            if s.get("error"):
                break  # the stack is in an unknown state: the next kill would measure that
            time.sleep(KILL_SETTLE)
    return samples


def one_kill(world: Supervised, rep: int) -> dict[str, Any]:
    backs, restarts = len(world.decisions("back")), len(world.decisions("restart"))
    began = len(world.decisions("outage_began"))
    first_start = (world.gw.state() or {}).get("StartedAt")
    before = len(world.hook.received)
    kill_wall, kill_mono = time.time(), time.monotonic()
    docker("kill", world.gw.container, timeout=30)
    kill_returned = time.monotonic()
    offset = time.time() - time.monotonic()  # monotonic -> POSIX, for Docker's FinishedAt
    at, text = wait_for(lambda: next(iter(world.alerts(before)), None), 30, "the alert")
    ready = wait_for(lambda: world.connected_since(kill_wall), 90, "the bot trading-ready again")
    wait_for(lambda: len(world.decisions("back")) > backs, 30, "the supervisor's all-clear")
    state = world.gw.state() or {}
    finished = (container_state(world.gw.container) or {}).get("FinishedAt")
    died_at = _docker_time(finished) if finished else None
    said = [t for _, t in world.alerts(before)]
    first_seen = next(iter(world.decisions("outage_began")[began:]), {}).get("detail", "")
    return {
        "kill_at": kill_wall, "kill_cli_s": kill_returned - kill_mono,
        "kill_to_alert": at - kill_mono, "alert": text[:200],
        "death_to_alert": (at + offset - died_at) if died_at else None,
        "kill_to_ready": ready - kill_wall,
        "restarted": state.get("StartedAt") != first_start,
        "restarts": len(world.decisions("restart")) - restarts,
        "alerts": len(said), "all_clear": any(t.startswith("Gateway back after") for t in said),
        "first_seen": first_seen,  # the supervisor's first sight of it: container exited, or still up
        "first_seen_dead": "container running" not in first_seen,
    }


def _docker_time(text: str) -> float:
    """Docker's RFC 3339 timestamp with nanoseconds (UTC, `Z`) as POSIX time."""
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp() + (float("0." + frac) if frac else 0.0)


# --- (b) API back -> bot trading-ready, through the supervisor ----------------------------------------

def outage_reps(opts: SupervisorOptions, progress: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    runs = ["project"] * opts.outages
    base = ["startup-only"] * opts.baseline_outages
    order: list[str] = []
    while runs or base:  # interleaved, so a burst of load hits both alike
        order += [runs.pop()] if runs else []
        order += [base.pop()] if base else []
    samples = []
    counts: dict[str, int] = {}
    for contender in order:
        rep = counts[contender] = counts.get(contender, -1) + 1
        try:
            s = one_outage(opts, supervise=contender == "project")
        except (BenchError, OSError) as exc:
            s = {"error": f"scenario 8 outage {contender} {rep}: {exc}"}
        s.update(scenario="8", part="outage", contender=contender, rep=rep)
        progress(s)
        samples.append(s)
    return samples


def one_outage(opts: SupervisorOptions, *, supervise: bool) -> dict[str, Any]:
    sim = {"outage_after": f"{opts.outage_after:g}", "outage_for": f"{opts.outage_for:g}", "outage_kind": "closed"}
    settings = {"IBKR_RESET_WINDOWS": window_around_now(10), "GATEWAY_DOWN_ALERT_AFTER": "1"}
    name = "supervisor-outage" if supervise else "supervisor-outage-startup-only"
    with Supervised(opts, name, sim=sim, settings=settings, supervise=supervise) as world:
        world.start()
        took_over = time.time()
        start = (world.gw.state() or {}).get("StartedAt")
        before = len(world.hook.received)
        logged_in = world.gw.logged_in_at()
        left = wait_for(lambda: world.connection() not in (None, "connected"), opts.outage_after + 30,
                        "the bot to notice the outage")
        noticed = time.time()
        ready = wait_for(lambda: world.connected_since(noticed - 1.0), opts.outage_for + 60,
                         "the bot connected after the outage")
        began_at, opened_at = _outage_times(world.gw.container)
        scheduled_end = logged_in + opts.outage_after + opts.outage_for if logged_in else None
        s: dict[str, Any] = {
            "supervised": supervise, "compose_project": world.gw.project, "t0": world.t0,
            "took_over_at": took_over, "logged_in_at": logged_in, "outage_began_at": began_at,
            "api_open_at": opened_at, "scheduled_end": scheduled_end, "noticed_state": left,
            "ready_at": ready,
            "latency": ready - opened_at if opened_at else None,
            "latency_from_schedule": ready - scheduled_end if scheduled_end else None,
            "open_vs_schedule": opened_at - scheduled_end if opened_at and scheduled_end else None,
            "supervising_before_outage": bool(began_at and took_over < began_at),
            "in_reset_window": bool(world.decisions("in_reset_window")),
            "restarted": (world.gw.state() or {}).get("StartedAt") != start,
            "alerts_during": len(world.alerts(before)),
        }
        if not supervise and opts.no_watch_wait > 0:
            s.update(no_watch(world, opts.no_watch_wait))
        return s


def _outage_times(container: str) -> tuple[float | None, float | None]:
    """When the simulator's outage began and its API opened again: Docker's timestamps of its lines."""
    out = docker("logs", "--timestamps", container, check=False, timeout=30).stdout
    began = opened = None
    for line in out.splitlines():
        stamp, _, text = line.partition(" ")
        if BEGIN_LINE in text and began is None:
            began = _docker_time(stamp)
        elif OPEN_LINE in text and opened is None:
            opened = _docker_time(stamp)
    return began, opened


def no_watch(world: Supervised, wait: float) -> dict[str, Any]:
    """Kill the container of a plain start-up's run and wait `wait` s: what the operator hears."""
    before = len(world.hook.received)
    kill_wall = time.time()
    docker("kill", world.gw.container, timeout=30)
    time.sleep(wait)
    return {"no_watch_wait": wait, "no_watch_alerts": len(world.alerts(before)),
            "no_watch_bot_back": world.connected_since(kill_wall) is not None,
            "no_watch_container": (world.gw.state() or {}).get("Status")}


# --- (c) an idle supervisor's cost --------------------------------------------------------------------

def idle_run(opts: SupervisorOptions) -> dict[str, Any]:
    with Supervised(opts, "supervisor-idle") as world:
        world.start()
        assert world.proc is not None
        time.sleep(2.0)  # past the take-over's own work
        orch, bot_pid = psutil.Process(world.proc.pid), world.bot_pid()
        rows, kids_seen = [], set()
        end = time.monotonic() + opts.idle_seconds
        while True:
            row, kids = _idle_sample(orch, bot_pid)
            rows.append(row)
            kids_seen |= kids
            if time.monotonic() >= end:
                break
            time.sleep(min(opts.sample_every, max(end - time.monotonic(), 0.0)))
        s = idle_summary(rows)
        s.update(bot_pid=bot_pid, orchestrator_pid=world.proc.pid, compose_project=world.gw.project,
                 live_children_seen=len(kids_seen), still_connected=world.connection() == "connected",
                 outages=len(world.decisions("outage_began")), alerts=len(world.alerts()),
                 samples_raw=rows)
        s.update(inspect_cost(world.gw.container))  # the cron poller's one call a minute, on this container
        s["cron_cpu_per_min"] = s["inspect_cpu_s"] * 60 / opts.cron_every
        return s


def _idle_sample(orch: psutil.Process, bot_pid: int | None) -> tuple[dict[str, float], set[int]]:
    """One look: the orchestrator's CPU (own + reaped + live non-bot children) and RSS; the bot's."""
    with orch.oneshot():
        t = orch.cpu_times()
        own_rss = orch.memory_info().rss
    cpu_own, cpu_reaped = t.user + t.system, t.children_user + t.children_system
    cpu_live, rss_kids, kids = 0.0, 0, set()
    bot_cpu = bot_rss = 0.0
    bot_tree: set[int] = set()
    if bot_pid:
        with contextlib.suppress(psutil.Error):
            bot = psutil.Process(bot_pid)
            bt = bot.cpu_times()
            bot_cpu, bot_rss = bt.user + bt.system, bot.memory_info().rss / 2**20
            bot_tree = {bot_pid, *(p.pid for p in bot.children(recursive=True))}
    for kid in orch.children(recursive=True):
        if kid.pid in bot_tree:
            continue
        with contextlib.suppress(psutil.Error):
            k = kid.cpu_times()
            cpu_live += k.user + k.system + k.children_user + k.children_system
            rss_kids += kid.memory_info().rss
            kids.add(kid.pid)
    return {"t": time.time(), "cpu": cpu_own + cpu_reaped + cpu_live, "cpu_own": cpu_own,
            "rss_own_mb": own_rss / 2**20, "rss_tree_mb": (own_rss + rss_kids) / 2**20,
            "bot_cpu": bot_cpu, "bot_rss_mb": bot_rss}, kids


def idle_summary(rows: list[dict[str, float]]) -> dict[str, Any]:
    first, last = rows[0], rows[-1]
    minutes = (last["t"] - first["t"]) / 60
    per_min = (lambda k: (last[k] - first[k]) / minutes) if minutes > 0 else (lambda k: None)
    return {"window_s": last["t"] - first["t"], "n_samples": len(rows),
            "cpu_per_min": per_min("cpu"), "cpu_own_per_min": per_min("cpu_own"),
            "rss_own_max_mb": max(r["rss_own_mb"] for r in rows), "rss_own_end_mb": last["rss_own_mb"],
            "rss_tree_max_mb": max(r["rss_tree_mb"] for r in rows), "rss_tree_end_mb": last["rss_tree_mb"],
            "bot_cpu_per_min": per_min("bot_cpu"), "bot_rss_max_mb": max(r["bot_rss_mb"] for r in rows),
            "bot_rss_end_mb": last["bot_rss_mb"]}


def inspect_cost(container: str, n: int = 10) -> dict[str, float]:
    """One `docker inspect` of a container: CPU seconds (RUSAGE_CHILDREN) and wall time, mean of `n`."""
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    for _ in range(n):
        docker("inspect", "--type", "container", "--format", "{{json .State}}", container, check=False, timeout=30)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"inspect_cpu_s": cpu / n, "inspect_wall_s": wall / n}


# --- the scenario ---------------------------------------------------------------------------------------

def scenario_8(opts: SupervisorOptions, progress: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    idle: dict[str, Any] = {}

    def run_idle() -> None:
        try:
            idle.update(idle_run(opts))
        except (BenchError, OSError, psutil.Error) as exc:
            idle["error"] = f"scenario 8 idle: {exc}"

    thread = threading.Thread(target=run_idle, name="bench-idle", daemon=True) if opts.idle_seconds > 0 else None
    if thread:
        thread.start()
    samples = kill_reps(opts, progress) + outage_reps(opts, progress)
    if thread:
        thread.join(opts.idle_seconds + 180)
        s = idle if idle else {"error": "scenario 8 idle: did not finish"}
        s.update(scenario="8", part="idle", contender="project")
        progress(s)
        samples.append(s)
    return samples


def progress(s: dict[str, Any]) -> None:
    if s.get("error"):
        log.warning("scenario 8: %s", s["error"])
    elif s["part"] == "kill":
        log.info("scenario 8 kill %d: alert %.2f s, trading-ready %.2f s (%s)", s["rep"], s["kill_to_alert"],
                 s["kill_to_ready"], s["alert"][:60])
    elif s["part"] == "outage":
        lat = s.get("latency")
        log.info("scenario 8 outage %s %d: API back -> connected %s", s["contender"], s["rep"],
                 f"{lat:.2f} s" if lat is not None else "?")
    else:
        log.info("scenario 8 idle: %.3f CPU-s/min, RSS max %.1f MB over %.0f s", s["cpu_per_min"] or -1,
                 s["rss_own_max_mb"], s["window_s"])

