"""Benchmark: a 1 MiB gameplan validates in ≤ 0.2 s (issue "Live money" §7).

    python -m bench.gameplan [--quick] [--repeats N] [--json FILE] [--out FILE]

The orchestrator validates the gameplan, then the bot validates it again before it signals
readiness within BOT_READY_TIMEOUT. Before §7 the duplicate check of `earnings_blackout` was
quadratic and the list had no maximum: a valid 1 MiB plan took minutes, the bot missed its
deadline and nothing started, not even Strategy C.

Cases, each timed as the orchestrator runs it (`evaluate_gameplan` on the file: read, strict
JSON, schema, date), in this process, after one unmeasured warm-up call:

* largest: a usable plan with every list at its maximum, padded with spaces to exactly 1 MiB;
* blackout: a 1 MiB plan whose `earnings_blackout` holds ~120 000 distinct tickers (valid
  before §7): now invalid, rejected at the list's maximum;
* the duplicate check alone on that whole list: this project's linear check (without the
  length limit, so the algorithms compare like for like) and the old quadratic one
  (bench/baselines/gameplan_quadratic.py), which is timed on prefixes of 1/k of the list and
  extrapolated (× k²): run whole it takes minutes.

No Docker needed. Full run (10 repetitions, baseline on 1/32, 1/16, 1/8 prefixes, 3 each):
results in bench/results/gameplan.json and the "Gameplan validation" section of
docs/BENCHMARKS.md (between its markers; `python -m bench` keeps it when it regenerates the
rest). --quick (3 repetitions, baseline on 1/64 and 1/32 once, about a second): prints the
section, writes files only when --json / --out are given. Exit 0 when every case gave the
expected verdict, 1 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from string import ascii_uppercase
from typing import Any

from bench.baselines.gameplan_quadratic import duplicates as quadratic_duplicates
from bench.markdown import fmt, table
from bench.markers import GAMEPLAN_END, GAMEPLAN_START, replace_section, shown_path, write_section
from bench.stats import median, p95
from src.gameplan import schema
from src.gameplan.loader import MAX_FILE_BYTES, evaluate_gameplan
from testkit.plans import PLAN_DATE, valid_plan

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "gameplan.json"
REPORT = REPO_ROOT / "docs" / "BENCHMARKS.md"
GOAL_S = 0.2
ISSUE_BASELINE_S = 383.0  # the issue's measurement of a valid 1 MiB plan before §7 (another machine)


# --- the plans -----------------------------------------------------------------------------------------

def padded(plan: dict[str, Any], size: int = MAX_FILE_BYTES) -> bytes:
    data = json.dumps(plan).encode("utf-8")
    if len(data) > size:
        raise ValueError(f"the plan is {len(data)} bytes, more than {size}")
    return data + b" " * (size - len(data))


def largest_plan() -> dict[str, Any]:
    """Usable, and every list, map and text at its maximum."""
    plan = valid_plan()
    plan.update(
        symbols=[f"S{i}" for i in range(schema.MAX_SYMBOLS)],
        earnings_blackout=[f"E{i}" for i in range(schema.MAX_EARNINGS_BLACKOUT)],
        catalysts=["c" * 500] * schema.MAX_CATALYSTS,
        key_levels={f"K{i}": {f"level_{j}": 100.0 + j for j in range(schema.MAX_LEVELS_PER_SYMBOL)}
                    for i in range(schema.MAX_KEY_LEVEL_SYMBOLS)},
        alert_message="a" * 2000,
    )
    return plan


def tickers() -> Iterator[str]:
    for length in range(1, 6):
        for letters in product(ascii_uppercase, repeat=length):
            yield "".join(letters)


def blackout_plan() -> dict[str, Any]:
    """The example with as many distinct tickers in earnings_blackout as fit in 1 MiB."""
    plan = valid_plan()
    room = MAX_FILE_BYTES - len(json.dumps(plan).encode()) - 16
    traded, blackout = set(plan["symbols"]), []
    for ticker in tickers():
        if ticker in traded:
            continue
        room -= len(ticker) + 4  # quotes, comma, space
        if room < 0:
            break
        blackout.append(ticker)
    plan["earnings_blackout"] = blackout
    return plan


# --- measuring --------------------------------------------------------------------------------------------

def timed(function: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Wall seconds of `repeats` calls after one warm-up call, and the last result."""
    result = function()
    seconds = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def run(repeats: int, prefixes: list[int], baseline_repeats: int, workdir: Path) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = []
    day = PLAN_DATE
    for case, plan, expected in (("largest", largest_plan(), "ok"), ("blackout", blackout_plan(), "invalid")):
        path = workdir / f"{case}.json"
        path.write_bytes(padded(plan))
        seconds, verdict = timed(lambda p=path: evaluate_gameplan(p, today=day), repeats)
        samples.append({"case": case, "contender": "project", "what": "evaluate_gameplan(file)",
                        "bytes": path.stat().st_size, "blackout": len(plan["earnings_blackout"]),
                        "seconds": seconds, "verdict": verdict.kind, "reason": verdict.reason[:160],
                        "expected": expected, "ok": verdict.kind == expected})
        if case == "blackout":
            listed = tuple(plan["earnings_blackout"])
            seconds, found = timed(lambda t=listed: schema._repeated(t), repeats)
            samples.append({"case": "check", "contender": "project", "what": "linear duplicate check, whole list",
                            "items": len(listed), "seconds": seconds, "ok": found == []})
            for k in prefixes:
                part = listed[: len(listed) // k]
                seconds, found = timed(lambda t=part: quadratic_duplicates(t), baseline_repeats)
                samples.append({"case": "check", "contender": "before", "what": "tickers.count per entry",
                                "items": len(part), "prefix": k, "seconds": seconds,
                                "extrapolated_s": (median(seconds) or 0.0) * k * k, "ok": found == []})
    return samples


def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    one_mib = [s for s in samples if s["case"] in ("largest", "blackout")]
    worst = max((p95(s["seconds"]) or 0.0) for s in one_mib) if one_mib else None
    before = [s for s in samples if s["contender"] == "before"]
    largest_prefix = max(before, key=lambda s: s["items"]) if before else None
    check = next((s for s in samples if s["case"] == "check" and s["contender"] == "project"), None)
    return {
        "worst_p95_s": worst, "goal_s": GOAL_S, "met": worst is not None and worst <= GOAL_S,
        "before_extrapolated_s": largest_prefix["extrapolated_s"] if largest_prefix else None,
        "check_median_s": median(check["seconds"]) if check else None,
        "all_ok": all(s["ok"] for s in samples),
    }


def machine(command: str) -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True,
                                  timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        return done.stdout.strip() or ("" if done.returncode == 0 else "unknown")

    cpu = "unknown"
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "unknown")
    except OSError:
        pass
    dirty = git("status", "--porcelain", "src", "bench")
    return {"command": command, "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "git": git("rev-parse", "--short", "HEAD") + (" (+ uncommitted changes)" if dirty not in ("", "unknown")
                                                           else ""),
            "cpu": cpu, "nproc": os.cpu_count(), "python": platform.python_version(),
            "pydantic": _version("pydantic"), "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


