"""5. Cost while waiting: each contender's CPU, memory and connections while the Gateway is not logged in yet."""

from __future__ import annotations

from typing import Any

from bench.markdown import fmt, table
from bench.stats import labels_in, median, select, values


def section(s5: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    wait = meta["options"]["wait_seconds"]
    return ["## 5. Cost while waiting", "",
            f"Login delay {wait:g} s. CPU = the contender's whole process tree (its own CPU, every child it "
            "reaped, and live children such as `docker events`), sampled every 0.1 s with psutil and "
            "interpolated to the waiting window (this project: `GATEWAY_WAITING` → `GATEWAY_VALIDATED`; "
            "handoff: its wait loop; common practice: `docker compose up --wait`). Peak RSS (own) is the "
            "contender process's VmHWM; (tree) the largest sum over its live processes during the wait. "
            "Connections: those the simulator logged from the host (through Docker's port publishing) "
            "before login; the container's own healthcheck connects from inside and is not counted. The "
            "contenders of one repetition run concurrently, each with its own Gateway (CPU-seconds and "
            "connection counts do not depend on who else runs; 60 s each in sequence would cost minutes per "
            "repetition).", "", *table_of(s5)]


def table_of(s5: list[dict[str, Any]]) -> list[str]:
    names = {"project": "this project (0.25 s probes)", "project-5s": "this project, probe every 5 s (spec value)",
             "project-nohc": "this project, container without healthcheck", "handoff": "handoff design",
             "common": "common practice (`compose up --wait`)"}
    rows = []
    for lb in labels_in(s5):
        v = select(s5, label=lb)
        rows.append([names.get(lb, lb), str(len(v)), fmt(median(values(v, "wait_window_s")), " s", 1),
                     fmt(median(values(v, "wait_cpu_s")), " CPU-s", 3),
                     fmt(median(values(v, "wait_cpu_per_min")), " CPU-s/min", 3),
                     fmt(max(values(v, "wait_cpu_per_min"), default=None), " CPU-s/min", 3),
                     fmt(median(values(v, "wait_cpu_own_per_min")), " CPU-s/min", 3),
                     fmt(max(values(v, "peak_rss_own_mb"), default=None), " MB", 1),
                     fmt(max(values(v, "peak_rss_tree_mb"), default=None), " MB", 1),
                     fmt(median(values(v, "host_connections_before_login")), "", 0),
                     fmt(median(values(v, "connections_per_min")), "", 0)])
    return [table(["contender", "n", "window", "CPU in window, median", "CPU per minute, median", "worst",
                   "of which the process itself, median", "peak RSS (own)", "peak RSS (tree)", "connections",
                   "per minute"], rows), ""]
