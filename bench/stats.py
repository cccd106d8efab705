"""The statistics behind the report's tables: quantiles of the samples of one cell, and which samples make a cell.

Median and p95 per cell; p95 is the linear interpolation between order statistics (numpy's
default), so with 10 samples it lies between the 9th and 10th smallest. A sample is a flat dict
(bench/contenders.py); one that failed carries `error` and is left out of every cell.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any


def quantile(values: list[float], q: float) -> float | None:
    xs = sorted(v for v in values if v is not None and not math.isnan(v))
    if not xs:
        return None
    pos = (len(xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: list[float]) -> float | None:
    return quantile(values, 0.5)


def p95(values: list[float]) -> float | None:
    return quantile(values, 0.95)


def values(samples: Iterable[dict[str, Any]], key: str) -> list[float]:
    return [s[key] for s in samples if isinstance(s.get(key), (int, float)) and not isinstance(s.get(key), bool)]


def select(samples: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [s for s in samples if not s.get("error") and all(s.get(k) == v for k, v in match.items())]


def before_login(s: dict[str, Any]) -> bool:
    """The design decided the Gateway was ready before the simulator had logged in: a negative
    latency, or (runs where the bench read the login moment only once the design had finished)
    no login yet when the design was already done."""
    if isinstance(s.get("detection_latency"), (int, float)):
        return s["detection_latency"] < 0
    return s.get("detected_at") is not None and s.get("logged_in_at") is None


def cell_stat(v: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """n runs, how many gave `key`, and its median, p95 (None unless every run gave it) and max."""
    got = values(v, key)
    return {"n": len(v), "ok": len(got), "median": median(got), "p95": p95(got) if len(got) == len(v) else None,
            "max": max(got, default=None)}


def reconnect_cell(v: list[dict[str, Any]]) -> dict[str, Any]:
    lat = values(v, "latency")
    return {"n": len(v), "recovered": sum(1 for s in v if s.get("recovered")), "median": median(lat),
            "p95": p95(lat) if len(lat) == len(v) else None, "max": max(lat, default=None)}


def contenders_in(samples: list[dict[str, Any]]) -> list[str]:
    order = ["project", "handoff", "common", "watchdog"]
    found = {s.get("contender") for s in samples if s.get("contender")}
    return [c for c in order if c in found] + sorted(found - set(order))


def by_contender(samples: list[dict[str, Any]], key: str) -> Iterator[tuple[str, list[dict[str, Any]], float | None]]:
    """Each contender in the report's order, its good samples, and the median of `key` over them."""
    for c in contenders_in(samples):
        v = select(samples, contender=c)
        yield c, v, median(values(v, key))


def labels_in(samples: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for s in samples:
        if s.get("label") and s["label"] not in seen:
            seen.append(s["label"])
    return seen
