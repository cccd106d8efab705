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

The world of one run (the orchestrator, its Gateway and webhook) is bench/supervised.py; part (c)
is bench/supervisor_idle.py.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psutil

from bench.env import BenchError
from bench.supervised import Supervised, SupervisorOptions, wait_for
from bench.supervisor_idle import idle_run
from testkit.docker import container_state, docker
from testkit.schedule import window_around_now

__all__ = ["Supervised", "SupervisorOptions", "estimate_seconds", "idle_run", "kill_reps", "no_watch", "one_kill",
           "one_outage", "outage_reps", "progress", "scenario_8", "wait_for"]

log = logging.getLogger("bench")
OPEN_LINE = "API: open again"  # src/simulator/server.py, when a `closed` outage ends
BEGIN_LINE = "API: simulated outage (closed)"
KILL_SETTLE = 3.0  # after the all-clear, before the next kill: Docker's health and the bot settled


def estimate_seconds(o: SupervisorOptions) -> float:
    kills = 15 + o.kills * 12
    outages = (o.outages + o.baseline_outages) * (15 + o.outage_after + o.outage_for) + o.baseline_outages * (
        o.no_watch_wait + 2)
    return max(kills + outages, o.idle_seconds + 20 if o.idle_seconds else 0)


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
    # the supervisor records its decision, then posts the alert: the webhook may not have it yet
    with contextlib.suppress(BenchError):
        wait_for(lambda: any(t.startswith("Gateway back after") for _, t in world.alerts(before)), 10,
                 "the all-clear alert")
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

