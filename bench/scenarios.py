"""The six scenarios of issue 6. Each returns a list of samples (flat dicts, see contenders.py).

Contenders are interleaved within each repetition (and their order rotated from one
repetition to the next), so a burst of load on the machine hits every contender alike and
the ratios survive noisy hardware.

What they share (options, rotation, a guarded run, the progress line) is bench/scenario_base.py.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from bench import contenders as C
from bench.env import REPO_ROOT, BenchError, Gateway, RunDir, base_env, run_measured, stop_pid
from bench.scenario_base import Options, guarded, progress, rotate, run_timeout

__all__ = ["COST_CONTENDERS", "HEALTH_WAIT", "Options", "cold_run", "cost_run", "derive_cold", "estimate_seconds",
           "guarded", "rotate", "scenario_1", "scenario_1_cells", "scenario_2_warm", "scenario_3", "scenario_4",
           "scenario_5", "scenario_6"]

SPEC_INTERVAL = 5.0  # the handoff's gateway_health_retry_interval


# --- scenarios 1 and 2 (cold): one contender, one fresh Gateway ---------------------------------------

HEALTH_WAIT = {"sim": 1 + 3 + 3, "production-like": 5 + 5 + 3}  # interval + probe timeout + margin


def cold_run(contender: str, delay: float, opts: Options, variant: str = "sim") -> dict[str, Any]:
    gw = Gateway(delay, variant=variant)
    rd = RunDir.make(opts.workdir, f"cold-{contender}")
    sample: dict[str, Any] = {}
    try:
        kwargs: dict[str, Any] = {"timeout": run_timeout(contender, delay, opts)}
        if contender == "common":
            kwargs["sleep"] = opts.common_sleep
        sample = C.run(contender, gw, rd, **kwargs)
        sample["logged_in_at"] = gw.logged_in_at()
        if sample["logged_in_at"] is None:  # a design that finished before the login: wait for the login
            sample["login_checked_at"] = time.time()
            deadline = time.monotonic() + delay + 15
            while sample["logged_in_at"] is None and time.monotonic() < deadline:
                time.sleep(0.2)
                sample["logged_in_at"] = gw.logged_in_at()
        sample["host_connections_before_login"] = gw.host_connections_before_login()
        if variant in HEALTH_WAIT and sample["logged_in_at"] is not None:
            # when Docker's own healthcheck passed: what waiting for Docker's `healthy` would cost, and
            # proof that the container's healthcheck works at all (a broken one stays `starting` for
            # its whole start_period and would look exactly like no healthcheck)
            sample["docker_healthy_at"] = gw.healthy_at(HEALTH_WAIT[variant])
    finally:
        C.stop_bots(rd, sample.get("bot_pid"))
        gw.down()
    derive_cold(sample)
    return sample


def derive_cold(s: dict[str, Any]) -> None:
    li = s.get("logged_in_at")
    s["mode"] = "cold"
    s["detection_latency"] = s["detected_at"] - li if li and s.get("detected_at") else None
    s["login_to_bot_ready"] = s["bot_ready_at"] - li if li and s.get("bot_ready_at") else None
    if li and s.get("docker_healthy_at"):
        s["login_to_docker_healthy"] = s["docker_healthy_at"] - li
    s["overhead"] = s["wall"] - s["login_delay"]
    s["start_to_bot_ready"] = s["bot_ready_at"] - s["t0"] if s.get("bot_ready_at") else None


def scenario_1_cells(opts: Options, with_variants: bool = True) -> list[tuple[str, float, str, int]]:
    """(contender, login delay, variant, repetitions) of every cell of scenario 1."""
    cells: list[tuple[str, float, str, int]] = []
    for d in opts.login_delays:
        cells += [(c, d, "sim", opts.reps(c, d)) for c in opts.contenders]
    if with_variants:
        for variant, delays, names, own, others in (
                ("production-like", opts.prod_delays, opts.prod_contenders, opts.prod_repeats,
                 opts.prod_baseline_repeats),
                ("no-healthcheck", opts.nohc_delays, opts.nohc_contenders, opts.nohc_repeats,
                 opts.nohc_baseline_repeats)):
            for d in delays:
                cells += [(c, d, variant, min(own if c == "project" else others, opts.reps(c, d)))
                          for c in names if c in opts.contenders]
    return cells


def scenario_1(opts: Options, with_variants: bool = True) -> list[dict[str, Any]]:
    """Detection latency (and, from the same runs, scenario 2's cold end-to-end overhead), in each
    variant of the container's healthcheck (env.VARIANTS)."""
    cells = scenario_1_cells(opts, with_variants)
    samples = []
    for rep in range(max((n for *_, n in cells), default=0)):
        groups: dict[tuple[float, str], list[str]] = {}
        for c, d, variant, n in cells:
            if rep < n:
                groups.setdefault((d, variant), []).append(c)
        for (d, variant), names in groups.items():
            for c in rotate(names, rep):
                s = guarded(f"scenario 1 {c} d={d:g} {variant}",
                            lambda c=c, d=d, v=variant: cold_run(c, d, opts, v))
                s.update(scenario="1", rep=rep, variant=variant)
                s.setdefault("contender", c)
                s.setdefault("login_delay", d)
                progress("1", s)
                samples.append(s)
    return samples


# --- scenario 2 (warm): the Gateway is already up and logged in -------------------------------------------

def scenario_2_warm(opts: Options) -> list[dict[str, Any]]:
    gw = Gateway(opts.warm_delay)
    samples = []
    try:
        gw.up(wait_logged_in=True)
        logged_in_at = gw.logged_in_at()
        for rep in range(max(opts.reps(c) for c in opts.contenders)):
            for c in rotate([c for c in opts.contenders if rep < opts.reps(c)], rep):
                def one(c: str = c) -> dict[str, Any]:
                    rd = RunDir.make(opts.workdir, f"warm-{c}")
                    s: dict[str, Any] = {}
                    try:
                        kwargs: dict[str, Any] = {"timeout": run_timeout(c, 0, opts)}
                        if c == "common":
                            kwargs["sleep"] = opts.common_sleep
                        s = C.run(c, gw, rd, **kwargs)
                    finally:
                        C.stop_bots(rd, s.get("bot_pid"))
                    return s
                s = guarded(f"scenario 2 warm {c}", one)
                s.update(scenario="2", mode="warm", rep=rep, logged_in_at=logged_in_at)
                s.setdefault("contender", c)
                if "wall" in s:
                    s["overhead"] = s["wall"]  # nothing left of the login delay
                    s["start_to_bot_ready"] = s["bot_ready_at"] - s["t0"] if s.get("bot_ready_at") else None
                progress("2", s)
                samples.append(s)
    finally:
        gw.down()
    return samples


# --- scenario 3: a Gateway that never logs in --------------------------------------------------------------

def scenario_3(opts: Options) -> list[dict[str, Any]]:
    T = opts.deadline
    samples = []
    for rep in range(max(opts.reps(c) for c in opts.contenders)):
        for c in rotate([c for c in opts.contenders if rep < opts.reps(c)], rep):
            def one(c: str = c) -> dict[str, Any]:
                gw = Gateway(3600, sim={"before_login": "close"})
                rd = RunDir.make(opts.workdir, f"timeout-{c}")
                s: dict[str, Any] = {}
                try:
                    timeout = 4 * T + 120
                    if c == "project":
                        s = C.run_project(gw, rd, timeout=timeout, settings={"GATEWAY_HEALTH_TIMEOUT": f"{T:g}"})
                    elif c == "handoff":
                        s = C.run_handoff(gw, rd, timeout=timeout, health_timeout=T)
                    else:
                        s = C.run_common(gw, rd, timeout=timeout, sleep=opts.common_sleep, wait_timeout=T)
                finally:
                    C.stop_bots(rd, s.get("bot_pid"))
                    gw.down()
                return s
            s = guarded(f"scenario 3 {c}", one)
            s.update(scenario="3", rep=rep, deadline=T)
            s.setdefault("contender", c)
            if "waits" in s:
                s["wait_errors"] = [w - T for w in s["waits"]]
                # what the design promises: project and handoff wait T, restart once, wait T; common
                # practice has one deadline (Compose's --wait-timeout) and no restart
                s["configured_total"] = T if c == "common" else 2 * T
                s["total_error"] = s["wall"] - s["configured_total"]
            progress("3", s)
            samples.append(s)
    return samples


# --- scenario 4: everything already up; a second run must refuse ------------------------------------------

def scenario_4(opts: Options) -> list[dict[str, Any]]:
    worlds: dict[str, tuple[Gateway, RunDir, int | None]] = {}
    samples = []
    try:
        for c in opts.contenders:  # the first run of each design: brings its Gateway and bot up
            gw = Gateway(opts.warm_delay)
            rd = RunDir.make(opts.workdir, f"repeat-{c}")
            worlds[c] = (gw, rd, None)
            kwargs: dict[str, Any] = {"timeout": run_timeout(c, opts.warm_delay, opts)}
            if c == "common":
                kwargs["sleep"] = opts.common_sleep
            first = C.run(c, gw, rd, **kwargs)
            worlds[c] = (gw, rd, first.get("bot_pid"))
            if not first.get("bot_ready_at"):
                raise BenchError(f"scenario 4: the first {c} run did not bring a bot up: {first.get('reason')}")
        for rep in range(max(opts.reps(c) for c in opts.contenders)):
            for c in rotate([c for c in opts.contenders if rep < opts.reps(c)], rep):
                gw, rd, first_pid = worlds[c]

                def one(c: str = c, gw: Gateway = gw, rd: RunDir = rd) -> dict[str, Any]:
                    rd.events.unlink(missing_ok=True)
                    if c == "project":
                        s = C.run_project(gw, rd, timeout=120)
                        s["refused_at"] = s["t_end"] if s["exit_code"] == 1 else None
                    elif c == "handoff":
                        s = C.run_handoff(gw, rd, timeout=120)
                        s["refused_at"] = s["t_end"] if s["exit_code"] == 1 else None
                    else:
                        s = C.run_common(gw, rd, timeout=run_timeout(c, 0, opts), sleep=opts.common_sleep,
                                         wait_bot_exit=True)
                        log_text = (rd.logs / "bot_common.log").read_text(encoding="utf-8", errors="replace")
                        s["duplicate_refused_itself"] = "refusing to start a second instance" in log_text
                        s["refused_at"] = s.get("bot_exited_at") if s["duplicate_refused_itself"] else None
                    return s
                s = guarded(f"scenario 4 {c}", one)
                s.update(scenario="4", rep=rep)
                s.setdefault("contender", c)
                if s.get("refused_at"):
                    s["time_to_refuse"] = s["refused_at"] - s["t0"]
                if c == "common" and s.get("bot_pid") and s["bot_pid"] != first_pid:
                    stop_pid(s["bot_pid"])  # a duplicate that did not refuse: never leave it running
                s["first_bot_still_running"] = bool(first_pid) and C.pid_alive(first_pid)
                progress("4", s)
                samples.append(s)
    finally:
        for gw, rd, pid in worlds.values():
            C.stop_bots(rd, pid)
            gw.down()
    return samples


# --- scenario 5: what waiting costs --------------------------------------------------------------------------

COST_CONTENDERS: dict[str, tuple[str, dict[str, str], str]] = {
    # label: (contender, orchestrator settings, container healthcheck variant)
    "project": ("project", {}, "sim"),
    "project-5s": ("project", {"GATEWAY_HEALTH_RETRY_INTERVAL": f"{SPEC_INTERVAL:g}"}, "sim"),
    "project-nohc": ("project", {}, "no-healthcheck"),
    "handoff": ("handoff", {}, "sim"),
    "common": ("common", {}, "sim"),
}


def cost_run(label: str, opts: Options) -> dict[str, Any]:
    contender, settings, variant = COST_CONTENDERS[label]
    gw = Gateway(opts.wait_seconds, variant=variant)
    rd = RunDir.make(opts.workdir, f"cost-{label}")
    s: dict[str, Any] = {}
    try:
        timeout = run_timeout(contender, opts.wait_seconds, opts)
        if contender == "project":
            s = C.run_project(gw, rd, timeout=timeout, settings=settings, sample=True, label=label)
        elif contender == "handoff":
            s = C.run_handoff(gw, rd, timeout=timeout, sample=True)
        else:
            s = C.run_common(gw, rd, timeout=timeout, sleep=opts.common_sleep, sample=True)
        s["logged_in_at"] = gw.logged_in_at()
        s["host_connections_before_login"] = gw.host_connections_before_login()
    finally:
        C.stop_bots(rd, s.get("bot_pid"))
        gw.down()
    s["label"] = label
    if s.get("wait_window_s"):
        s["connections_per_min"] = s["host_connections_before_login"] * 60 / s["wait_window_s"]
    return s


def scenario_5(opts: Options) -> list[dict[str, Any]]:
    """Contenders run concurrently here (each with its own Gateway): CPU-seconds and connection
    counts do not depend on who else runs, and a 60 s wait per contender in sequence would cost
    minutes per repetition."""
    labels = [lb for lb, (c, _, _) in COST_CONTENDERS.items() if c in opts.contenders]
    samples: list[dict[str, Any]] = []
    for rep in range(opts.cost_repeats):
        results: dict[str, dict[str, Any]] = {}
        def one(lb: str, into: dict[str, dict[str, Any]]) -> None:
            into[lb] = guarded(f"scenario 5 {lb}", lambda: cost_run(lb, opts))

        threads = [threading.Thread(target=one, args=(lb, results), daemon=True) for lb in labels]
        for t in threads:
            t.start()
            time.sleep(0.3)
        for t in threads:
            t.join(run_timeout("common", opts.wait_seconds, opts) + 300)
        for lb in labels:
            s = results.get(lb, {"error": f"scenario 5 {lb}: did not finish"})
            s.update(scenario="5", rep=rep, label=lb)
            s.setdefault("contender", COST_CONTENDERS[lb][0])
            progress("5", s)
            samples.append(s)
    return samples


# --- scenario 6: CLI start-up ------------------------------------------------------------------------------

def scenario_6(opts: Options) -> list[dict[str, Any]]:
    commands = {
        "project": [sys.executable, "-m", "src.orchestration.startup", "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    samples = []
    for rep in range(opts.repeats):
        for label in rotate(list(commands), rep):
            m = run_measured(commands[label], env=base_env(), cwd=REPO_ROOT, timeout=60,
                             out=opts.workdir / "cli.out")
            s = {"scenario": "6", "rep": rep, "contender": label, "wall": m.wall, "exit_code": m.code,
                 "cpu_s": m.user + m.system, "maxrss_mb": m.maxrss_mb}
            progress("6", s)
            samples.append(s)
    return samples


def estimate_seconds(opts: Options, scenarios: set[str]) -> float:
    """A rough duration, printed before a run (per-run costs measured on a 2-core machine)."""
    cost = {"project": 1.5, "handoff": 9.0, "common": 2.0 + opts.common_sleep}
    total = 0.0
    if scenarios & {"1", "2"}:
        o = opts if "1" in scenarios else Options(**{**vars(opts), "login_delays": opts.login_delays[:1]})
        extra = {"sim": 2.0, "production-like": 6.0, "no-healthcheck": 0.0}  # waiting for Docker's healthy
        total += sum((d + cost[c] + extra[v] + (5.0 if v == "production-like" and c != "project" else 0.0)) * n
                     for c, d, v, n in scenario_1_cells(o, with_variants="1" in scenarios))
    if "2" in scenarios:
        total += 10 + sum((cost[c] - 0.5) * opts.reps(c) for c in opts.contenders)
    if "3" in scenarios:
        per = {"project": 2 * opts.deadline + 4, "handoff": 2 * (opts.deadline - 5) + 5, "common": opts.deadline + 2}
        total += sum(per[c] * opts.reps(c) for c in opts.contenders)
    if "4" in scenarios:
        total += sum(5 + cost[c] for c in opts.contenders)
        total += sum((0.5 if c != "common" else cost[c]) * opts.reps(c) for c in opts.contenders)
    if "5" in scenarios:
        total += opts.cost_repeats * (opts.wait_seconds + opts.common_sleep + 15)
    if "6" in scenarios:
        total += opts.repeats * 0.6
    return total
