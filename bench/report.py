"""Statistics and the Markdown report (docs/BENCHMARKS.md) from a results JSON.

Median and p95 per cell; p95 is the linear interpolation between order statistics (numpy's
default), so with 10 samples it lies between the 9th and 10th smallest. Ratio = the
baseline's median / this project's median in the same cell ("× slower than this project").

The report is regenerated from data every time, except the hand-written reading between
`<!-- reading:start -->` and `<!-- reading:end -->`, which is carried over from the file
being replaced, the gameplan section between `<!-- gameplan:start -->` and
`<!-- gameplan:end -->`, which `python -m bench.gameplan` writes, and the order firewall's section
between `<!-- firewall:start -->` and `<!-- firewall:end -->`, which `python -m bench.firewall`
writes: this keeps both as they are.

Partial reruns (`python -m bench --rerun NAME`, results in bench/results/NAME.json) started
after the full run get a section each ("R1", "R2", … oldest first), and their figures replace
the full run's in the Goals table for the cells they measured (marked with their tag). A newer
full run makes them disappear from the report: it measured everything again.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.contenders import LABELS

READING_START, READING_END = "<!-- reading:start -->", "<!-- reading:end -->"
GAMEPLAN_START, GAMEPLAN_END = "<!-- gameplan:start -->", "<!-- gameplan:end -->"
FIREWALL_START, FIREWALL_END = "<!-- firewall:start -->", "<!-- firewall:end -->"
RECOVERY_START, RECOVERY_END = "<!-- recovery:start -->", "<!-- recovery:end -->"
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
PLACEHOLDER = "_Reading not written yet: add it between the reading markers (kept when the report is regenerated)._"

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


# --- statistics ----------------------------------------------------------------------------------

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


def fmt(x: float | None, unit: str = " s", digits: int = 2) -> str:
    if x is None:
        return "–"
    return f"{x:.{digits}f}{unit}"


def ratio(baseline: float | None, project: float | None) -> str:
    if baseline is None or project is None:
        return "–"
    if project <= 0 or baseline < 0:
        return "n/a"
    return f"{baseline / project:.1f}×"


def count(samples: list[dict[str, Any]], key: str) -> str:
    return f"{sum(1 for s in samples if s.get(key))}/{len(samples)}"


def exit_codes(samples: list[dict[str, Any]]) -> str:
    codes: dict[Any, int] = {}
    for s in samples:
        codes[s.get("exit_code")] = codes.get(s.get("exit_code"), 0) + 1
    return ", ".join(f"{k}×{v}" if v > 1 else f"{k}" for k, v in sorted(codes.items(), key=lambda kv: str(kv[0])))


def before_login(s: dict[str, Any]) -> bool:
    """The design decided the Gateway was ready before the simulator had logged in: a negative
    latency, or (runs where the bench read the login moment only once the design had finished)
    no login yet when the design was already done."""
    if isinstance(s.get("detection_latency"), (int, float)):
        return s["detection_latency"] < 0
    return s.get("detected_at") is not None and s.get("logged_in_at") is None


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def label(contender: str) -> str:
    return LABELS.get(contender, contender)


# --- the numbers behind the goals ---------------------------------------------------------------------

def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The figures the goals are judged on (also stored in the JSON)."""
    S = results["samples"]
    out: dict[str, Any] = {}
    s1 = S.get("1", [])
    for variant, (key, _, _) in VARIANTS.items():
        out[key] = {
            f"{d:g}": {c: {"n": len(v), "median": median(values(v, "detection_latency")),
                           "p95": p95(values(v, "detection_latency"))}
                       for c in _contenders(s1) if (v := select(s1, contender=c, login_delay=d, variant=variant))}
            for d in sorted({s["login_delay"] for s in s1 if s.get("variant") == variant and "login_delay" in s})
        }
    warm = select(S.get("2", []), mode="warm")
    out["warm_overhead"] = {c: {"n": len(v), "median": median(values(v, "overhead")), "p95": p95(values(v, "overhead"))}
                            for c in _contenders(warm) if (v := select(warm, contender=c))}
    s3 = S.get("3", [])
    out["deadline_errors"] = {c: [e for s in select(s3, contender=c) for e in s.get("wait_errors", [])]
                              for c in _contenders(s3)}
    s4 = S.get("4", [])
    out["repeat_run"] = {c: {"n": len(v), "median": median(values(v, "time_to_refuse")),
                             "p95": p95(values(v, "time_to_refuse"))}
                         for c in _contenders(s4) if (v := select(s4, contender=c))}
    s5 = S.get("5", [])
    out["cost"] = {lb: {"n": len(v), "cpu_per_min_median": median(values(v, "wait_cpu_per_min")),
                        "cpu_per_min_max": max(values(v, "wait_cpu_per_min"), default=None),
                        "peak_rss_own_mb_max": max(values(v, "peak_rss_own_mb"), default=None),
                        "connections_median": median(values(v, "host_connections_before_login"))}
                   for lb in _labels(s5) if (v := select(s5, label=lb))}
    s7 = S.get("7", [])
    for key, no in (("reconnect", 1), ("reconnect_second", 2)):
        cells = select(s7, outage_no=no)
        out[key] = {f"{d:g}": {c: _reconnect_cell(v) for c in _contenders(cells)
                               if (v := select(cells, contender=c, outage_s=d))}
                    for d in sorted({s["outage_s"] for s in cells if "outage_s" in s})}
    s8 = S.get("8", [])
    if s8:
        kills, idle = select(s8, part="kill"), select(s8, part="idle")
        outages = select(s8, part="outage")
        out["supervisor"] = {
            **{key: _stat(kills, key) for key in ("kill_to_alert", "death_to_alert", "kill_to_ready")},
            "outage": {c: _stat(select(outages, contender=c), "latency") for c in _contenders(outages)},
            "idle": {k: v for k, v in idle[0].items() if k != "samples_raw"} if idle else {},
        }
    s6 = S.get("6", [])
    out["cli"] = {c: {"n": len(v), "median": median(values(v, "wall")), "p95": p95(values(v, "wall"))}
                  for c in _contenders(s6) if (v := select(s6, contender=c))}
    return out


