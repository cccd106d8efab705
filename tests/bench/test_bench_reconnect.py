"""Scenario 7 (reconnect after an outage) keeps working: end to end in its quick form, no Docker.

No timing assertions (shared, noisy machines): only that the outage is run and followed through,
the samples are well formed, and the report renders its section, its goal and its reruns.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.baselines.watchdog import NoController
from bench.cli import parse_args
from bench.report import find_reruns, render

REPO_ROOT = Path(__file__).resolve().parents[2]
NUMBER = (int, float)


@pytest.mark.timeout(120)
def test_quick_reconnect_runs_one_outage_of_the_real_bot_against_the_in_process_simulator(tmp_path):
    results, report = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    cmd = [sys.executable, "-m", "bench", "--quick", "--scenarios", "reconnect", "--json", str(results),
           "--out", str(report)]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=100, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    data = json.loads(results.read_text())
    assert data["meta"]["reconnect"]["outages"] == [2.0] and data["meta"]["reconnect"]["kind"] == "closed"
    (s,) = data["samples"]["7"]
    assert not s.get("error"), s
    assert (s["contender"], s["outage_s"], s["outage_no"], s["recovered"]) == ("project", 2.0, 1, True)
    for key in ("began_at", "closed_at", "opened_at", "noticed_at", "recovered_at", "latency", "notice_latency"):
        assert isinstance(s[key], NUMBER), (key, s)
    assert s["began_at"] <= s["closed_at"] < s["opened_at"] < s["recovered_at"]
    # the bot probes the API until it answers, then connects: no connect attempt is wasted on a closed API
    # the outage lasted what it was asked to: at least 2 s, and not a poll's overrun more (busy cores
    # lengthen the loop that ends it, never by seconds)
    assert 2.0 - 0.01 <= s["measured_outage_s"] < 2.0 + 1.0 and s["failed_attempts"] == 0
    assert data["summary"]["reconnect"]["2"]["project"]["recovered"] == 1
    text = report.read_text()
    assert "## 7. Reconnect after an outage" in text and "Reconnect: API back after an outage" in text


def test_scenario_7_is_in_the_full_run_and_only_named_in_quick():
    assert "7" in parse_args([]).scenarios
    assert "7" not in parse_args(["--quick"]).scenarios
    assert parse_args(["--quick", "--scenarios", "reconnect"]).scenarios == ["7"]


def test_the_baseline_is_watchdogs_own_timing_defaults():
    from ib_async import IB, Watchdog

    dog = Watchdog(controller=NoController(), ib=IB())  # type: ignore[arg-type]
    assert (dog.appStartupTime, dog.retryDelay, dog.connectTimeout, dog.appTimeout, dog.probeTimeout) == \
        (30, 2, 2, 20, 4)


def _sample(contender: str, outage: float, latency: float | None, no: int = 1, **kw):
    return {"scenario": "7", "contender": contender, "outage_s": outage, "outage_no": no, "latency": latency,
            "recovered": latency is not None, "notice_latency": 0.01, "failed_attempts": 1, **kw}


def test_report_renders_scenario_7_with_its_baseline_ratio_its_goal_and_a_rerun(tmp_path):
    options = {"repeats": 1, "slow_repeats": 1, "common_repeats": 1, "nohc_repeats": 1, "cost_repeats": 1,
               "common_sleep": 30.0, "wait_seconds": 60.0}
    reconnect = {"outages": [10.0, 60.0], "repeats": 2, "slow_repeats": 1, "slow_outage": 60.0,
                 "second_repeats": 1, "second_outage": 10.0, "up_between": 65.0, "heartbeat": 1.0,
                 "recovery_limit": 120.0, "candidates": {"probe": {"src_digest": "abc", "lines_added": 10,
                                                                   "lines_removed": 0}}}
    s7 = [_sample("project", 10.0, 2.0), _sample("project", 10.0, 2.0), _sample("watchdog", 10.0, 22.0),
          _sample("watchdog", 10.0, 22.0), _sample("candidate:probe", 10.0, 0.2),
          _sample("project", 60.0, None), _sample("watchdog", 60.0, 6.0),
          _sample("project", 10.0, 8.0, no=2, up_before_s=66.0), _sample("watchdog", 10.0, 22.0, no=2)]
    full = {"meta": {"options": options, "started": "2026-12-01T09:00:00+00:00", "reconnect": reconnect},
            "samples": {"7": s7}}
    out = tmp_path / "BENCHMARKS.md"
    text = render(full, None, out)
    section = text.split("## 7. Reconnect after an outage", 1)[1]
    assert "ib_async Watchdog (defaults)" in section and "candidate `probe`" in section
    assert "11.0×" in section  # Watchdog's median 22 s / this project's 2 s
    assert "0/1" in section and "**not met**" in section  # the 60 s outage: not recovered
    assert "Second outage" in section and "66 s" in section
    goals = text.split("## Goals", 1)[1].split("\n## ", 1)[0]
    assert "10 s: 2.00 s" in goals and "60 s: 1/1 not recovered" in goals and "(2nd outage" in goals
    assert "**not met**" in goals

    rerun = {"meta": {"options": options, "started": "2026-12-02T09:00:00+00:00", "command": "python -m bench",
                      "reconnect": reconnect},
             "samples": {"7": [_sample("project", 60.0, 0.3), _sample("watchdog", 60.0, 6.0)]}}
    for name, data in (("latest", full), ("reconnect", rerun)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    found = find_reruns(tmp_path, full, skip={"latest.json"}, root=tmp_path)
    text = render(full, None, out, found)
    assert "### [R1] Scenario 7" in text and "#### 7. Reconnect after an outage" in text
    goals = text.split("## Goals", 1)[1].split("\n## ", 1)[0]
    assert "60 s: 0.30 s [R1]" in goals and "10 s: 2.00 s," in goals
