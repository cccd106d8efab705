"""The Goals table: each goal of issue 6 (and of scenarios 7 and 8), this project's figure and the verdict.

A partial rerun newer than the full run replaces the full run's figure for the cells it measured, marked
with its tag ("R1", "R2", … oldest first)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.figures import GOALS, VARIANTS, summary
from bench.markdown import fmt, ratio, table


def section(summ: dict[str, Any], tagged: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """The Goals section; `tagged`: (tag, path, results) of the reruns, oldest first."""
    goal_rows = goals(summ, [(tag, r.get("summary") or summary(r)) for tag, _, r in tagged])
    parts = [
        "## Goals",
        "",
        table(["goal (issue 6)", "measured", "verdict"], goal_rows) if goal_rows else "_No goal measured._",
        "",
    ]
    if tagged:
        parts += [", ".join(f"[{tag}]" for tag, _, _ in tagged) + ": from the partial rerun"
                  + ("s" if len(tagged) > 1 else "") + " in [Reruns since the full run](#reruns-since-the-full-run), "
                  "newer than the full run; a rerun's figure replaces the full run's for the cells it measured "
                  "(unmarked figures are the full run's).", ""]
    return parts


def goals(summ: dict[str, Any], reruns: Sequence[tuple[str, dict[str, Any]]] = ()) -> list[list[str]]:
    """The Goals table. `reruns`: (tag, summary) of partial reruns newer than the full run, oldest
    first; each figure comes from the newest source that measured it, marked with its tag."""
    rows = []

    def verdict(ok: bool | None) -> str:
        return "–" if ok is None else ("**met**" if ok else "**not met**")

    def mark(tag: str) -> str:
        return f" [{tag}]" if tag else ""

    def newest(key: str) -> tuple[Any, str]:
        """This project's figure under summary[key], from the newest source that has one."""
        for tag, rs in reversed(reruns):
            if rs.get(key, {}).get("project"):
                return rs[key]["project"], tag
        return summ.get(key, {}).get("project"), ""

    verdicts: list[bool | None] = []
    for i, (key, short, _) in enumerate(VARIANTS.values()):
        cells: dict[str, tuple[float | None, str]] = {
            d: (c["project"].get("p95"), "") for d, c in summ.get(key, {}).items() if "project" in c}
        for tag, rs in reruns:
            cells.update({d: (c["project"].get("p95"), tag) for d, c in rs.get(key, {}).items() if "project" in c})
        if not cells:
            continue
        found = [v for v, _ in cells.values() if v is not None]
        worst = max(found) if len(found) == len(cells) else None
        verdicts.append(None if worst is None else worst <= GOALS["detection_p95"])
        rows.append([(f"Detection latency p95 ≤ 0.5 s at every login delay (default settings): {short}" if i == 0
                      else f"… same: {short}"),
                     ", ".join(f"{d} s: {fmt(v)}{mark(tag)}" for d, (v, tag) in sorted(cells.items(),
                                                                                        key=lambda kv: float(kv[0]))),
                     verdict(verdicts[-1])])
    if len(verdicts) > 1:
        rows.append(["… in every cell above", f"{sum(1 for v in verdicts if v)} of {len(verdicts)} variants met",
                     verdict(None if None in verdicts else all(verdicts))])
    cells7: dict[str, tuple[dict[str, Any] | None, str]] = {}
    for key, suffix in (("reconnect", ""), ("reconnect_second", " (2nd outage, after 65 s up)")):
        for tag, source in [("", summ), *reruns]:
            for d, c in source.get(key, {}).items():
                if "project" in c:
                    cells7[f"{d} s{suffix}"] = (c["project"], tag)
    if cells7:
        def p95_text(cell: dict[str, Any] | None) -> str:
            if not cell:
                return "–"
            if cell["recovered"] < cell["n"]:
                return f"{cell['n'] - cell['recovered']}/{cell['n']} not recovered"
            return fmt(cell["p95"])
        found7 = [c for c, _ in cells7.values()]
        ok7 = None if not found7 else all(c and c["p95"] is not None and c["p95"] <= GOALS["reconnect_p95"]
                                          for c in found7)
        rows.append(["Reconnect: API back after an outage (closed) → bot connected and synced, p95 ≤ 2 s",
                     ", ".join(f"{d}: {p95_text(c)}{mark(tag)}"
                               for d, (c, tag) in sorted(cells7.items(), key=lambda kv: (
                                   "2nd" in kv[0], float(kv[0].split()[0])))),
                     verdict(ok7)])
    rows += _supervisor_goals(summ, reruns, verdict, mark)
    warm, tag = newest("warm_overhead")
    if warm:
        pm = warm["median"]
        rows.append(["End-to-end overhead, warm, median ≤ 1.5 s", fmt(pm) + mark(tag),
                     verdict(None if pm is None else pm <= GOALS["warm_overhead_median"])])
        src = next((rs for t, rs in reruns if t == tag), summ)
        hm = src.get("warm_overhead", {}).get("handoff", {}).get("median")
        if hm is not None and pm:
            rows.append(["… and ≥ 3× smaller than the handoff design's",
                         f"handoff {fmt(hm)} = {ratio(hm, pm)}{mark(tag)}",
                         verdict(hm / pm >= GOALS["handoff_overhead_ratio"])])
    errs, tag = newest("deadline_errors")
    if errs:
        worst = max(abs(e) for e in errs)
        rows.append(["Timeout accuracy within ±1 s of each configured deadline",
                     f"largest absolute error {fmt(worst)} over {len(errs)} deadlines{mark(tag)}",
                     verdict(worst <= GOALS["deadline_error"])])
    rep, tag = newest("repeat_run")
    if rep and rep.get("median") is not None:
        rows.append(["Repeat run ≤ 1 s", f"median {fmt(rep['median'])}, p95 {fmt(rep['p95'])}{mark(tag)}",
                     verdict(rep["p95"] <= GOALS["repeat_run"])])
    cost, tag = newest("cost")
    if cost and cost.get("cpu_per_min_max") is not None:
        rows.append(["Cost while waiting ≤ 1 CPU-second per minute",
                     f"median {fmt(cost['cpu_per_min_median'], ' CPU-s/min')}, worst "
                     f"{fmt(cost['cpu_per_min_max'], ' CPU-s/min')}{mark(tag)}",
                     verdict(cost["cpu_per_min_max"] <= GOALS["cpu_per_min"])])
    if cost and cost.get("peak_rss_own_mb_max") is not None:
        rows.append(["Peak RSS ≤ 80 MB", fmt(cost["peak_rss_own_mb_max"], " MB", 1) + mark(tag),
                     verdict(cost["peak_rss_own_mb_max"] <= GOALS["peak_rss_mb"])])
    return rows


