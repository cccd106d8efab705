"""Scenario 7: from the Gateway's API serving again after an outage to the bot connected and synced.

The issue ("The trading gate", §3): an outage of 10, 30 and 60 s, side by side with ib_async's
Watchdog defaults (appStartupTime 30 s, retryDelay 2 s) as the baseline; goal p95 ≤ 2 s.

The Gateway is the simulator in this process (`GatewaySimulator`, the same TWS protocol code the
container runs), not the container: the benchmark itself then closes the API and opens it again
at instants it knows to the microsecond (`open_api()` returning), on one simulator for the whole
scenario, with no Docker port publishing in between. What is measured is the clients' reconnect
logic; Docker adds nothing to that.

The outage is the simulator's `closed` kind, exactly as its timed outage does it
(`--outage-kind closed`): error 1100 to every client, then every connection closed and each new
one closed on accept (socat in front of a Gateway that restarts, as in the production image);
after D seconds connectivity is restored and the API serves again. D is timed from `close_api()`
returning to `open_api()` being called.

Contenders, all clients of the same simulator during the same outage (each outage is shared by
all of them, so they see exactly the same outage and the same load; their start order is rotated
from one outage to the next):

* `project`: the real bot, `python -m src.main --heartbeat 1`, started fresh for every outage (the
  first outage of its life), recovered = its readiness record `state/bot_ready.json` showing
  connection=connected, reason "connected and synced", written after the outage began (the file's
  mtime: when the bot wrote it);
* `watchdog`: `bench/baselines/watchdog.py`, the real `ib_async.Watchdog` with its defaults and a
  controller that does nothing (see that module), one process for the whole scenario (its loop
  keeps no state from one outage to the next); recovered = its `startedEvent` (connectAsync,
  with its start-up sync, returned) after the outage began;
* candidates (`--reconnect-candidate LABEL=DIR`): the same bot run from another tree, a scratch
  copy with a local patch to src/ (bench/candidates/), to measure a suggested change before it is
  made; never the product.

A second cell checks the backoff's reset: the same bots go through a first 10 s outage, stay
connected longer than the reset period (STABLE_AFTER, 60 s), then a second 10 s outage.

The contender processes are bench/reconnect_clients.py; the candidates' trees,
bench/reconnect_candidates.py.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.env import REPO_ROOT, BenchError, RunDir
from bench.reconnect_candidates import describe_candidate, parse_candidate
from bench.reconnect_clients import BOT_HEARTBEAT, READY_REASON, Client, Watcher

__all__ = ["BOT_HEARTBEAT", "READY_REASON", "RECOVERY_LIMIT", "Client", "ReconnectOptions", "Watcher", "World",
           "describe_candidate", "estimate_seconds", "first_outage", "parse_candidate", "progress", "scenario_7",
           "second_outage"]

log = logging.getLogger("bench")
STABLE_AFTER = 60.0  # src/broker/connection.py: a connection up this long resets the backoff
SETTLE = 1.5  # after every client is connected, before the outage: the bots are in their serve loop
RECOVERY_LIMIT = 120.0  # after the API is back, how long a contender may take before it counts as not recovered
POLL = 0.02


@dataclass
class ReconnectOptions:
    outages: list[float]
    repeats: int = 10
    slow_repeats: int = 5  # outages >= SLOW_OUTAGE
    second_repeats: int = 3  # the backoff-reset cell (0: none)
    second_outage: float = 10.0
    up_between: float = STABLE_AFTER + 5  # connected this long between the two outages of that cell
    contenders: list[str] = field(default_factory=lambda: ["project", "watchdog"])
    candidates: dict[str, Path] = field(default_factory=dict)  # label -> tree
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    SLOW_OUTAGE = 60.0

    def reps(self, outage: float) -> int:
        return min(self.repeats, self.slow_repeats) if outage >= self.SLOW_OUTAGE else self.repeats


class World:
    """The simulator, the long-lived Watchdog, and a way to start fresh bots."""

    def __init__(self, opts: ReconnectOptions) -> None:
        from src.simulator import GatewaySimulator

        self.opts = opts
        sim_log = logging.getLogger("simulator")
        sim_log.propagate = False  # its lines go to the run directory, not the bench's stderr
        self._handler = logging.FileHandler(opts.workdir / "simulator.log", encoding="utf-8")
        sim_log.addHandler(self._handler)
        sim_log.setLevel(logging.INFO)
        self.sim = GatewaySimulator(port=0)
        self.watchdog: Client | None = None
        self.bots: list[Client] = []

    def __enter__(self) -> World:
        self.sim.start()
        if not self.sim.wait_logged_in(10):
            raise BenchError("the in-process simulator did not log in")
        if "watchdog" in self.opts.contenders:
            self.watchdog = Client("watchdog", REPO_ROOT, 3, RunDir.make(self.opts.workdir, "reconnect-watchdog"))
            self.watchdog.start(self.sim.port)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop_bots()
            if self.watchdog:
                self.watchdog.stop()
        finally:
            self.sim.stop()
            logging.getLogger("simulator").removeHandler(self._handler)
            self._handler.close()

    def bot_contenders(self) -> list[tuple[str, Path]]:
        out = [("project", REPO_ROOT)] if "project" in self.opts.contenders else []
        return out + [(f"candidate:{label}", root) for label, root in self.opts.candidates.items()]

    def start_bots(self, rep: int) -> list[Client]:
        names = self.bot_contenders()
        k = rep % max(len(names), 1)
        self.bots = []
        for name, root in names[k:] + names[:k]:
            cid = 1 if name == "project" else 10 + [n for n, _ in names].index(name)
            bot = Client(name, root, cid, RunDir.make(self.opts.workdir, f"reconnect-{name.replace(':', '-')}"))
            bot.start(self.sim.port)
            self.bots.append(bot)
        return self.bots

    def stop_bots(self) -> None:
        for bot in self.bots:
            bot.stop()
        self.bots = []

    def clients(self) -> list[Client]:
        return [*self.bots, *([self.watchdog] if self.watchdog else [])]

    def wait_connected(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            waiting = [c for c in self.clients() if not c.connected()]
            if not waiting:
                return
            dead = [c.contender for c in waiting if not c.alive()]
            if dead or time.monotonic() > deadline:
                raise BenchError(f"scenario 7: not connected before the outage: "
                                 f"{', '.join(c.contender for c in waiting)}" + (f" (exited: {', '.join(dead)})"
                                                                                 if dead else ""))
            time.sleep(0.05)

    def outage(self, seconds: float) -> list[dict[str, Any]]:
        """One outage of the `closed` kind, `seconds` long, followed through by every client."""
        sim = self.sim
        began = time.time()
        watchers = [Watcher(c, began) for c in self.clients()]  # their offsets: before anyone can react
        sim.connectivity_lost()  # as the simulator's own timed outage: 1100 first, then the API closes
        sim.close_api()
        closed_at = time.time()
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            for w in watchers:
                w.poll()
            time.sleep(min(POLL, left))
        sim.connectivity_restored()  # no client is connected: nobody gets 1102; new clients get no 1100
        reopen_called = time.time()
        sim.open_api()
        opened_at = time.time()
        deadline = time.monotonic() + RECOVERY_LIMIT
        while any(w.recovered_at is None for w in watchers) and time.monotonic() < deadline:
            for w in watchers:
                w.poll()
            time.sleep(POLL)
        out = []
        for w in watchers:
            s = w.sample(opened_at)
            s.update(outage_s=seconds, began_at=began, closed_at=closed_at, reopen_called_at=reopen_called,
                     opened_at=opened_at, measured_outage_s=reopen_called - closed_at)
            out.append(s)
        return out


def first_outage(world: World, seconds: float, rep: int) -> list[dict[str, Any]]:
    world.start_bots(rep)
    try:
        world.wait_connected(timeout=60 + 40)  # the Watchdog may still be inside its 32 s cycle
        time.sleep(SETTLE)
        return [dict(s, outage_no=1, rep=rep) for s in world.outage(seconds)]
    finally:
        world.stop_bots()


def second_outage(world: World, rep: int) -> list[dict[str, Any]]:
    """A first outage, connected for `up_between` (longer than the backoff's reset period), a second one."""
    opts = world.opts
    world.start_bots(rep)
    try:
        world.wait_connected(timeout=100)
        time.sleep(SETTLE)
        first = world.outage(opts.second_outage)
        if not all(s["recovered"] for s in first):
            return [dict(s, outage_no=1, rep=rep, sequence="second") for s in first]
        up_from = max(s["recovered_at"] for s in first)
        time.sleep(max(0.0, up_from + opts.up_between - time.time()))
        world.wait_connected(timeout=60)
        second = world.outage(opts.second_outage)
        by = {s["contender"]: s for s in first}
        for s in second:
            s["up_before_s"] = s["began_at"] - by[s["contender"]]["recovered_at"]
        return [dict(s, outage_no=1, rep=rep, sequence="second") for s in first] + \
               [dict(s, outage_no=2, rep=rep, sequence="second") for s in second]
    finally:
        world.stop_bots()


def scenario_7(opts: ReconnectOptions, progress: Any = None) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = []

    def keep(group: list[dict[str, Any]]) -> None:
        for s in group:
            s["scenario"] = "7"
            if progress:
                progress("7", s)
            samples.append(s)

    with World(opts) as world:
        for rep in range(max((opts.reps(d) for d in opts.outages), default=0)):
            for d in opts.outages:
                if rep < opts.reps(d):
                    keep(_guarded(f"scenario 7 outage {d:g} s", lambda d=d, rep=rep: first_outage(world, d, rep),
                                  outage_s=d, rep=rep, outage_no=1))
        for rep in range(opts.second_repeats):
            keep(_guarded("scenario 7 second outage", lambda rep=rep: second_outage(world, rep),
                          outage_s=opts.second_outage, rep=rep, outage_no=2, sequence="second"))
    return samples


def progress(scenario: str, s: dict[str, Any]) -> None:
    bits = [f"s{scenario}", s.get("contender", "?"), f"outage={s.get('outage_s', '-')}",
            f"#{s.get('outage_no', '-')}", f"rep={s.get('rep', '-')}"]
    if isinstance(s.get("latency"), float):
        bits.append(f"latency={s['latency']:.3f}")
    elif "recovered" in s:
        bits.append("NOT RECOVERED")
    if "failed_attempts" in s:
        bits.append(f"failed_attempts={s['failed_attempts']}")
    if s.get("error"):
        bits.append(f"ERROR {s['error']}")
    print("  " + " ".join(str(b) for b in bits), file=sys.stderr, flush=True)


def _guarded(what: str, fn: Any, **fields: Any) -> list[dict[str, Any]]:
    try:
        return fn()
    except (BenchError, OSError, ValueError, KeyError, TypeError, TimeoutError) as exc:
        log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
        return [{"error": f"{what}: {type(exc).__name__}: {exc}", **fields}]


def estimate_seconds(opts: ReconnectOptions) -> float:
    """Roughly: bots' start + settle + the outage + the slowest contender's recovery (measured shapes)."""
    slowest = 32.0 if "watchdog" in opts.contenders else 12.0  # the Watchdog's 2 + 30 s; the bot's 10 + 2 s
    total = 35.0 if "watchdog" in opts.contenders else 0.0  # its first connection: appStartupTime
    for d in opts.outages:
        total += opts.reps(d) * (4 + max(d + 14, slowest))
    total += opts.second_repeats * (2 * (4 + max(opts.second_outage + 14, slowest)) + opts.up_between)
    return total