# --- the report section -------------------------------------------------------------------------------------

def render(results: dict[str, Any], json_path: str) -> str:
    meta, samples, summ = results["meta"], results["samples"], results["summary"]
    by_case = {(s["case"], s["contender"]): s for s in samples if "prefix" not in s}
    before = sorted((s for s in samples if s["contender"] == "before"), key=lambda s: s["items"])
    check = by_case.get(("check", "project"))
    check_median = median(check["seconds"]) if check else None
    extrapolated = summ["before_extrapolated_s"]

    def times(x: float | None) -> str:
        if x is None or extrapolated is None or x <= 0:
            return "–"
        return f"{extrapolated / x:,.0f}×"

    rows = []
    for case, label in (("largest", "1 MiB, usable, every list at its maximum"),
                        ("blackout", "1 MiB, `earnings_blackout` of {n:,} tickers (valid before §7)")):
        s = by_case.get((case, "project"))
        if s is None:
            continue
        result = "usable" if s["verdict"] == "ok" else f"{s['verdict']}: {s['reason'].split(' (got')[0]}"
        rows.append([label.format(n=s["blackout"]), f"this project: `{s['what']}`", str(len(s["seconds"])),
                     fmt(median(s["seconds"]), " s", 4), fmt(p95(s["seconds"]), " s", 4),
                     times(median(s["seconds"])) if case == "blackout" else "–", result])
    if check:
        rows.append([f"the same {check['items']:,} tickers, duplicate check alone", f"this project: {check['what']}",
                     str(len(check["seconds"])), fmt(check_median, " s", 4), fmt(p95(check["seconds"]), " s", 4),
                     times(check_median), "no duplicates"])
    for s in before:
        rows.append([f"first 1/{s['prefix']} of them ({s['items']:,})", f"before §7: {s['what']} (quadratic)",
                     str(len(s["seconds"])), fmt(median(s["seconds"]), " s", 4), fmt(p95(s["seconds"]), " s", 4),
                     "", f"× {s['prefix']}² = {fmt(s['extrapolated_s'], ' s', 0)} for the whole list"])
    growth = ""
    if len(before) >= 2:
        a, b = before[-2], before[-1]
        ma, mb = median(a["seconds"]), median(b["seconds"])
        if ma and mb:
            growth = (f" Doubling the prefix from {a['items']:,} to {b['items']:,} tickers multiplied the old "
                      f"check's time by {mb / ma:.1f} (quadratic: 4).")
    verdict = "**met**" if summ["met"] else "**not met**"
    machine_row = (f"`{meta['command']}` on {meta['started']}, git {meta['git']}; {meta['cpu']}, "
                   f"{meta['nproc']} cores, Python {meta['python']}, pydantic {meta['pydantic']}; "
                   f"load average {meta['loadavg']}")
    lines = [
        GAMEPLAN_START,
        "## Gameplan validation",
        "",
        f"_Generated by `python -m bench.gameplan` (bench/gameplan.py) from `{json_path}`; no Docker. "
        "`python -m bench` keeps this section as it is when it regenerates the rest of the report._",
        "",
        "The question (issue \"Live money\" §7): **is a 1 MiB gameplan validated in time?** The orchestrator "
        "validates the plan, then the bot validates it again before it signals readiness within "
        "`BOT_READY_TIMEOUT`. Before §7, `earnings_blackout` had no maximum length and its duplicate check ran "
        f"`tickers.count` for every entry: a valid 1 MiB plan took minutes ({ISSUE_BASELINE_S:g} s in the issue's "
        "measurement), so the bot missed its deadline and nothing started, not even Strategy C. Now every list "
        "has a maximum (README, gameplan section) and every check is linear.",
        "",
        "Each 1 MiB case is the orchestrator's own call on the file (read, strict JSON, schema, date), in process, "
        "after one unmeasured call. The baseline is the old check (`bench/baselines/gameplan_quadratic.py`, "
        "verbatim) on prefixes of the same ticker list, extrapolated quadratically: run whole, it takes minutes. "
        "Ratio = the old check's extrapolated time for the whole list / this row's median." + growth,
        "",
        table(["goal (§7)", "measured", "verdict"],
              [[f"A 1 MiB plan validates in ≤ {GOAL_S:g} s",
                f"worst p95 of the two 1 MiB plans: {fmt(summ['worst_p95_s'], ' s', 4)}",
                verdict]]),
        "",
        table(["plan", "contender", "n", "median", "p95", "ratio", "result"], rows),
        "",
        f"Machine and command: {machine_row}.",
        GAMEPLAN_END,
    ]
    return "\n".join(lines)


