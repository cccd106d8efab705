"""Reruns since the full run: each partial rerun newer than the full run, its machine and command, then its own
figures, scenario by scenario (the other sections' renderers, their headings one level down)."""

from __future__ import annotations

import re
from typing import Any

from bench.figures import GOALS, VARIANTS
from bench.markdown import count, exit_codes, facts, fmt, label, ratio, table
from bench.sections import cli_startup, cost, detection, overhead, reconnect, repeat, supervisor, timeout
from bench.stats import before_login, median, p95, values


def section(tagged: list[tuple[str, str, dict[str, Any]]], summ: dict[str, Any]) -> list[str]:
    parts = ["## Reruns since the full run", "",
             "Partial runs (`python -m bench --rerun NAME …`) made after the full run below, on the same "
             "machine, each from its own results file. The code measured may differ from the full run's: "
             "compare the git commits and src/ digests.", ""]
    for tag, path, r in tagged:
        meta, S = r["meta"], r["samples"]
        scen = ", ".join(sorted(S))
        parts += [f"### [{tag}] Scenario {scen}, {meta.get('started')} (`{path}`)", "",
                  facts([
                      ("command", meta.get("command")), ("duration", fmt(meta.get("duration_s"), " s", 0)),
                      ("git commit", meta.get("git")),
                      ("src/ digest at start / end", f"{meta.get('src_digest')} / {meta.get('src_digest_end')}"),
                      ("load average at start / end", meta.get("loadavg")),
                  ]), ""]
        if "1" in S:
            parts += _detection(S["1"], summ)
        if "5" in S:
            parts += [f"**Cost while waiting** (scenario 5, login delay {meta['options']['wait_seconds']:g} s; "
                      "definitions in section 5 below)", "", *cost.table_of(S["5"])]
        for key in ("2", "3", "4", "6", "7", "8"):
            if key in S:
                body = (overhead.section(S.get("1", []) + S["2"], meta) if key == "2" else
                        reconnect.section(S["7"], meta) if key == "7" else
                        supervisor.section(S["8"], meta) if key == "8" else
                        {"3": timeout.section, "4": repeat.section, "6": cli_startup.section}[key](S[key]))
                parts += [re.sub(r"^## ", "#### ", line) for line in body]
    return parts


def _detection(s1: list[dict[str, Any]], main: dict[str, Any]) -> list[str]:
    """Scenario 1 of a rerun: every cell, its ratio to the baselines and the full run's figures beside."""
    rows = []
    for variant, (key, short, _) in VARIANTS.items():
        cells = [s for s in s1 if s.get("variant") == variant]
        for d, pm, c, v in detection.delay_cells(cells):
            lat = values(v, "detection_latency")
            m, top = median(lat), p95(lat)
            old = main.get(key, {}).get(f"{d:g}", {}).get(c)
            goal = ("–" if top is None else "**met**" if top <= GOALS["detection_p95"] else "**not met**") \
                if c == "project" else ""
            rows.append([short, f"{d:g} s", label(c), str(len(v)), fmt(m), fmt(top),
                         "1.0×" if c == "project" else ratio(m, pm), goal,
                         f"{fmt(old['median'])} / {fmt(old['p95'])}" if old and old.get("median") is not None
                         else "–",
                         f"{sum(1 for s in v if before_login(s))}/{len(v)}",
                         fmt(median(values(v, "login_to_docker_healthy"))),
                         fmt(median(values(v, "login_to_bot_ready"))), fmt(p95(values(v, "login_to_bot_ready"))),
                         count(v, "ready_at_claim"), exit_codes(v)])
    errors = [s["error"] for s in s1 if s.get("error")]
    return ["**Detection latency** (scenario 1; definitions in section 1 below). Ratio = the baseline's "
            "median / this project's in the same cell. \"Login → Docker healthy\" is when the container's "
            "own healthcheck first passed after the login (what a design that waits for Docker's `healthy` "
            "would wait; it also shows the healthcheck works).", "",
            table(["healthcheck", "login delay", "contender", "n", "detection median", "detection p95", "ratio",
                   "goal p95 ≤ 0.5 s", "full run: median / p95", "decided before login",
                   "login → Docker healthy, median", "login → bot ready, median", "p95",
                   "bot ready when \"done\"", "exit codes"], rows), ""] \
        + ([f"Failed runs: {len(errors)}", "", *[f"* {e}" for e in errors], ""] if errors else [])
