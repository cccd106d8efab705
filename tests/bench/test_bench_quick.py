"""The benchmark keeps working: `python -m bench --quick` on a tiny subset, end to end.

No timing assertions here (CI machines are noisy and shared): only that it completes, cleans
up after itself and writes well-formed results and a report. The numbers live in
docs/BENCHMARKS.md, from a full run (`bash bench/run.sh --plot`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import READING_END, READING_START, find_reruns, quantile, render
from testkit.docker import docker
from tests.integration.docker_env import require_docker

REPO_ROOT = Path(__file__).resolve().parents[2]
NUMBER = (int, float)


def containers_of(project: str) -> list[str]:
    return docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split()


@pytest.mark.docker
@pytest.mark.timeout(240)
def test_quick_bench_on_a_tiny_subset_completes_and_writes_well_formed_results(tmp_path):
    require_docker()
    results, report = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    # scenario 6, plus one detection-latency sample per contender at a 2 s login delay (the
    # common-practice sleep shortened to 1 s so the whole thing stays well under 90 s), and one of
    # this project in the production-like variant (the production Compose file's healthcheck)
    cmd = [sys.executable, "-m", "bench", "--quick", "--scenarios", "1,6", "--login-delays", "2",
           "--repeats", "1", "--common-sleep", "1", "--nohc-delays", "", "--prod-delays", "2",
           "--prod-contenders", "project", "--json", str(results), "--out", str(report)]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=200, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    data = json.loads(results.read_text())
    assert data["meta"]["quick"] is True and data["meta"]["nproc"] >= 1 and data["meta"]["docker"]
    s1, s6 = data["samples"]["1"], data["samples"]["6"]
    assert sorted((s["variant"], s["contender"]) for s in s1) == [
        ("production-like", "project"), ("sim", "common"), ("sim", "handoff"), ("sim", "project")]
    for s in s1:
        assert not s.get("error"), s
        for key in ("t0", "t_end", "wall", "logged_in_at", "detected_at", "detection_latency", "overhead"):
            assert isinstance(s[key], NUMBER), (key, s)
        assert s["t0"] < s["logged_in_at"] and s["mode"] == "cold"
        assert isinstance(s["exit_code"], int) and isinstance(s["ready_at_claim"], bool)
    for project in (s for s in s1 if s["contender"] == "project"):
        assert project["exit_code"] == 0 and project["outcome"] == "success" and project["ready_at_claim"] is True
        assert "GATEWAY_VALIDATED" in project["path"]
    # the production healthcheck (api-healthcheck.sh in the simulator container) did pass after the login
    prod = next(s for s in s1 if s["variant"] == "production-like")
    assert isinstance(prod["login_to_docker_healthy"], NUMBER) and prod["login_to_docker_healthy"] > 0, prod
    assert sorted(s["contender"] for s in s6) == ["project", "python -c pass"]
    assert all(s["exit_code"] == 0 and isinstance(s["wall"], NUMBER) for s in s6)
    assert set(data["summary"]["detection"]["2"]) == {"project", "handoff", "common"}
    assert set(data["summary"]["detection_production_like"]["2"]) == {"project"}

    text = report.read_text()
    for heading in ("## Machine and command", "## Goals", "## 1. Detection latency", "## 2. End-to-end overhead",
                    "## 6. CLI start-up", "Production-like", READING_START, READING_END):
        assert heading in text
    for s in s1:
        assert containers_of(s["compose_project"]) == [], f"the bench left {s['compose_project']} behind"


def test_p95_interpolates_between_order_statistics():
    assert quantile([float(x) for x in range(1, 11)], 0.95) == pytest.approx(9.55)
    assert quantile([2.0], 0.95) == 2.0 and quantile([], 0.5) is None


def test_report_renders_every_scenario_and_keeps_the_hand_written_reading(tmp_path):
    def sample(scenario: str, contender: str, **kw):
        return {"scenario": scenario, "contender": contender, "exit_code": 0, "wall": 1.0, "t0": 0.0, **kw}

    options = {"repeats": 1, "slow_repeats": 1, "common_repeats": 1, "nohc_repeats": 1, "cost_repeats": 1,
               "common_sleep": 30.0, "wait_seconds": 60.0}
    samples = {
        "1": [sample("1", c, login_delay=3.0, variant=v, mode="cold", detection_latency=lat, overhead=1.0,
                     login_to_bot_ready=lat + 0.3, ready_at_claim=True, bot_ready_at=1.0, start_to_bot_ready=4.0)
              for c, lat in (("project", 0.2), ("handoff", 2.5), ("common", 31.0))
              for v in ("sim", "production-like", "no-healthcheck")],
        "2": [sample("2", c, mode="warm", overhead=o, ready_at_claim=True) for c, o in
              (("project", 0.6), ("handoff", 5.6), ("common", 31.0))],
        "3": [sample("3", c, deadline=10.0, waits=[10.1, 10.2], wait_errors=[0.1, 0.2], total_error=2.0, exit_code=1)
              for c in ("project", "handoff", "common")],
        "4": [sample("4", c, time_to_refuse=t, first_bot_still_running=True, exit_code=1)
              for c, t in (("project", 0.3), ("handoff", 0.4), ("common", 31.0))],
        "5": [sample("5", "project", label="project", wait_window_s=60.0, wait_cpu_s=0.5, wait_cpu_per_min=0.5,
                     peak_rss_own_mb=45.0, peak_rss_tree_mb=90.0, host_connections_before_login=240,
                     connections_per_min=240.0)],
        "6": [sample("6", "project", maxrss_mb=40.0), sample("6", "python -c pass", wall=0.01, maxrss_mb=9.0)],
    }
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(f"old\n{READING_START}\nmy reading\n{READING_END}\n")
    text = render({"meta": {"options": options}, "samples": samples}, None, out)
    for n in range(1, 7):
        assert f"## {n}. " in text
    assert "my reading" in text and "**met**" in text and "**not met**" not in text


def test_a_newer_partial_rerun_gets_its_section_and_replaces_the_full_runs_figures_in_the_goals(tmp_path):
    def cell(variant: str, contender: str, lat: float, **kw):
        return {"scenario": "1", "contender": contender, "login_delay": 10.0, "variant": variant, "mode": "cold",
                "exit_code": 0, "wall": 11.0, "detection_latency": lat, "overhead": 1.0, "ready_at_claim": True, **kw}

    options = {"repeats": 1, "slow_repeats": 1, "common_repeats": 1, "nohc_repeats": 1, "cost_repeats": 1,
               "common_sleep": 30.0, "wait_seconds": 60.0}
    full = {"meta": {"options": options, "started": "2026-11-25T09:00:00+00:00"},
            "samples": {"1": [cell("sim", "project", 1.0), cell("sim", "handoff", 5.0)]}}
    rerun = {"meta": {"options": options, "started": "2026-11-26T09:00:00+00:00", "command": "python -m bench"},
             "samples": {"1": [cell("sim", "project", 0.1), cell("sim", "handoff", 5.0),
                               cell("production-like", "project", 0.2, login_to_docker_healthy=3.0)]}}
    older = {"meta": {"options": options, "started": "2026-11-24T09:00:00+00:00"}, "samples": {"1": []}}
    quick = {"meta": {"options": options, "started": "2026-11-27T09:00:00+00:00", "quick": True}, "samples": {}}
    for name, data in (("latest", full), ("r", rerun), ("older", older), ("q", quick)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    found = find_reruns(tmp_path, full, skip={"latest.json"}, root=tmp_path)
    assert [path for path, _ in found] == ["r.json"]

    text = render(full, None, tmp_path / "BENCHMARKS.md", found)
    assert "## Reruns since the full run" in text and "### [R1] Scenario 1" in text
    goals = text.split("## Goals", 1)[1].split("## Reruns", 1)[0]
    assert "10 s: 0.10 s [R1]" in goals and "1.00 s" not in goals  # the rerun replaced the full run's cell
    assert "production-like" in goals and "10 s: 0.20 s [R1]" in goals and "**not met**" not in goals
    rerun_table = text.split("### [R1]", 1)[1].split("## 1. ", 1)[0]
    assert "1.00 s / 1.00 s" in rerun_table and "50.0×" in rerun_table  # full run beside it; handoff/project ratio
