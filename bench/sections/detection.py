"""1. Detection latency: from the simulator's login to each design deciding the Gateway is ready, per
healthcheck variant and login delay; and the plot, when there is one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.figures import VARIANTS
from bench.markdown import count, exit_codes, fmt, label, ratio, table
from bench.stats import before_login, contenders_in, median, p95, select, values


def section(s1: list[dict[str, Any]], plot: Path | None, out: Path) -> list[str]:
    parts = ["## 1. Detection latency", "",
             "From the simulator's own login moment to the moment each design decides the Gateway is ready "
             "(this project: its `GATEWAY_VALIDATED` transition in `runs.jsonl`; handoff: its wait loop "
             "sees Docker `healthy` + an open port; common practice: its fixed sleep ends). Cold start: "
             "each run creates its own container. Also: login → the bot really ready (its "
             "`bot_ready.json`), and whether the bot was ready when the design said it was done.", ""]
    for variant, (_, _, title) in VARIANTS.items():
        cells = [s for s in s1 if s.get("variant") == variant]
        if not cells:
            continue
        healthy = any(isinstance(s.get("login_to_docker_healthy"), float) for s in cells)
        rows = []
        for d, pm, c, v in delay_cells(cells):
            m = median(values(v, "detection_latency"))
            early = sum(1 for s in v if before_login(s))
            rows.append([f"{d:g} s", label(c), str(len(v)), fmt(m), fmt(p95(values(v, "detection_latency"))),
                         "1.0×" if c == "project" else ratio(m, pm), f"{early}/{len(v)}",
                         *([fmt(median(values(v, "login_to_docker_healthy")))] if healthy else []),
                         fmt(median(values(v, "login_to_bot_ready"))), fmt(p95(values(v, "login_to_bot_ready"))),
                         count(v, "ready_at_claim"), count(v, "bot_ready_at"), exit_codes(v)])
        parts += [f"**{title}**", "",
                  table(["login delay", "contender", "n", "detection median", "detection p95", "ratio",
                         "decided before login", *(["login → Docker healthy, median"] if healthy else []),
                         "login → bot ready, median", "p95", "bot ready when \"done\"",
                         "bot ever ready", "exit codes"], rows), ""]
    if plot is not None:
        rel = Path(_relpath(plot, out.parent))
        parts += [f"![Detection latency against login delay]({rel.as_posix()})", "",
                  "_Log scale. Markers: medians; bars: up to p95; dots: every run. Negative latencies "
                  "(a design that decided before the login) are drawn at the axis floor and listed in the "
                  "table._", ""]
    return parts


def delay_cells(cells: list[dict[str, Any]]) -> Iterator[tuple[float, float | None, str, list[dict[str, Any]]]]:
    """The cells of one healthcheck variant in report order: (login delay, this project's median detection
    latency at that delay, contender, its samples); a contender without a sample at that delay is left out."""
    for d in sorted({s["login_delay"] for s in cells if "login_delay" in s}):
        pm = median(values(select(cells, contender="project", login_delay=d), "detection_latency"))
        for c in contenders_in(cells):
            v = select(cells, contender=c, login_delay=d)
            if v:
                yield d, pm, c, v


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())