def _stat(v: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """n runs, how many gave `key`, and its median, p95 (None unless every run gave it) and max."""
    got = values(v, key)
    return {"n": len(v), "ok": len(got), "median": median(got), "p95": p95(got) if len(got) == len(v) else None,
            "max": max(got, default=None)}


def _reconnect_cell(v: list[dict[str, Any]]) -> dict[str, Any]:
    lat = values(v, "latency")
    return {"n": len(v), "recovered": sum(1 for s in v if s.get("recovered")), "median": median(lat),
            "p95": p95(lat) if len(lat) == len(v) else None, "max": max(lat, default=None)}


def _contenders(samples: list[dict[str, Any]]) -> list[str]:
    order = ["project", "handoff", "common", "watchdog"]
    found = {s.get("contender") for s in samples if s.get("contender")}
    return [c for c in order if c in found] + sorted(found - set(order))


def _labels(samples: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for s in samples:
        if s.get("label") and s["label"] not in seen:
            seen.append(s["label"])
    return seen


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


# --- partial reruns ----------------------------------------------------------------------------------

def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def find_reruns(directory: Path, main: dict[str, Any], skip: Iterable[str] = (),
                root: Path | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Results files in `directory` (not named in `skip`, not quick runs) started after the full
    run `main`, oldest first, as (path relative to `root`, results with a fresh summary)."""
    start = _when(main.get("meta", {}).get("started"))
    if start is None:
        return []
    found = []
    for path in sorted(directory.glob("*.json")):
        if path.name in set(skip):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        meta = data.get("meta") if isinstance(data, dict) else None
        if not isinstance(meta, dict) or meta.get("quick") or not isinstance(data.get("samples"), dict):
            continue
        when = _when(meta.get("started"))
        if when is None or when <= start:
            continue
        data["summary"] = summary(data)
        rel = path.relative_to(root).as_posix() if root and path.is_relative_to(root) else str(path)
        found.append((when, rel, data))
    return [(rel, data) for _, rel, data in sorted(found, key=lambda x: x[0])]


# --- the report ---------------------------------------------------------------------------------------

def render(results: dict[str, Any], plot_path: Path | None, out_path: Path,
           reruns: Sequence[tuple[str, dict[str, Any]]] = ()) -> str:
    """The report; `reruns`: (path, results) of partial reruns newer than this full run, oldest first."""
    meta, S = results["meta"], results["samples"]
    summ = summary(results)
    tagged = [(f"R{i}", path, r) for i, (path, r) in enumerate(reruns, 1)]
    goal_rows = goals(summ, [(tag, r.get("summary") or summary(r)) for tag, _, r in tagged])
    parts = [
        "# Benchmarks: what the orchestrator adds to the Gateway's own start-up",
        "",
        "_Generated by `python -m bench` (bench/report.py) from "
        f"`{meta.get('json_path', 'the results JSON')}`; regenerate rather than edit, except the reading below._",
        "",
        "The operator's question: **how soon after the Gateway is logged in is my bot trading, and how sure "
        "is that?** Three contenders, run in the same invocation, on the same machine, against the same "
        "real Docker Engine and the Gateway simulator container (`ibkr-gateway-simulator:local` under "
        "`docker/gateway/docker-compose.yml` + `docker-compose.sim.yml`), interleaved within each "
        "repetition (order rotated every repetition) so that a burst of load hits all of them alike:",
        "",
        "* **this project**: `python -m src.orchestration.startup`, default settings (probe every "
        "0.25 s, TWS API handshake, `docker events`, bot readiness by `READY=1`);",
        "* **handoff design**: `bench/baselines/handoff.py`, the spec's sample orchestrator re-implemented "
        "for its timing: Docker health + a TCP port check, `timeout // interval` attempts with 5 s sleeps "
        "(the checks' own time not counted), a fixed `sleep(5)` after starting the bot; its crashing bugs "
        "fixed, its timing kept (see the module docstring);",
        f"* **common practice**: `bench/baselines/common_practice.sh`: `docker compose up -d --wait`, a "
        f"fixed `sleep {meta['options']['common_sleep']:g}` "
        + ("(ib_async's Watchdog `appStartupTime` default)" if meta["options"]["common_sleep"] == 30 else
           "(**shortened** for this run: ib_async's Watchdog `appStartupTime` default is 30 s)")
        + ", then start the bot; nothing confirms it.",
        "",
        "All three start the same bot, `python -m src.main`, with the same arguments. For the baselines "
        "\"done\" is what the design believes (process exit); whether the bot was **really** ready at that "
        "moment is checked separately: the bot writes `state/bot_ready.json` only once ib_async is "
        "connected, with its own timestamp.",
        "",
        "**Clocks.** The simulator records its login moment with `time.time()` inside its container "
        "(`SIM_STATE_FILE`); containers have no clock of their own (they read the host kernel's), so that "
        "instant, the orchestrator's UTC journal (`runs.jsonl` transitions, ms resolution) and the bench's "
        "`time.time()` are readings of one clock and are subtracted directly.",
        "",
        "## Machine and command",
        "",
        table(["", ""], [[k, f"`{v}`" if k == "command" else str(v)] for k, v in [
            ("command", meta.get("command")), ("date (UTC)", meta.get("started")),
            ("duration", fmt(meta.get("duration_s"), " s", 0)), ("git commit", meta.get("git")),
            ("src/ digest at start / end", f"{meta.get('src_digest')} / {meta.get('src_digest_end')}"),
            ("CPU", meta.get("cpu")), ("cores (nproc)", meta.get("nproc")), ("memory", meta.get("memory")),
            ("kernel", meta.get("kernel")), ("Docker Engine", meta.get("docker")),
            ("Docker Compose", meta.get("compose")), ("Python", meta.get("python")),
            ("load average at start / end", meta.get("loadavg")),
        ]]),
        "",
        f"Repetitions per cell: {_reps_text(meta['options'])}. Other work may have run on this machine "
        "during the benchmark (it is shared); the interleaving is what keeps the ratios meaningful.",
        "",
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
        parts += _reruns_section(tagged, summ)
    if "1" in S:
        parts += _section_1(S["1"], summ, plot_path, out_path)
    if "1" in S or "2" in S:
        parts += _section_2(S.get("1", []) + S.get("2", []), meta)
    if "3" in S:
        parts += _section_3(S["3"])
    if "4" in S:
        parts += _section_4(S["4"])
    if "5" in S:
        parts += _section_5(S["5"], meta)
    if "6" in S:
        parts += _section_6(S["6"])
    if "7" in S:
        parts += _section_7(S["7"], meta)
    if "8" in S:
        parts += _section_8(S["8"], meta)
    errors = [s["error"] for group in S.values() for s in group if s.get("error")]
    if errors:
        parts += ["## Runs that failed", "", *[f"* {e}" for e in errors], ""]
    parts += _previous_gameplan_section(out_path)
    parts += _previous_firewall_section(out_path)
    parts += _previous_section(out_path, RECOVERY_START, RECOVERY_END)  # python -m bench.recovery's
    parts += ["## Reading", "", READING_START, _previous_reading(out_path), READING_END, ""]
    return "\n".join(parts)


def _reps_text(o: dict[str, Any]) -> str:
    prod = (f"the production-like variant: {o['prod_baseline_repeats']} (this project {o['prod_repeats']}); "
            if "prod_repeats" in o and o.get("prod_delays") else "")
    return (f"{o['repeats']} for this project in every cell; for the baselines {o['repeats']} except: login "
            f"delay ≥ 30 s: {o['slow_repeats']}; common practice, whose every run costs its fixed "
            f"{o['common_sleep']:g} s sleep: {o['common_repeats']}; {prod}the no-healthcheck variant: "
            f"{o.get('nohc_baseline_repeats', o['nohc_repeats'])} (this project {o['nohc_repeats']}). Scenario 5: "
            f"{o['cost_repeats']} repetitions of a {o['wait_seconds']:g} s wait. Scenario 6: {o['repeats']}")


def _reruns_section(tagged: list[tuple[str, str, dict[str, Any]]], summ: dict[str, Any]) -> list[str]:
    parts = ["## Reruns since the full run", "",
             "Partial runs (`python -m bench --rerun NAME …`) made after the full run below, on the same "
             "machine, each from its own results file. The code measured may differ from the full run's: "
             "compare the git commits and src/ digests.", ""]
    for tag, path, r in tagged:
        meta, S = r["meta"], r["samples"]
        scen = ", ".join(sorted(S))
        parts += [f"### [{tag}] Scenario {scen}, {meta.get('started')} (`{path}`)", "",
                  table(["", ""], [[k, f"`{v}`" if k == "command" else str(v)] for k, v in [
                      ("command", meta.get("command")), ("duration", fmt(meta.get("duration_s"), " s", 0)),
                      ("git commit", meta.get("git")),
                      ("src/ digest at start / end", f"{meta.get('src_digest')} / {meta.get('src_digest_end')}"),
                      ("load average at start / end", meta.get("loadavg")),
                  ]]), ""]
        if "1" in S:
            parts += _rerun_detection(S["1"], summ)
        if "5" in S:
            parts += [f"**Cost while waiting** (scenario 5, login delay {meta['options']['wait_seconds']:g} s; "
                      "definitions in section 5 below)", "", *_cost_table(S["5"])]
        for key in ("2", "3", "4", "6", "7", "8"):
            if key in S:
                body = (_section_2(S.get("1", []) + S["2"], meta) if key == "2" else
                        _section_7(S["7"], meta) if key == "7" else
                        _section_8(S["8"], meta) if key == "8" else
                        {"3": _section_3, "4": _section_4, "6": _section_6}[key](S[key]))
                parts += [re.sub(r"^## ", "#### ", line) for line in body]
    return parts


def _rerun_detection(s1: list[dict[str, Any]], main: dict[str, Any]) -> list[str]:
    """Scenario 1 of a rerun: every cell, its ratio to the baselines and the full run's figures beside."""
    rows = []
    for variant, (key, short, _) in VARIANTS.items():
        cells = [s for s in s1 if s.get("variant") == variant]
        for d in sorted({s["login_delay"] for s in cells if "login_delay" in s}):
            pm = median(values(select(cells, contender="project", login_delay=d), "detection_latency"))
            for c in _contenders(cells):
                v = select(cells, contender=c, login_delay=d)
                if not v:
                    continue
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


def _section_1(s1: list[dict[str, Any]], summ: dict[str, Any], plot: Path | None, out: Path) -> list[str]:
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
        for d in sorted({s["login_delay"] for s in cells if "login_delay" in s}):
            proj = select(cells, contender="project", login_delay=d)
            pm = median(values(proj, "detection_latency"))
            for c in _contenders(cells):
                v = select(cells, contender=c, login_delay=d)
                if not v:
                    continue
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


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())


def _section_2(samples: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    parts = ["## 2. End-to-end overhead", "",
             "Contender wall time (process start → exit, which is when a supervisor learns the result) "
             "minus the simulator's login delay. Cold: no container at the start (the runs of scenario 1). "
             "Warm: the Gateway already running, logged in and healthy, so the overhead is the whole wall "
             "time. \"start → bot ready\" is when the bot really was connected.", ""]
    cold = [s for s in samples if s.get("mode") == "cold" and s.get("variant") == "sim"]
    if cold:
        rows = []
        for d in sorted({s["login_delay"] for s in cold}):
            pm = median(values(select(cold, contender="project", login_delay=d), "overhead"))
            for c in _contenders(cold):
                v = select(cold, contender=c, login_delay=d)
                if v:
                    m = median(values(v, "overhead"))
                    rows.append([f"{d:g} s", label(c), str(len(v)), fmt(m), fmt(p95(values(v, "overhead"))),
                                 "1.0×" if c == "project" else ratio(m, pm),
                                 fmt(median(values(v, "start_to_bot_ready"))), count(v, "ready_at_claim")])
        parts += ["**Cold**", "", table(["login delay", "contender", "n", "overhead median", "p95", "ratio",
                                         "start → bot ready, median", "bot ready when \"done\""], rows), ""]
    warm = [s for s in samples if s.get("mode") == "warm"]
    if warm:
        pm = median(values(select(warm, contender="project"), "overhead"))
        rows = []
        for c in _contenders(warm):
            v = select(warm, contender=c)
            m = median(values(v, "overhead"))
            rows.append([label(c), str(len(v)), fmt(m), fmt(p95(values(v, "overhead"))),
                         "1.0×" if c == "project" else ratio(m, pm), fmt(median(values(v, "start_to_bot_ready"))),
                         count(v, "ready_at_claim"), fmt(median(values(v, "cpu_s")), " CPU-s")])
        parts += ["**Warm**", "", table(["contender", "n", "overhead median", "p95", "ratio",
                                         "start → bot ready, median", "bot ready when \"done\"",
                                         "CPU (process + children), median"], rows), ""]
    return parts


def _section_3(s3: list[dict[str, Any]]) -> list[str]:
    T = next((s.get("deadline") for s in s3 if s.get("deadline")), None)
    rows = []
    for c in _contenders(s3):
        v = select(s3, contender=c)
        errs = [e for s in v for e in s.get("wait_errors", [])]
        waits = [w for s in v for w in s.get("waits", [])]
        configured = fmt(T, " s", 0) + (" once" if c == "common" else " + restart + " + fmt(T, " s", 0))
        rows.append([label(c), str(len(v)), configured,
                     fmt(median(waits)), fmt(median(errs), " s", 2) if errs else "–",
                     fmt(max((abs(e) for e in errs), default=None)), fmt(median(values(v, "wall"))),
                     fmt(median(values(v, "total_error"))), exit_codes(v)])
    return ["## 3. Timeout accuracy", "",
            f"A Gateway that never logs in (`SIM_LOGIN_DELAY=3600`, connections accepted then closed, like "
            f"socat in front of a Gateway that is not up), configured deadline T = {T:g} s: this project "
            f"(`GATEWAY_HEALTH_TIMEOUT={T:g}`) and the handoff design (`timeout={T:g}`, interval 5 s) wait T, "
            "restart the container once, wait T again, then exit 1; common practice has one deadline, "
            f"Compose's `--wait-timeout {T:g}`, and no restart. \"wait\" = one waiting period as the design "
            "itself timed it; error = wait − T. The total includes start-up, `compose up` and the restart.",
            "",
            table(["contender", "n", "configured", "each wait, median", "error, median", "largest absolute error",
                   "total to exit, median", "total − configured, median", "exit codes"], rows), ""]


def _section_4(s4: list[dict[str, Any]]) -> list[str]:
    pm = median(values(select(s4, contender="project"), "time_to_refuse"))
    rows = []
    for c in _contenders(s4):
        v = select(s4, contender=c)
        m = median(values(v, "time_to_refuse"))
        who = {"project": "the orchestrator (bot lock held)", "handoff": "the orchestrator (process scan)",
               "common": "only the duplicate bot itself (its own lock)"}.get(c, "")
        rows.append([label(c), str(len(v)), fmt(m), fmt(p95(values(v, "time_to_refuse"))),
                     "1.0×" if c == "project" else ratio(m, pm), who, exit_codes(v),
                     count(v, "first_bot_still_running")])
    return ["## 4. Repeat run", "",
            "Everything already up (the Gateway and the bot of a first run); time for a second run to "
            "refuse. Common practice has no check: it sleeps, starts a second bot, and only this project's "
            "bot lock (`state/bot.pid`) makes that duplicate exit; a bot without one would run twice.", "",
            table(["contender", "n", "time to refuse, median", "p95", "ratio", "what refused", "exit codes",
                   "first bot untouched"], rows), ""]


def _section_5(s5: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
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
            "repetition).", "", *_cost_table(s5)]


def _cost_table(s5: list[dict[str, Any]]) -> list[str]:
    names = {"project": "this project (0.25 s probes)", "project-5s": "this project, probe every 5 s (spec value)",
             "project-nohc": "this project, container without healthcheck", "handoff": "handoff design",
             "common": "common practice (`compose up --wait`)"}
    rows = []
    for lb in _labels(s5):
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


def _section_6(s6: list[dict[str, Any]]) -> list[str]:
    base = median(values(select(s6, contender="python -c pass"), "wall"))
    rows = []
    for c in _contenders(s6):
        v = select(s6, contender=c)
        m = median(values(v, "wall"))
        cmd = "`python -m src.orchestration.startup --help`" if c == "project" else f"`{c}`"
        rows.append([cmd, str(len(v)), fmt(m, " s", 3), fmt(p95(values(v, "wall")), " s", 3),
                     ratio(m, base), fmt(median(values(v, "cpu_s")), " CPU-s", 3)])
    return ["## 6. CLI start-up", "",
            "Process start → exit, same interpreter (the project's virtualenv). Ratio against `python -c pass`.",
            "", table(["command", "n", "median", "p95", "× python -c pass", "CPU, median"], rows), ""]


def _reconnect_label(contender: str) -> str:
    if contender.startswith("candidate:"):
        return f"candidate `{contender.split(':', 1)[1]}` (local patch, not in src/)"
    return label(contender)


def _reconnect_rows(cells: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for d in sorted({s["outage_s"] for s in cells if "outage_s" in s}):
        base = median(values(select(cells, contender=RECONNECT_BASELINE, outage_s=d), "latency"))
        for c in _contenders(cells):
            v = select(cells, contender=c, outage_s=d)
            if not v:
                continue
            cell = _reconnect_cell(v)
            goal = "" if c == RECONNECT_BASELINE else (
                "–" if cell["recovered"] < cell["n"] and not cell["n"] else
                "**not met**" if cell["recovered"] < cell["n"] or cell["p95"] is None
                or cell["p95"] > GOALS["reconnect_p95"] else "**met**")
            up = median(values(v, "up_before_s"))
            rows.append([f"{d:g} s", _reconnect_label(c), str(cell["n"]), f"{cell['recovered']}/{cell['n']}",
                         fmt(cell["median"]), fmt(cell["p95"]), fmt(cell["max"]),
                         "1.0×" if c == RECONNECT_BASELINE else ratio(base, cell["median"]), goal,
                         fmt(median(values(v, "notice_latency")), " s", 3),
                         fmt(median(values(v, "failed_attempts")), "", 0),
                         *([fmt(up, " s", 0)] if up is not None else [])])
    return rows


def _section_7(s7: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    r = meta.get("reconnect", {})
    header = ["outage", "contender", "n", "recovered", "API back → connected and synced, median", "p95", "max",
              "Watchdog median ÷ this median", "goal p95 ≤ 2 s", "outage → noticed, median",
              "failed attempts, median"]
    parts = ["## 7. Reconnect after an outage", "",
             "From the instant the Gateway's API serves again after an outage of D seconds to the client being "
             "connected and synced again. The Gateway is the simulator **in the bench's own process** "
             "(`GatewaySimulator`, the protocol code the container runs), so the bench closes and opens its "
             "API at instants it knows exactly: \"API back\" is `open_api()` returning. The outage is the "
             "simulator's `closed` kind, as its timed outage does it: error 1100 to every client, then every "
             "connection closed and each new one closed on accept (socat in front of a restarting Gateway, "
             "as in the production image); after D s connectivity is restored and the API serves again. "
             "Every contender is a client of the same simulator during the same outage (start order "
             "rotated from one outage to the next):", ""]
    present = {s.get("contender") for s in s7}
    bullets = [
             f"* **this project**: the real bot, `python -m src.main --heartbeat {r.get('heartbeat', 1):g}`, "
             "started fresh for each outage (the first outage of its life); connected and synced = its "
             "readiness record `state/bot_ready.json` showing `connection: connected`, reason "
             "\"connected and synced\", written after the outage began (the file's mtime);",
             "* **ib_async Watchdog (defaults)**: `bench/baselines/watchdog.py`, the real "
             "`ib_async.Watchdog` loop with its default timing (appStartupTime 30 s, retryDelay 2 s, "
             "connectTimeout 2 s, appTimeout 20 s, probeTimeout 4 s) and a controller that does nothing: "
             "the bench, not Watchdog, restarts the Gateway, so only Watchdog's own waiting is modelled (a "
             "real controller would also restart and log in the Gateway each cycle: a lower bound). Its "
             "probe contract is SPY, not its default EURUSD, which the simulator does not list. One process "
             "for the whole scenario (its loop keeps no state from one outage to the next); connected and "
             "synced = its `startedEvent`;",
             "* **candidates**: the same bot run from a scratch copy of the repository with a local "
             "patch to src/ (`bench/candidates/`), to measure a suggested change before anyone makes it."]
    parts += [b for b, c in zip(bullets, ("project", RECONNECT_BASELINE, "candidate"), strict=True)
              if any(str(x).startswith(c) for x in present)]
    parts += ["",
             "\"outage → noticed\": from the outage's start to the client's first sign of it (the bot's record "
             "leaving `connected`; Watchdog's error/disconnect event). \"failed attempts\": connect attempts "
             "that failed during the outage (the bot's \"connection attempt N failed\" lines; Watchdog's "
             "cycles after the one the outage ended). Ratio: Watchdog's median ÷ this contender's in the same "
             "cell (> 1: faster than the baseline). A contender not connected within "
             f"{r.get('recovery_limit', 120):g} s of the API's return counts as not recovered, and the cell's "
             "goal is then not met.", ""]
    first = [s for s in s7 if s.get("outage_no") == 1]
    if first:
        n, slow = r.get("repeats"), r.get("slow_outage", 60)
        reps = f"{n} outages per duration" + (
            f", {r.get('slow_repeats')} at ≥ {slow:g} s" if any(d >= slow for d in r.get("outages", [])) else "")
        if r.get("second_repeats"):
            reps += (f"; the first outages of the backoff-reset sequences below count at "
                     f"{r.get('second_outage', 10):g} s too")
        parts += ["**First outage of a fresh bot**" + (f" ({reps})" if n else ""), "",
                  table(header, _reconnect_rows(first)), ""]
    second = [s for s in s7 if s.get("outage_no") == 2]
    if second:
        parts += [f"**Second outage: the backoff's reset.** The same bots: a first {r.get('second_outage', 10):g} s "
                  f"outage, then connected for about {r.get('up_between', 65):g} s (longer than the 60 s after "
                  "which `src/broker/connection.py` promises to reset the backoff), then a second "
                  f"{r.get('second_outage', 10):g} s outage, measured here.", "",
                  table([*header, "connected before it, median"], _reconnect_rows(second)), ""]
    cands = r.get("candidates") or {}
    if cands:
        parts += ["**Candidates** (the bot run from a scratch copy; the diff against this tree's src/ is in the "
                  "results file, `meta.reconnect.candidates`):", "",
                  table(["candidate", "src/ digest", "lines added / removed"],
                        [[f"`{lb}`", c.get("src_digest", "?"), f"+{c.get('lines_added')} / −{c.get('lines_removed')}"]
                         for lb, c in cands.items()]), ""]
    errors = [s["error"] for s in s7 if s.get("error")]
    if errors:
        parts += [f"Failed outages: {len(errors)}", "", *[f"* {e}" for e in errors], ""]
    return parts


def _section_8(s8: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    o = meta.get("supervisor", {})
    every = o.get("cron_every", 60)
    parts = ["## 8. The supervisor", "",
             "`python -m src.orchestration.startup --supervise` after the handoff (bench/supervisor.py): the real "
             "CLI, Docker and the simulator container, each run a Compose project of its own, a local webhook "
             "standing in for Discord (`testkit.webhook`), IBKR's reset windows off unless a part sets one.", ""]
    kills = select(s8, part="kill")
    outages = select(s8, part="outage")
    base = select(outages, contender=SUPERVISOR_BASELINE)
    idle = next(iter(select(s8, part="idle")), None)
    inspect_wall = (idle or {}).get("inspect_wall_s")
    if kills:
        alert, ready = _stat(kills, "kill_to_alert"), _stat(kills, "kill_to_ready")
        death = _stat(kills, "death_to_alert")
        late = [s for s in kills if s.get("kill_to_alert") is not None and s["kill_to_alert"] > 2.0]
        first_up = sum(1 for s in kills if s.get("first_seen_dead") is False)
        never = (f"none in {len(base)} × {o.get('no_watch_wait', 20):g} s after the kill "
                 f"({sum(s.get('no_watch_alerts', 0) for s in base)} alerts; bot back: "
                 f"{sum(1 for s in base if s.get('no_watch_bot_back'))}/{len(base)}); by design, never"
                 if base and any("no_watch_alerts" in s for s in base) else "never (by design; not run)")
        met = alert["p95"] is not None and alert["p95"] <= GOALS["alert_p95"]
        rows = [["`docker kill` called → first alert at the webhook", str(alert["n"]), fmt(alert["median"]),
                 fmt(alert["p95"]), fmt(alert["max"]), "≤ 5 s: " + ("**met**" if met else "**not met**")],
                ["container's death (Docker `FinishedAt`) → first alert", str(death["n"]), fmt(death["median"]),
                 fmt(death["p95"]), fmt(death["max"]), ""],
                ["`docker kill` called → bot trading-ready again", str(ready["n"]), fmt(ready["median"]),
                 fmt(ready["p95"]), fmt(ready["max"]), ""]]
        parts += [f"**(a) A dead Gateway container → the operator's alert.** {len(kills)} `docker kill`s of one "
                  "supervised stack's Gateway (outside any reset window), each once the previous one was over (the "
                  "bot trading-ready again, the supervisor's all-clear sent, 3 s more). Alert = the first webhook "
                  "request after the kill (the bench's monotonic clock on both ends); trading-ready = the bot's "
                  "readiness record `connection: connected` with `connection_since` after the kill.", "",
                  table(["measure", "n", "median", "p95", "max", "goal"], rows), "",
                  f"The supervisor's first sight of the outage was the container still up (the bot's record said "
                  f"`reconnecting` before Docker's `die` event reached it) in {first_up} of {len(kills)} kills; "
                  f"alerts later than 2 s: {len(late)} ({', '.join(fmt(s['kill_to_alert']) for s in late) or 'none'})."
                  f" Each kill met with one restart: {sum(1 for s in kills if s.get('restarts') == 1)}/{len(kills)}; "
                  f"all-clear sent: {sum(1 for s in kills if s.get('all_clear'))}/{len(kills)}.", "",
                  "Baselines, what an operator had before:", "",
                  table(["design", "kill → alert", "how it is known"], [
                      ["plain start-up (no `--supervise`): the bot reconnects for ever, nothing watches", never,
                       "measured: the plain start-up runs of (b) below, each container killed afterwards"],
                      [f"cron-style poller: `docker inspect` every {every:g} s, alert when not running",
                       f"median {fmt(every / 2 + (inspect_wall or 0))}, p95 {fmt(0.95 * every + (inspect_wall or 0))}",
                       f"computed: the next poll comes uniformly within {every:g} s, plus one `docker inspect` "
                       f"({fmt(inspect_wall, ' s', 3)}, measured)"]]), ""]
    if outages:
        rows = []
        for c in _contenders(outages):
            v = select(outages, contender=c)
            cell = _stat(v, "latency")
            sched = _stat(v, "latency_from_schedule")
            goal = "" if c == SUPERVISOR_BASELINE else ("≤ 2 s: **met**" if cell["p95"] is not None and cell["p95"]
                                                        <= GOALS["supervised_reconnect_p95"] else "≤ 2 s: **not met**")
            rows.append([("plain start-up, no supervisor (baseline)" if c == SUPERVISOR_BASELINE
                          else "this project, under `--supervise`"), str(cell["n"]), fmt(cell["median"]),
                         fmt(cell["p95"]), fmt(cell["max"]), goal, fmt(sched["median"]),
                         fmt(median(values(v, "open_vs_schedule")), " s", 3),
                         f"{sum(1 for s in v if s.get('in_reset_window'))}/{len(v)}",
                         f"{sum(1 for s in v if s.get('restarted'))}/{len(v)}",
                         str(sum(s.get("alerts_during", 0) for s in v)),
                         f"{sum(1 for s in v if s.get('supervising_before_outage'))}/{len(v)}"])
        parts += [f"**(b) API back → bot trading-ready, through the supervisor.** A fresh stack per run; the "
                  f"simulator's timed outage (kind `closed`, {o.get('outage_for', 5):g} s, "
                  f"{o.get('outage_after', 12):g} s after its login) inside a reset window set around now "
                  "(IBKR_RESET_WINDOWS; GATEWAY_DOWN_ALERT_AFTER 1 s), so the supervisor records it and leaves it "
                  "alone. \"API back\" = the simulator's `API: open again` line as Docker timed it "
                  "(`docker logs --timestamps`); connected = the bot's readiness record `connection: connected`, "
                  "its `connection_since`. Runs of the two designs interleaved.", "",
                  table(["design", "n", "API back → connected, median", "p95", "max", "goal",
                         "from the schedule's end, median", "log line − schedule, median",
                         "reset window recorded", "restarted", "alerts during", "supervisor up before the outage"],
                        rows), ""]
    if idle and not idle.get("error"):
        mins = idle["window_s"] / 60
        rows = [["CPU seconds per minute", fmt(idle["cpu_per_min"], "", 3), "≤ 0.1: " + (
                    "**met**" if idle["cpu_per_min"] <= GOALS["idle_cpu_per_min"] else "**not met**"),
                 fmt(idle.get("bot_cpu_per_min"), "", 3), fmt(idle.get("cron_cpu_per_min"), "", 3)],
                ["… of which the orchestrator process itself", fmt(idle["cpu_own_per_min"], "", 3), "", "", ""],
                ["RSS, max / end (its own)", f"{fmt(idle['rss_own_max_mb'], ' MB', 1)} / "
                 f"{fmt(idle['rss_own_end_mb'], ' MB', 1)}", "≤ 80 MB: " + (
                    "**met**" if idle["rss_own_max_mb"] <= GOALS["idle_rss_mb"] else "**not met**"),
                 f"{fmt(idle.get('bot_rss_max_mb'), ' MB', 1)} / {fmt(idle.get('bot_rss_end_mb'), ' MB', 1)}",
                 "0 between polls"],
                ["RSS with its live children (`docker events`), max / end", f"{fmt(idle['rss_tree_max_mb'], ' MB', 1)}"
                 f" / {fmt(idle['rss_tree_end_mb'], ' MB', 1)}", "", "", ""]]
        parts += [f"**(c) An idle supervisor's cost.** One supervised, healthy stack left alone for {mins:.1f} min "
                  f"({idle['n_samples']} samples, every {o.get('sample_every', 3):g} s; it ran beside (a) and (b), "
                  "each on its own stack). CPU = the orchestrator's own, its reaped children's (every docker CLI "
                  "call it waited for) and its live children's (the `docker events` stream), the bot and its "
                  "descendants excluded; the bot's own figures beside for information. Baseline: a cron-style "
                  f"poller's one `docker inspect` every {every:g} s (its CPU measured here with RUSAGE_CHILDREN, "
                  "mean of 10 calls).", "",
                  table(["figure", "supervisor", "goal", "the bot (information)", f"cron poller ({every:g} s)"], rows),
                  "", f"During the window: outages seen {idle.get('outages')}, bot still connected at the end: "
                  f"{idle.get('still_connected')}, live children seen: {idle.get('live_children_seen')}.", ""]
    errors = [s["error"] for s in s8 if s.get("error")]
    if errors:
        parts += [f"Failed runs: {len(errors)}", "", *[f"* {e}" for e in errors], ""]
    return parts


def _previous_gameplan_section(out_path: Path) -> list[str]:
    """The section `python -m bench.gameplan` wrote (markers included), or nothing."""
    return _previous_section(out_path, GAMEPLAN_START, GAMEPLAN_END)


def _previous_firewall_section(out_path: Path) -> list[str]:
    """The section `python -m bench.firewall` wrote (markers included), or nothing."""
    return _previous_section(out_path, FIREWALL_START, FIREWALL_END)


def replace_section(text: str, section: str, start: str, end: str) -> str:
    """`text` with the section between `start` and `end` replaced by `section` (markers included), or with it
    inserted before the reading (or at the end): how a bench module that is not `python -m bench` updates its
    own part of the report."""
    begin, finish = text.find(start), text.find(end)
    if 0 <= begin < finish:
        return text[:begin] + section + text[finish + len(end):]
    anchor = text.find("## Reading\n\n" + READING_START)
    if anchor < 0:
        return text.rstrip("\n") + "\n\n" + section + "\n"
    return text[:anchor] + section + "\n\n" + text[anchor:]


def _previous_section(out_path: Path, start: str, end: str) -> list[str]:
    try:
        text = out_path.read_text(encoding="utf-8")
    except OSError:
        return []
    match = re.search(re.escape(start) + r".*?" + re.escape(end), text, re.DOTALL)
    return [match.group(0), ""] if match else []


def _previous_reading(out_path: Path) -> str:
    try:
        text = out_path.read_text(encoding="utf-8")
    except OSError:
        return PLACEHOLDER
    match = re.search(re.escape(READING_START) + r"\n?(.*?)\n?" + re.escape(READING_END), text, re.DOTALL)
    return match.group(1).strip() if match and match.group(1).strip() else PLACEHOLDER
