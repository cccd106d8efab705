"""The gameplan benchmark keeps working: `python -m bench.gameplan --quick`, end to end, no Docker.

No timing assertions (shared, noisy machines): only that it completes, measures the cases it
claims with the verdicts they must have, and writes its section into the report without
touching the rest, and that `python -m bench` keeps that section when it regenerates the report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.report import GAMEPLAN_END, GAMEPLAN_START, READING_END, READING_START, render
from src.gameplan.loader import MAX_FILE_BYTES

REPO_ROOT = Path(__file__).resolve().parents[2]
NUMBER = (int, float)


def run_quick(results: Path, report: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "bench.gameplan", "--quick", "--repeats", "1", "--json", str(results),
           "--out", str(report)]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_quick_gameplan_bench_measures_both_1_mib_plans_and_the_baseline(tmp_path):
    results, report = tmp_path / "gameplan.json", tmp_path / "BENCHMARKS.md"
    report.write_text(f"# Benchmarks\n\n## 6. CLI start-up\n\ntable\n\n## Reading\n\n{READING_START}\nmine\n"
                      f"{READING_END}\n")
    done = run_quick(results, report)
    assert done.returncode == 0, done.stderr[-3000:]

    data = json.loads(results.read_text())
    by = {(s["case"], s["contender"], s.get("prefix")): s for s in data["samples"]}
    largest, blackout = by["largest", "project", None], by["blackout", "project", None]
    assert largest["bytes"] == blackout["bytes"] == MAX_FILE_BYTES
    assert (largest["verdict"], largest["ok"]) == ("ok", True)
    assert blackout["verdict"] == "invalid" and blackout["blackout"] > 100_000
    assert blackout["reason"].startswith("earnings_blackout: Tuple should have at most 1000 items")
    assert by["check", "project", None]["items"] == blackout["blackout"]
    baseline = [by["check", "before", k] for k in (64, 32)]
    assert [b["items"] for b in baseline] == [blackout["blackout"] // 64, blackout["blackout"] // 32]
    for sample in (largest, blackout, *baseline):
        assert sample["seconds"] and all(isinstance(x, NUMBER) and x >= 0 for x in sample["seconds"])
    assert isinstance(data["summary"]["worst_p95_s"], NUMBER) and data["summary"]["all_ok"] is True
    assert data["meta"]["nproc"] >= 1 and data["meta"]["command"].startswith("python -m bench.gameplan --quick")

    text = report.read_text()
    assert text.index("## 6. CLI start-up") < text.index(GAMEPLAN_START) < text.index(GAMEPLAN_END) \
        < text.index("## Reading")
    assert "## Gameplan validation" in text and "A 1 MiB plan validates in ≤ 0.2 s" in text
    assert f"{READING_START}\nmine\n{READING_END}" in text

    assert run_quick(results, report).returncode == 0  # a second run replaces its section
    assert report.read_text().count(GAMEPLAN_START) == 1 and report.read_text().count("## Reading") == 1


def test_the_main_report_keeps_the_gameplan_section_when_it_is_regenerated(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    section = f"{GAMEPLAN_START}\n## Gameplan validation\n\nmeasured by bench.gameplan\n{GAMEPLAN_END}"
    out.write_text(f"old\n\n{section}\n\n## Reading\n\n{READING_START}\nmy reading\n{READING_END}\n")
    options = {"repeats": 1, "slow_repeats": 1, "common_repeats": 1, "nohc_repeats": 1, "cost_repeats": 1,
               "common_sleep": 30.0, "wait_seconds": 60.0}
    text = render({"meta": {"options": options}, "samples": {}}, None, out)
    assert section in text and "my reading" in text
    assert text.index(GAMEPLAN_END) < text.index("## Reading")