def _supervisor_goals(summ: dict[str, Any], reruns: Sequence[tuple[str, dict[str, Any]]],
                      verdict: Any, mark: Any) -> list[list[str]]:
    """Scenario 8's rows of the Goals table, from the newest source that ran it."""
    sup, tag = summ.get("supervisor"), ""
    for t, rs in reruns:
        if rs.get("supervisor"):
            sup, tag = rs["supervisor"], t
    if not sup:
        return []
    rows = []

    def p95_row(goal: str, cell: dict[str, Any] | None, limit: float) -> None:
        if not cell or not cell.get("n"):
            return
        missing = cell["n"] - cell["ok"]
        text = (f"{missing}/{cell['n']} never came" if missing else
                f"p95 {fmt(cell['p95'])}, median {fmt(cell['median'])}, max {fmt(cell['max'])} (n = {cell['n']})")
        rows.append([goal, text + mark(tag), verdict(None if missing else cell["p95"] <= limit)])

    p95_row("Supervisor: Gateway container killed → the operator's alert, p95 ≤ 5 s", sup.get("kill_to_alert"),
            GOALS["alert_p95"])
    p95_row("Supervisor: API back after an outage (closed, in a reset window) → bot connected, p95 ≤ 2 s",
            sup.get("outage", {}).get("project"), GOALS["supervised_reconnect_p95"])
    idle = sup.get("idle") or {}
    if idle.get("cpu_per_min") is not None:
        rows.append([f"Idle supervisor ≤ 0.1 CPU-second per minute ({idle['window_s'] / 60:.1f} min, bot excluded)",
                     fmt(idle["cpu_per_min"], " CPU-s/min", 3) + mark(tag),
                     verdict(idle["cpu_per_min"] <= GOALS["idle_cpu_per_min"])])
        rows.append(["Idle supervisor RSS ≤ 80 MB (its own; max over the window)",
                     f"max {fmt(idle['rss_own_max_mb'], ' MB', 1)}, end {fmt(idle['rss_own_end_mb'], ' MB', 1)}"
                     + mark(tag), verdict(idle["rss_own_max_mb"] <= GOALS["idle_rss_mb"])])
    return rows
