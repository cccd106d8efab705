"""Scenario 8 (c): an idle supervisor's cost. One supervised, healthy stack left alone, sampled with psutil: the
orchestrator's CPU (its own, its reaped and its live children's, the bot excluded) and RSS; and the cron-style
poller's baseline, one `docker inspect`, measured on the same daemon."""

from __future__ import annotations

import contextlib
import resource
import time
from typing import Any

import psutil

from bench.supervised import Supervised, SupervisorOptions
from testkit.docker import docker


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
