"""The figures the report is judged on: the goals, scenario 1's healthcheck variants, the baselines, and
`summary`, the numbers behind the Goals table (also stored in the results JSON)."""

from __future__ import annotations

from typing import Any

from bench.stats import cell_stat, contenders_in, labels_in, median, p95, reconnect_cell, select, values

# scenario 1's variants of the container's Docker healthcheck (bench/env.py VARIANTS), in report order
VARIANTS = {
    "sim": ("detection", "simulator healthcheck (1 s)",
            "Simulator's own healthcheck (`docker-compose.sim.yml`: a Python TWS handshake, every 1 s)"),
    "production-like": ("detection_production_like", "production-like (production healthcheck, 5 s)",
                        "Production-like: the production Compose file's healthcheck "
                        "(`docker/gateway/scripts/api-healthcheck.sh`, interval 5 s, timeout 5 s, retries 3, "
                        "start_period 300 s; `bench/compose/production-healthcheck.yml`)"),
    "no-healthcheck": ("detection_no_healthcheck", "no healthcheck",
                       "No Docker healthcheck at all (`bench/compose/no-healthcheck.yml`; the image has none of "
                       "its own, the production Compose file adds `api-healthcheck.sh`: the production-like "
                       "variant)"),
}

GOALS = {
    "detection_p95": 0.5,  # s, every login delay, default settings
    "warm_overhead_median": 1.5,  # s
    "handoff_overhead_ratio": 3.0,  # handoff / project, warm, medians
    "deadline_error": 1.0,  # s, each configured deadline
    "repeat_run": 1.0,  # s
    "cpu_per_min": 1.0,  # CPU-s per minute of waiting
    "peak_rss_mb": 80.0,
    "reconnect_p95": 2.0,  # s, API back after an outage -> bot connected and synced ("The trading gate" §3)
    "alert_p95": 5.0,  # s, scenario 8: a killed Gateway container -> the operator's alert
    "supervised_reconnect_p95": 2.0,  # s, scenario 8: API back -> bot connected, under the supervisor
    "idle_cpu_per_min": 0.1,  # CPU-s per minute of an idle supervisor
    "idle_rss_mb": 80.0,
}
SUPERVISOR_BASELINE = "startup-only"  # scenario 8: the plain start-up, nothing watching after the handoff
RECONNECT_BASELINE = "watchdog"


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The figures the goals are judged on (also stored in the JSON)."""
    S = results["samples"]
    out: dict[str, Any] = {}
    s1 = S.get("1", [])
    for variant, (key, _, _) in VARIANTS.items():
        out[key] = {
            f"{d:g}": {c: {"n": len(v), "median": median(values(v, "detection_latency")),
                           "p95": p95(values(v, "detection_latency"))}
                       for c in contenders_in(s1) if (v := select(s1, contender=c, login_delay=d, variant=variant))}
            for d in sorted({s["login_delay"] for s in s1 if s.get("variant") == variant and "login_delay" in s})
        }
    warm = select(S.get("2", []), mode="warm")
    out["warm_overhead"] = {c: {"n": len(v), "median": median(values(v, "overhead")), "p95": p95(values(v, "overhead"))}
                            for c in contenders_in(warm) if (v := select(warm, contender=c))}
    s3 = S.get("3", [])
    out["deadline_errors"] = {c: [e for s in select(s3, contender=c) for e in s.get("wait_errors", [])]
                              for c in contenders_in(s3)}
    s4 = S.get("4", [])
    out["repeat_run"] = {c: {"n": len(v), "median": median(values(v, "time_to_refuse")),
                             "p95": p95(values(v, "time_to_refuse"))}
                         for c in contenders_in(s4) if (v := select(s4, contender=c))}
    s5 = S.get("5", [])
    out["cost"] = {lb: {"n": len(v), "cpu_per_min_median": median(values(v, "wait_cpu_per_min")),
                        "cpu_per_min_max": max(values(v, "wait_cpu_per_min"), default=None),
                        "peak_rss_own_mb_max": max(values(v, "peak_rss_own_mb"), default=None),
                        "connections_median": median(values(v, "host_connections_before_login"))}
                   for lb in labels_in(s5) if (v := select(s5, label=lb))}
    s7 = S.get("7", [])
    for key, no in (("reconnect", 1), ("reconnect_second", 2)):
        cells = select(s7, outage_no=no)
        out[key] = {f"{d:g}": {c: reconnect_cell(v) for c in contenders_in(cells)
                               if (v := select(cells, contender=c, outage_s=d))}
                    for d in sorted({s["outage_s"] for s in cells if "outage_s" in s})}
    s8 = S.get("8", [])
    if s8:
        kills, idle = select(s8, part="kill"), select(s8, part="idle")
        outages = select(s8, part="outage")
        out["supervisor"] = {
            **{key: cell_stat(kills, key) for key in ("kill_to_alert", "death_to_alert", "kill_to_ready")},
            "outage": {c: cell_stat(select(outages, contender=c), "latency") for c in contenders_in(outages)},
            "idle": {k: v for k, v in idle[0].items() if k != "samples_raw"} if idle else {},
        }
    s6 = S.get("6", [])
    out["cli"] = {c: {"n": len(v), "median": median(values(v, "wall")), "p95": p95(values(v, "wall"))}
                  for c in contenders_in(s6) if (v := select(s6, contender=c))}
    return out
