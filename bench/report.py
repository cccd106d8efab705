"""The Markdown report (docs/BENCHMARKS.md) from a results JSON, put together from its sections.

The report is regenerated from data every time, except the hand-written reading between
`<!-- reading:start -->` and `<!-- reading:end -->`, which is carried over from the file
being replaced, the gameplan section between `<!-- gameplan:start -->` and
`<!-- gameplan:end -->`, which `python -m bench.gameplan` writes, and the order firewall's section
between `<!-- firewall:start -->` and `<!-- firewall:end -->`, which `python -m bench.firewall`
writes: this keeps both as they are (bench/markers.py).

Partial reruns (`python -m bench --rerun NAME`, results in bench/results/NAME.json) started
after the full run get a section each ("R1", "R2", … oldest first), and their figures replace
the full run's in the Goals table for the cells they measured (marked with their tag). A newer
full run makes them disappear from the report: it measured everything again.

Where the pieces are: the statistics in bench/stats.py, the cells' Markdown in bench/markdown.py,
the goals and `summary` in bench/figures.py, finding the reruns in bench/reruns.py, and one module
per section under bench/sections/. The names other code imports from here are re-exported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.figures import GOALS, RECONNECT_BASELINE, SUPERVISOR_BASELINE, VARIANTS, summary
from bench.markdown import count, exit_codes, fmt, label, ratio, table
from bench.markers import (
    FIREWALL_END,
    FIREWALL_START,
    GAMEPLAN_END,
    GAMEPLAN_START,
    PLACEHOLDER,
    READING_END,
    READING_START,
    RECOVERY_END,
    RECOVERY_START,
    carried,
    reading,
    replace_section,
)
from bench.reruns import find_reruns
from bench.sections import cli_startup, cost, detection, intro, overhead, reconnect, repeat, supervisor, timeout
from bench.sections.goals import goals
from bench.sections.goals import section as goals_section
from bench.sections.reruns import section as reruns_section
from bench.stats import before_login, median, p95, quantile, select, values

__all__ = [
    "FIREWALL_END", "FIREWALL_START", "GAMEPLAN_END", "GAMEPLAN_START", "GOALS", "PLACEHOLDER", "READING_END",
    "READING_START", "RECONNECT_BASELINE", "RECOVERY_END", "RECOVERY_START", "SUPERVISOR_BASELINE", "VARIANTS",
    "before_login", "count", "exit_codes", "find_reruns", "fmt", "goals", "label", "median", "p95", "quantile",
    "ratio", "render", "replace_section", "select", "summary", "table", "values",
]


def render(results: dict[str, Any], plot_path: Path | None, out_path: Path,
           reruns: Sequence[tuple[str, dict[str, Any]]] = ()) -> str:
    """The report; `reruns`: (path, results) of partial reruns newer than this full run, oldest first."""
    meta, S = results["meta"], results["samples"]
    summ = summary(results)
    tagged = [(f"R{i}", path, r) for i, (path, r) in enumerate(reruns, 1)]
    parts = intro.section(meta) + goals_section(summ, tagged)
    if tagged:
        parts += reruns_section(tagged, summ)
    if "1" in S:
        parts += detection.section(S["1"], plot_path, out_path)
    if "1" in S or "2" in S:
        parts += overhead.section(S.get("1", []) + S.get("2", []), meta)
    if "3" in S:
        parts += timeout.section(S["3"])
    if "4" in S:
        parts += repeat.section(S["4"])
    if "5" in S:
        parts += cost.section(S["5"], meta)
    if "6" in S:
        parts += cli_startup.section(S["6"])
    if "7" in S:
        parts += reconnect.section(S["7"], meta)
    if "8" in S:
        parts += supervisor.section(S["8"], meta)
    errors = [s["error"] for group in S.values() for s in group if s.get("error")]
    if errors:
        parts += ["## Runs that failed", "", *[f"* {e}" for e in errors], ""]
    parts += carried(out_path)  # python -m bench.gameplan's, bench.firewall's and bench.recovery's
    parts += reading(out_path)
    return "\n".join(parts)
