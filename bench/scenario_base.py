"""What scenarios 1 to 6 share: their options, the rotation of contenders from one repetition to the next, a
run's time limit, one run guarded against a Docker hiccup, and the progress line each run prints."""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.env import BenchError, docker_problem
from testkit.docker import DockerFailed

log = logging.getLogger("bench")


@dataclass
class Options:
    repeats: int = 10
    slow_repeats: int = 5  # baseline cells whose login delay is >= SLOW_DELAY
    common_repeats: int = 3  # common-practice cells (each costs its fixed sleep)
    login_delays: list[float] = field(default_factory=lambda: [3.0, 10.0, 30.0])
    contenders: list[str] = field(default_factory=lambda: ["project", "handoff", "common"])
    common_sleep: float = 30.0
    nohc_delays: list[float] = field(default_factory=lambda: [10.0])
    nohc_contenders: list[str] = field(default_factory=lambda: ["project", "handoff"])
    nohc_repeats: int = 10  # this project; the baselines get nohc_baseline_repeats
    nohc_baseline_repeats: int = 3
    # the production-like variant: the production Compose file's healthcheck (every 5 s)
    prod_delays: list[float] = field(default_factory=lambda: [10.0])
    prod_contenders: list[str] = field(default_factory=lambda: ["project", "handoff"])
    prod_repeats: int = 10  # this project; the baselines get prod_baseline_repeats
    prod_baseline_repeats: int = 5
    deadline: float = 10.0  # scenario 3's GATEWAY_HEALTH_TIMEOUT
    wait_seconds: float = 60.0  # scenario 5's login delay
    cost_repeats: int = 3
    warm_delay: float = 3.0
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    SLOW_DELAY = 30.0

    def reps(self, contender: str, delay: float | None = None) -> int:
        n = self.repeats
        if contender != "project" and delay is not None and delay >= self.SLOW_DELAY:
            n = min(n, self.slow_repeats)
        if contender == "common":
            n = min(n, self.common_repeats)
        return n


def rotate(items: list[str], k: int) -> list[str]:
    k %= max(len(items), 1)
    return items[k:] + items[:k]


def run_timeout(contender: str, delay: float, opts: Options, health_timeout: float = 120) -> float:
    return delay + 2 * health_timeout + opts.common_sleep + 120


def guarded(what: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One run; on a Docker hiccup (the daemon restarted under us) wait and retry once; then
    record the error instead of aborting the whole benchmark."""
    problem = ""
    for attempt in (1, 2):
        try:
            return fn()
        except (BenchError, DockerFailed, OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            log.warning("%s failed (attempt %d): %s", what, attempt, problem)
            if attempt == 1:
                deadline = time.monotonic() + 60
                while docker_problem() and time.monotonic() < deadline:
                    time.sleep(2)
    return {"error": f"{what}: {problem}"}


def progress(scenario: str, sample: dict[str, Any]) -> None:
    bits = [f"s{scenario}", sample.get("contender", "?"), f"d={sample.get('login_delay', '-')}",
            *([sample["variant"]] if sample.get("variant") else [])]
    for key in ("detection_latency", "overhead", "wall"):
        if isinstance(sample.get(key), float):
            bits.append(f"{key}={sample[key]:.3f}")
    bits.append(f"exit={sample.get('exit_code')}")
    if sample.get("error"):
        bits.append(f"ERROR {sample['error']}")
    print("  " + " ".join(str(b) for b in bits), file=sys.stderr, flush=True)