def update_report(text: str, section: str) -> str:
    """`text` with its gameplan section replaced, or inserted before the reading (or at the end)."""
    return replace_section(text, section, GAMEPLAN_START, GAMEPLAN_END)


# --- command line ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gameplan", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 repetitions, baseline on 1/64 and 1/32 once; about 1 s")
    p.add_argument("--repeats", type=int, help="repetitions of each of this project's cells [10; --quick 3]")
    p.add_argument("--json", type=Path, help="results [bench/results/gameplan.json; --quick: none]")
    p.add_argument("--out", type=Path, help="the report whose gameplan section is (re)written "
                                            "[docs/BENCHMARKS.md; --quick: none, the section is printed]")
    args = p.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 10)
    prefixes, baseline_repeats = ([64, 32], 1) if args.quick else ([32, 16, 8], 3)
    json_path = args.json or (None if args.quick else RESULTS)
    out_path = args.out or (None if args.quick else REPORT)
    command = "python -m bench.gameplan " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    meta = machine(command.strip())
    with tempfile.TemporaryDirectory(prefix="bench-gameplan-") as work:
        samples = run(repeats, prefixes, baseline_repeats, Path(work))
    results = {"meta": meta, "samples": samples, "summary": summary(samples)}
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    write_section(out_path, render(results, shown_path(json_path, out_path, REPORT)), update_report)
    summ = results["summary"]
    print(f"bench.gameplan: worst p95 {fmt(summ['worst_p95_s'], ' s', 4)} (goal ≤ {GOAL_S:g} s: "
          f"{'met' if summ['met'] else 'NOT met'}); the old check, extrapolated: "
          f"{fmt(summ['before_extrapolated_s'], ' s', 0)}" + ("" if summ["all_ok"] else "; a case gave the WRONG "
                                                                                     "verdict"), file=sys.stderr)
    return 0 if summ["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
