"""6. CLI start-up: the orchestrator's `--help`, process start to exit, against `python -c pass`."""

from __future__ import annotations

from typing import Any

from bench.markdown import fmt, ratio, table
from bench.stats import by_contender, median, p95, select, values


def section(s6: list[dict[str, Any]]) -> list[str]:
    base = median(values(select(s6, contender="python -c pass"), "wall"))
    rows = []
    for c, v, m in by_contender(s6, "wall"):
        cmd = "`python -m src.orchestration.startup --help`" if c == "project" else f"`{c}`"
        rows.append([cmd, str(len(v)), fmt(m, " s", 3), fmt(p95(values(v, "wall")), " s", 3),
                     ratio(m, base), fmt(median(values(v, "cpu_s")), " CPU-s", 3)])
    return ["## 6. CLI start-up", "",
            "Process start → exit, same interpreter (the project's virtualenv). Ratio against `python -c pass`.",
            "", table(["command", "n", "median", "p95", "× python -c pass", "CPU, median"], rows), ""]
