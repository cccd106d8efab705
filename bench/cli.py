"""Command line of the benchmark.

    python -m bench [--quick] [--scenarios 1,2,3,4,5,6] [--plot] [--out docs/BENCHMARKS.md] [--json FILE]
    python -m bench --rerun NAME --scenarios 1 [--login-delays ...]   (a partial rerun, see below)
    python -m bench --rerun supervisor --scenarios supervisor         (scenario 8, about 11 min)
    bash bench/run.sh [same arguments]

Scenarios (issue 6): 1 detection latency, 2 end-to-end overhead (cold runs are shared with 1;
plus warm runs), 3 timeout accuracy, 4 repeat run, 5 cost while waiting, 6 CLI start-up; and
("The trading gate" §3) 7 = "reconnect": from the Gateway's API serving again after an outage to
the bot connected and synced, beside ib_async's Watchdog defaults (bench/reconnect.py; no Docker
needed: the simulator runs in this process). --quick runs 7 only when named, as one 2 s outage of
this project (about 15 s: the bot's first attempt inside the outage waits out its 10 s connect
timeout; the Watchdog's first connection alone would take its appStartupTime, 30 s); and 8 =
"supervisor" (bench/supervisor.py): under `--supervise`, a killed Gateway container to the
operator's alert and the bot trading-ready again, an API outage inside a reset window to the bot
connected, and an idle supervisor's CPU and RSS over ten minutes; --quick runs 8 only when named,
as 2 kills, 1 outage each way and 20 s idle.
Results go to a JSON file (full runs: bench/results/latest.json, committed with the report;
--quick: bench/results/quick.json, git-ignored) and a Markdown report (full runs:
docs/BENCHMARKS.md; --quick: bench/results/quick.md, git-ignored).

Scenario 1 has three variants of the container's Docker healthcheck (bench/env.py VARIANTS):
"sim" (the simulator's own, every 1 s: --login-delays), "production-like" (the production
Compose file's api-healthcheck.sh, every 5 s: --prod-delays) and "no-healthcheck"
(--nohc-delays).

A partial rerun (--rerun NAME) keeps the full run's results: its own go to
bench/results/NAME.json, and docs/BENCHMARKS.md is regenerated from bench/results/latest.json
with one section per rerun newer than that full run (whose figures then also stand in the
Goals table for the cells they measured).

Needs Docker Engine, Compose v2 and the simulator image (bash scripts/provision-docker.sh).
Everything is bounded: each run has a timeout, each Compose project (`zt-bench-<hex>`, its own
container name and free 127.0.0.1 port) is taken down in a `finally`, every bot started is
stopped by its PID. Exit 0 when every run completed, 1 when some failed (listed in the
report), 2 when Docker is not usable.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import reconnect as rc
from bench import scenarios as sc
from bench import supervisor as sv
from bench.env import REPO_ROOT, docker_problem, workspace
from bench.figures import summary
from bench.report import render
from bench.reruns import find_reruns
from testkit.docker import docker

RESULTS = REPO_ROOT / "bench" / "results"
DEFAULT_PLOT = REPO_ROOT / "docs" / "benchmarks-detection-latency.png"
ALL = ["1", "2", "3", "4", "5", "6", "7", "8"]
ALIASES = {"reconnect": "7", "supervisor": "8"}
QUICK_ONLY_NAMED = {"7", "8"}  # left out of --quick unless named
NO_DOCKER = {"7"}  # scenarios that need no Docker


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


# The repetition counts, each a whole number whose default the scenario decides ([default; --quick value]).
REPEATS = {
    "--repeats": "repetitions per cell [10; --quick 3]",
    "--slow-repeats": "repetitions of baseline cells with a login delay >= 30 s [5]",
    "--common-repeats": "repetitions of common-practice cells (each costs its sleep) [3]",
    "--nohc-repeats": "repetitions of this project in the no-healthcheck variant of scenario 1 [10]",
    "--nohc-baseline-repeats": "… of the baselines in that variant [3]",
    "--prod-repeats": "repetitions of this project in the production-like variant of scenario 1 [10]",
    "--prod-baseline-repeats": "… of the baselines in that variant [5]",
    "--cost-repeats": "repetitions of scenario 5 [3; --quick 1]",
}
OUTAGE_REPEATS = {
    "--outage-repeats": "scenario 7: outages per duration [10; --quick 1]",
    "--slow-outage-repeats": "scenario 7: … for outages >= 60 s [5]",
    "--second-outage-repeats": "scenario 7: sequences of two 10 s outages 65 s apart (the backoff's reset) "
                               "[3; --quick 0]",
}
SUPERVISOR_COUNTS = {
    "--kills": "scenario 8: Gateway containers killed under the supervisor, at most 19 (the login budget) "
               "[19; --quick 2]",
    "--sup-outages": "scenario 8: supervised runs through a timed API outage in a reset window [10; --quick 1]",
    "--sup-baseline-outages": "scenario 8: the same outage under the plain start-up, no supervisor [5; --quick 1]",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="3 repetitions per cell (scenario 5 once, scenario 3 deadline 5 s): keeps it working in CI")
    p.add_argument("--scenarios",
                   help="comma-separated subset of 1..8 (7 = reconnect, 8 = supervisor) [all; --quick: 1..6]")
    p.add_argument("--plot", action="store_true", help="draw the detection-latency PNG (needs matplotlib)")
    p.add_argument("--plot-path", type=Path, default=DEFAULT_PLOT, help=f"[{DEFAULT_PLOT.relative_to(REPO_ROOT)}]")
    p.add_argument("--out", type=Path, help="Markdown report [docs/BENCHMARKS.md; --quick: bench/results/quick.md]")
    p.add_argument("--json", type=Path, help="results [bench/results/latest.json; --quick: bench/results/quick.json]")
    for flag, what in REPEATS.items():
        p.add_argument(flag, type=int, help=what)
    p.add_argument("--login-delays", type=_floats, default=[3.0, 10.0, 30.0], help="scenario 1 [3,10,30]")
    p.add_argument("--nohc-delays", type=_floats, default=[10.0],
                   help="scenario 1 with a container without any healthcheck; '' = none [10]")
    p.add_argument("--nohc-contenders", type=_names, default=["project", "handoff"], help="[project,handoff]")
    p.add_argument("--prod-delays", type=_floats, default=[10.0],
                   help="scenario 1 production-like: the production Compose file's healthcheck (every 5 s); "
                        "'' = none [10]")
    p.add_argument("--prod-contenders", type=_names, default=["project", "handoff"], help="[project,handoff]")
    p.add_argument("--contenders", type=_names, default=["project", "handoff", "common"],
                   help="any of project,handoff,common [all]")
    p.add_argument("--common-sleep", type=float, default=30.0, help="common practice's fixed sleep [30]")
    p.add_argument("--deadline", type=float, help="scenario 3's configured timeout [10; --quick 5]")
    p.add_argument("--wait-seconds", type=float, help="scenario 5's login delay [60; --quick 20]")
    p.add_argument("--outages", type=_floats, help="scenario 7: outage durations, seconds [10,30,60; --quick 2]")
    for flag, what in OUTAGE_REPEATS.items():
        p.add_argument(flag, type=int, help=what)
    p.add_argument("--outage-contenders", type=_names,
                   help="scenario 7: any of project,watchdog [project,watchdog; --quick project]")
    p.add_argument("--reconnect-candidate", action="append", default=[], metavar="LABEL=DIR",
                   help="scenario 7: also run the bot from DIR, a scratch copy of the repository with a local patch "
                        "to src/ (bench/candidates/), labelled LABEL; repeatable")
    for flag, what in SUPERVISOR_COUNTS.items():
        p.add_argument(flag, type=int, help=what)
    p.add_argument("--idle-seconds", type=float, help="scenario 8: the idle supervisor's measurement [600; --quick 20]")
    p.add_argument("--no-watch-wait", type=float,
                   help="scenario 8: after killing a plain start-up's Gateway, how long to wait for an alert "
                        "[20; --quick 3]")
    p.add_argument("--keep", action="store_true", help="keep the run directories (state/, logs/ of every run)")
    p.add_argument("--from-json", type=Path, metavar="FILE",
                   help="run nothing: regenerate the report (and, with --plot, the plot) from a results file")
    p.add_argument("--rerun", metavar="NAME",
                   help="a partial rerun: results to bench/results/NAME.json, then docs/BENCHMARKS.md regenerated "
                        "from bench/results/latest.json with this rerun's section")
    args = p.parse_args(argv)
    if args.scenarios is None:
        args.scenarios = [s for s in ALL if not (args.quick and s in QUICK_ONLY_NAMED)]
    else:
        args.scenarios = [ALIASES.get(s, s) for s in _names(args.scenarios)]
    bad = [s for s in args.scenarios if s not in ALL] + [c for c in args.contenders
                                                           if c not in ("project", "handoff", "common")]
    bad += [c for c in args.outage_contenders or [] if c not in ("project", "watchdog")]
    try:
        args.candidates = dict(rc.parse_candidate(c) for c in args.reconnect_candidate)
    except ValueError as exc:
        p.error(str(exc))
    if bad:
        p.error(f"unknown scenario or contender: {', '.join(bad)}")
    if args.kills is not None and not 0 <= args.kills <= 19:
        p.error("--kills: 0..19 (each kill costs one login of GATEWAY_LOGIN_BUDGET, at most 20, the start-up one)")
    if args.rerun is not None:
        if args.quick or args.json or args.from_json or not args.rerun.strip() or "/" in args.rerun \
                or args.rerun.removesuffix(".json") in ("latest", "quick"):
            p.error("--rerun NAME: a plain name other than latest/quick, without --quick, --json or --from-json")
        args.rerun = args.rerun.removesuffix(".json")
    return args


def options(args: argparse.Namespace, workdir: Path) -> sc.Options:
    quick = args.quick
    repeats = args.repeats or (3 if quick else 10)
    return sc.Options(
        repeats=repeats,
        slow_repeats=args.slow_repeats or (repeats if quick else 5),
        common_repeats=args.common_repeats or (repeats if quick else 3),
        nohc_repeats=args.nohc_repeats or repeats,
        nohc_baseline_repeats=args.nohc_baseline_repeats or (repeats if quick else 3),
        prod_repeats=args.prod_repeats or repeats,
        prod_baseline_repeats=args.prod_baseline_repeats or (repeats if quick else 5),
        prod_delays=args.prod_delays,
        prod_contenders=[c for c in args.prod_contenders if c in args.contenders],
        cost_repeats=args.cost_repeats or (1 if quick else 3),
        login_delays=args.login_delays, nohc_delays=args.nohc_delays,
        nohc_contenders=[c for c in args.nohc_contenders if c in args.contenders],
        contenders=args.contenders, common_sleep=args.common_sleep,
        deadline=args.deadline or (5.0 if quick else 10.0),
        wait_seconds=args.wait_seconds or (20.0 if quick else 60.0),
        workdir=workdir,
    )


def reconnect_options(args: argparse.Namespace, workdir: Path) -> rc.ReconnectOptions:
    quick = args.quick
    repeats = args.outage_repeats or (1 if quick else 10)
    return rc.ReconnectOptions(
        outages=args.outages if args.outages is not None else ([2.0] if quick else [10.0, 30.0, 60.0]),
        repeats=repeats, slow_repeats=args.slow_outage_repeats or (repeats if quick else 5),
        second_repeats=args.second_outage_repeats if args.second_outage_repeats is not None else (0 if quick else 3),
        contenders=args.outage_contenders or (["project"] if quick else ["project", "watchdog"]),
        candidates=args.candidates, workdir=workdir,
    )


def supervisor_options(args: argparse.Namespace, workdir: Path) -> sv.SupervisorOptions:
    quick = args.quick

    def pick(value: Any, full: Any, fast: Any) -> Any:
        return value if value is not None else (fast if quick else full)

    return sv.SupervisorOptions(
        kills=pick(args.kills, 19, 2), outages=pick(args.sup_outages, 10, 1),
        baseline_outages=pick(args.sup_baseline_outages, 5, 1), idle_seconds=pick(args.idle_seconds, 600.0, 20.0),
        sample_every=3.0 if not quick else 1.0, no_watch_wait=pick(args.no_watch_wait, 20.0, 3.0), workdir=workdir)


def reconnect_meta(opts: rc.ReconnectOptions) -> dict[str, Any]:
    return {"outages": opts.outages, "repeats": opts.repeats, "slow_repeats": opts.slow_repeats,
            "slow_outage": opts.SLOW_OUTAGE, "second_repeats": opts.second_repeats,
            "second_outage": opts.second_outage, "up_between": opts.up_between, "contenders": opts.contenders,
            "heartbeat": rc.BOT_HEARTBEAT, "kind": "closed", "recovery_limit": rc.RECOVERY_LIMIT,
            "candidates": {label: rc.describe_candidate(root) for label, root in opts.candidates.items()}}


def machine() -> dict[str, Any]:
    def first(path: str, key: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"

    def cmd(*c: str) -> str:
        try:
            out = subprocess.run(c, capture_output=True, text=True, timeout=20, check=False).stdout.strip()
            return out or "unknown"
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"

    mem_kb = first("/proc/meminfo", "MemTotal").split()[0]
    return {
        "cpu": first("/proc/cpuinfo", "model name"), "nproc": os.cpu_count(),
        "memory": f"{int(mem_kb) / 2**20:.1f} GiB" if mem_kb.isdigit() else "unknown",
        "kernel": platform.release(), "python": platform.python_version(),
        "docker": docker("version", "--format", "{{.Server.Version}}", check=False, timeout=20).stdout.strip(),
        "compose": docker("compose", "version", "--short", check=False, timeout=20).stdout.strip(),
        "src_digest": src_digest(),
        "git": cmd("git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD")
               + (" (+ uncommitted changes)" if cmd("git", "-C", str(REPO_ROOT), "status", "--porcelain", "src")
                  not in ("", "unknown") else ""),
    }


def src_digest() -> str:
    """A digest of the product's code (src/**/*.py) as measured: tells whether it changed mid-run."""
    h = hashlib.sha256()
    for path in sorted((REPO_ROOT / "src").rglob("*.py")):
        h.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    quick = args.quick
    default_json = f"{args.rerun}.json" if args.rerun else "quick.json" if quick else "latest.json"
    json_path = (args.json or RESULTS / default_json).resolve()
    out_path = (args.out or (RESULTS / "quick.md" if quick else REPO_ROOT / "docs" / "BENCHMARKS.md")).resolve()
    if args.from_json:
        return regenerate(args, args.from_json.resolve(), out_path)
    chosen = set(args.scenarios)
    problem = None if chosen <= NO_DOCKER else docker_problem()
    if problem:
        print(f"bench: {problem}: provision it with: bash scripts/provision-docker.sh", file=sys.stderr)
        return 2
    started = time.time()
    with workspace(keep=args.keep) as work:
        opts = options(args, work)
        ropts = reconnect_options(args, work)
        sopts = supervisor_options(args, work)
        est = (sc.estimate_seconds(opts, chosen) + (rc.estimate_seconds(ropts) if "7" in chosen else 0.0)
               + (sv.estimate_seconds(sopts) if "8" in chosen else 0.0))
        print(f"bench: scenarios {','.join(sorted(chosen))}, about {est / 60:.0f} min; work dir {work}",
              file=sys.stderr, flush=True)
        meta: dict[str, Any] = {
            "command": "python -m bench " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "quick": quick, "estimate_s": est,
            "options": {k: v for k, v in vars(opts).items() if k != "workdir"},
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "json_path": os.path.relpath(json_path, out_path.parent),
            **machine(),
        }
        if "7" in chosen:
            meta["reconnect"] = reconnect_meta(ropts)
        if "8" in chosen:
            meta["supervisor"] = sopts.as_meta()
        samples: dict[str, list[dict[str, Any]]] = {}
        runners = [("6", sc.scenario_6), ("4", sc.scenario_4), ("2w", sc.scenario_2_warm), ("3", sc.scenario_3),
                   ("1", None), ("5", sc.scenario_5), ("7", None),
                   ("8", None)]
        for key, fn in runners:
            scen = key.rstrip("w")
            if scen not in chosen and not (key == "1" and "2" in chosen):
                continue
            print(f"bench: scenario {key}", file=sys.stderr, flush=True)
            if key == "1":
                if "1" in chosen:
                    samples["1"] = sc.scenario_1(opts, with_variants=True)
                else:  # scenario 2 alone: its cold runs, at the first login delay only
                    samples["1"] = sc.scenario_1(sc.Options(**{**vars(opts), "login_delays": opts.login_delays[:1]}),
                                                 with_variants=False)
            elif key == "7":
                samples["7"] = rc.scenario_7(ropts, progress=rc.progress)
            elif key == "8":
                samples["8"] = sv.scenario_8(sopts, progress=sv.progress)
            elif key == "2w":
                samples["2"] = sc.scenario_2_warm(opts)
            else:
                samples[scen] = fn(opts)
            _save(json_path, meta, samples, started)  # partial results survive an interruption
        meta["loadavg"] += " / " + " ".join(f"{x:.2f}" for x in os.getloadavg())
        meta["src_digest_end"] = src_digest()
    results = _save(json_path, meta, samples, started)
    failed = sum(1 for group in samples.values() for s in group if s.get("error"))
    if args.rerun:
        print(f"bench: rerun results {json_path}" + (f"; {failed} run(s) FAILED" if failed else ""), file=sys.stderr)
        regenerate(args, RESULTS / "latest.json", out_path)
        return 1 if failed else 0
    plot_path = None
    if args.plot and samples.get("1"):
        from bench.plot import plot_detection

        plot_path = plot_detection(samples["1"], args.plot_path.resolve())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render(results, plot_path, out_path, reruns(json_path, results, quick)), encoding="utf-8")
    print(f"bench: results {json_path}; report {out_path}" + (f"; plot {plot_path}" if plot_path else "")
          + (f"; {failed} run(s) FAILED" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def regenerate(args: argparse.Namespace, source: Path, out_path: Path) -> int:
    source = source.resolve()
    results = json.loads(source.read_text(encoding="utf-8"))
    results["summary"] = summary(results)
    results["meta"]["json_path"] = os.path.relpath(source, out_path.parent)
    plot_path = None
    if args.plot and results["samples"].get("1"):
        from bench.plot import plot_detection

        plot_path = plot_detection(results["samples"]["1"], args.plot_path.resolve())
    elif source == (RESULTS / "latest.json").resolve() and args.plot_path.resolve().is_file():
        plot_path = args.plot_path.resolve()  # drawn from this same file by the full run: still its picture
    out_path.parent.mkdir(parents=True, exist_ok=True)
    extra = reruns(source, results, bool(results["meta"].get("quick")))
    out_path.write_text(render(results, plot_path, out_path, extra), encoding="utf-8")
    print(f"bench: report {out_path} from {source}" + (f" and {len(extra)} rerun(s)" if extra else "")
          + (f"; plot {plot_path}" if plot_path else ""), file=sys.stderr)
    return 0


def reruns(main: Path, results: dict[str, Any], quick: bool) -> list[tuple[str, dict[str, Any]]]:
    """Partial reruns (bench/results/*.json) started after the full run `main`, oldest first, as
    (path relative to the repository, results). None for a quick run or a run outside RESULTS."""
    if quick or main.resolve().parent != RESULTS.resolve():
        return []
    return find_reruns(RESULTS, results, skip={main.name, "latest.json", "quick.json"}, root=REPO_ROOT)


def _save(path: Path, meta: dict[str, Any], samples: dict[str, list[dict[str, Any]]], started: float) -> dict[str, Any]:
    meta["duration_s"] = time.time() - started
    results = {"meta": meta, "samples": samples}
    results["summary"] = summary(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return results
