"""The firewall benchmark's figures: its goals, the summary of its samples (medians, p95, p99, what the
firewall adds, burst throughput and integrity), and the results as they are saved."""

from __future__ import annotations

import json
import re
from typing import Any

from bench.stats import median, quantile

GOALS = {
    "order_added_median_ms": 0.2,
    "order_added_p99_ms": 1.0,
    "burst_ratio": 0.9,  # firewall throughput / direct, medians
    "handshake_added_median_ms": 5.0,
    "rss_mb": 40.0,
    "idle_cpu_per_min": 0.05,
}
CONTENDERS = ("direct", "firewall")


def p99(values: list[float]) -> float | None:
    return quantile(values, 0.99)


def _seconds(samples: list[dict[str, Any]], measure: str, contender: str, key: str = "seconds") -> list[float]:
    return [s[key] for s in samples if s["measure"] == measure and s["contender"] == contender
            and not s.get("error") and not s.get("warmup") and isinstance(s.get(key), (int, float))]


def _latency(samples: list[dict[str, Any]], measure: str, key: str = "seconds") -> dict[str, Any]:
    """Median, p95, p99 per contender (ms), what the firewall adds to each, and the ratio of medians."""
    cell: dict[str, Any] = {}
    for contender in CONTENDERS:
        ms = [x * 1000 for x in _seconds(samples, measure, contender, key)]
        cell[contender] = {"n": len(ms), "median_ms": median(ms), "p95_ms": quantile(ms, 0.95), "p99_ms": p99(ms),
                           "max_ms": max(ms) if ms else None}
    d, f = cell["direct"], cell["firewall"]
    for q in ("median", "p95", "p99"):
        a, b = d[f"{q}_ms"], f[f"{q}_ms"]
        cell[f"added_{q}_ms"] = b - a if a is not None and b is not None else None
    cell["ratio"] = f["median_ms"] / d["median_ms"] if d["median_ms"] and f["median_ms"] is not None else None
    return cell


def summary(results: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    samples, process = results["samples"], results["process"]
    order, cancel, hand = _latency(samples, "order"), _latency(samples, "order", "cancel_seconds"), \
        _latency(samples, "handshake")
    bursts: dict[str, Any] = {}
    for contender in CONTENDERS:
        v = [s for s in samples if s["measure"] == "burst" and s["contender"] == contender and not s.get("warmup")
             and not s.get("error")]
        rates = [s["per_second"] for s in v if s.get("per_second")]
        bursts[contender] = {"n": len(v), "messages": options["burst"], "median_per_s": median(rates),
                             "min_per_s": min(rates) if rates else None,
                             "median_s": median([s["seconds"] for s in v]),
                             "median_first_s": median([s["first_after_s"] for s in v]),
                             "lost": sum(s["lost"] for s in v), "reordered": sum(s["reordered"] for s in v),
                             "duplicates": sum(s["duplicates"] for s in v)}
    d, f = bursts["direct"]["median_per_s"], bursts["firewall"]["median_per_s"]
    bursts["ratio"] = f / d if d and f is not None else None
    intact = all(bursts[c]["n"] == options["bursts"] and bursts[c]["lost"] == bursts[c]["reordered"]
                 == bursts[c]["duplicates"] == 0 for c in CONTENDERS)

    def le(x: float | None, goal: float) -> bool:
        return x is not None and x <= goal

    met = {
        "order_added_median": le(order["added_median_ms"], GOALS["order_added_median_ms"]),
        "order_added_p99": le(order["added_p99_ms"], GOALS["order_added_p99_ms"]),
        "burst_ratio": bursts["ratio"] is not None and bursts["ratio"] >= GOALS["burst_ratio"],
        "burst_intact": intact,
        "handshake_added_median": le(hand["added_median_ms"], GOALS["handshake_added_median_ms"]),
        "rss": le(process.get("rss_mb"), GOALS["rss_mb"]),
        "idle_cpu": le(process.get("cpu_per_min"), GOALS["idle_cpu_per_min"]),
    }
    expected = {"order": options["round_trips"], "handshake": options["handshakes"], "burst": options["bursts"]}
    counts_right = all(len(_seconds(samples, m, c)) == n for m, n in expected.items() for c in CONTENDERS)
    errors = [s["error"] for s in samples if s.get("error")] + results["errors"]
    all_ran = not errors and counts_right and "cpu_per_min" in process
    return {"order": order, "cancel": cancel, "handshake": hand, "burst": bursts, "met": met,
            "all_met": all(met.values()), "all_ran": all_ran, "errors": errors}


def stored(results: dict[str, Any]) -> dict[str, Any]:
    """The results as saved: latencies as whole microseconds, one list per measure and contender (a
    full run has 10,000 round trips); a burst, or a sample that failed, as it is."""
    samples = results["samples"]
    kept: dict[str, Any] = {"handshake": {}, "order": {}, "burst": {}}
    for contender in CONTENDERS:
        mine = [s for s in samples if s["contender"] == contender and not s.get("error")]
        hands = [s for s in mine if s["measure"] == "handshake"]
        orders = [s for s in mine if s["measure"] == "order"]
        statuses: dict[str, int] = {}
        for s in orders:
            key = f"{s['status']}, {s['cancel_status']}"
            statuses[key] = statuses.get(key, 0) + 1
        kept["handshake"][contender] = {"us": [round(s["seconds"] * 1e6) for s in hands],
                                        "client_ids": [s["client_id"] for s in hands[:1] + hands[-1:]]}
        kept["order"][contender] = {"us": [round(s["seconds"] * 1e6) for s in orders],
                                    "cancel_us": [round(s["cancel_seconds"] * 1e6) for s in orders],
                                    "statuses": statuses,
                                    "order_ids": [s["order_id"] for s in orders[:1] + orders[-1:]]}
        kept["burst"][contender] = [s for s in mine if s["measure"] == "burst"]
    kept["failed"] = [s for s in samples if s.get("error")]
    return {**results, "samples": kept}


def dumps(data: dict[str, Any]) -> str:
    """Indented JSON, each list of numbers on one line."""
    text = json.dumps(data, indent=1)
    return re.sub(r"\[\s*(-?[\d.eE+-]+(?:,\s*-?[\d.eE+-]+)*)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
