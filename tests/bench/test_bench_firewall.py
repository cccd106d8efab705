"""The order firewall benchmark keeps working: `python -m bench.firewall --quick`, end to end, no Docker.

No timing assertions (shared, noisy machines): only that it completes, measures everything it
claims as many times as it says (the burst whole and in order), and writes its section into the
report without touching the rest, and that `python -m bench` keeps that section when it
regenerates the report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.firewall import GOALS, QUICK, update_report
from bench.report import (
    FIREWALL_END,
    FIREWALL_START,
    GAMEPLAN_END,
    GAMEPLAN_START,
    READING_END,
    READING_START,
    render,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
NUMBER = (int, float)
GAMEPLAN = f"{GAMEPLAN_START}\n## Gameplan validation\n\nmeasured by bench.gameplan\n{GAMEPLAN_END}"


def is_number(x: object) -> bool:
    return isinstance(x, NUMBER) and not isinstance(x, bool) and x >= 0


def test_quick_firewall_bench_measures_every_goal_side_by_side(tmp_path):
    results, report = tmp_path / "firewall.json", tmp_path / "BENCHMARKS.md"
    original = (f"# Benchmarks\n\n## 6. CLI start-up\n\ntable\n\n{GAMEPLAN}\n\n## Reading\n\n{READING_START}\nmine\n"
                f"{READING_END}\n")
    report.write_text(original)
    cmd = [sys.executable, "-m", "bench.firewall", "--quick", "--json", str(results), "--out", str(report)]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    data = json.loads(results.read_text())
    samples, process, summ = data["samples"], data["process"], data["summary"]
    assert summ["all_ran"] is True and summ["errors"] == [] and samples["failed"] == []
    n = QUICK["round_trips"]
    for contender in ("direct", "firewall"):
        hands, orders, bursts = (samples[m][contender] for m in ("handshake", "order", "burst"))
        assert len(hands["us"]) == QUICK["handshakes"] and all(is_number(x) for x in hands["us"])
        assert len(orders["us"]) == len(orders["cancel_us"]) == n
        assert all(is_number(x) for x in orders["us"] + orders["cancel_us"])
        assert orders["statuses"] == {"Submitted, Cancelled": n}  # each order rested, then was cancelled
        first, last = orders["order_ids"]
        assert last - first + 1 == n  # one new order id each
        assert len(bursts) == QUICK["bursts"] and not any(b["warmup"] or b.get("error") for b in bursts)
        for burst in bursts:  # none lost, reordered or duplicated
            assert burst["messages"] == burst["received"] == burst["sent"] == QUICK["burst"]
            assert (burst["lost"], burst["reordered"], burst["duplicates"]) == (0, 0, 0)
            assert is_number(burst["seconds"]) and is_number(burst["per_second"])
        for measure in ("order", "cancel", "handshake"):
            cell = summ[measure][contender]
            assert cell["n"] == (QUICK["handshakes"] if measure == "handshake" else QUICK["round_trips"])
            assert all(is_number(cell[q]) for q in ("median_ms", "p95_ms", "p99_ms"))
        assert summ["burst"][contender]["n"] == QUICK["bursts"] and summ["burst"][contender]["lost"] == 0
    for measure in ("order", "handshake"):
        assert all(isinstance(summ[measure][f"added_{q}_ms"], NUMBER) for q in ("median", "p95", "p99"))
    assert is_number(summ["burst"]["ratio"])
    assert set(summ["met"]) == {"order_added_median", "order_added_p99", "burst_ratio", "burst_intact",
                                "handshake_added_median", "rss", "idle_cpu"}
    assert summ["met"]["burst_intact"] is True and all(isinstance(v, bool) for v in summ["met"].values())

    warmup = QUICK["order_warmup"]
    assert process["exit_code"] == 0  # it stopped on SIGTERM, as Docker stops it
    assert process["counts"] == {"allowed": QUICK["round_trips"] + warmup, "refused": 0,
                                 "connections": QUICK["handshakes"] + QUICK["handshake_warmup"] + 1}
    assert process["orders_reached_simulator"] == {"1": QUICK["round_trips"] + warmup,
                                                   "2": QUICK["round_trips"] + warmup}
    for key in ("rss_mb", "rss_peak_mb", "rss_mb_at_start", "rss_mb_after_idle", "idle_cpu_s", "cpu_per_min",
                "cpu_s_until_idle", "start_to_synced_s"):
        assert is_number(process[key]), key
    assert process["idle_s"] >= QUICK["idle"] * 0.99
    floor = process["relay_floor"]  # measured in the same run: what a relay that judges nothing adds
    assert floor["n"] == QUICK["round_trips"] and is_number(floor["direct"]) and is_number(floor["relay"])
    assert floor["added"] == floor["relay"] - floor["direct"]
    assert data["meta"]["options"] == QUICK and data["meta"]["command"].startswith("python -m bench.firewall --quick")

    text = report.read_text()
    start, end = text.index(FIREWALL_START), text.index(FIREWALL_END) + len(FIREWALL_END)
    assert text.index("## 6. CLI start-up") < text.index(GAMEPLAN_END) < start < end < text.index("## Reading")
    section = text[start:end]
    assert text[:start] + text[end + 2:] == original  # the rest untouched (the section and a blank line added)
    assert "## Order firewall" in section and "firewall.json" in section
    for goal in (f"added median ≤ {GOALS['order_added_median_ms']:g} ms",
                 f"added p99 ≤ {GOALS['order_added_p99_ms']:g}", f"≥ {GOALS['burst_ratio']:g} × direct",
                 "none lost or reordered",
                 f"added median ≤ {GOALS['handshake_added_median_ms']:g} ms", f"RSS ≤ {GOALS['rss_mb']:g} MB",
                 f"Idle CPU ≤ {GOALS['idle_cpu_per_min']:g} CPU-seconds per minute"):
        assert goal in section, goal
    assert section.count("**met**") + section.count("**not met**") == len(summ["met"])
    assert "Machine and command: `python -m bench.firewall --quick" in section
    assert "The floor, in the same run: a null relay" in section and f"{floor['n']:,} each" in section

    again = update_report(text, section.replace("## Order firewall", "## Order firewall, again"))
    assert again.count(FIREWALL_START) == 1 and "## Order firewall, again" in again  # a rerun replaces it
    assert again.replace("## Order firewall, again", "## Order firewall") == text


def test_the_main_report_keeps_the_firewall_section_when_it_is_regenerated(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    section = f"{FIREWALL_START}\n## Order firewall\n\nmeasured by bench.firewall\n{FIREWALL_END}"
    out.write_text(f"old\n\n{GAMEPLAN}\n\n{section}\n\n## Reading\n\n{READING_START}\nmy reading\n{READING_END}\n")
    options = {"repeats": 1, "slow_repeats": 1, "common_repeats": 1, "nohc_repeats": 1, "cost_repeats": 1,
               "common_sleep": 30.0, "wait_seconds": 60.0}
    text = render({"meta": {"options": options}, "samples": {}}, None, out)
    assert section in text and GAMEPLAN in text and "my reading" in text
    assert text.index(GAMEPLAN_END) < text.index(FIREWALL_START) < text.index(FIREWALL_END) < text.index("## Reading")


def test_the_relay_floor_measures_both_paths_and_leaves_nothing_running():
    """`python -m bench.relay_floor`: a null relay process in front of the simulator, round trips through it and
    direct; one line with both medians and what the relay adds (a number, not a bound), and the relay is gone."""
    done = subprocess.run([sys.executable, "-m", "bench.relay_floor", "--round-trips", "30", "--warmup", "5"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("bench.relay_floor: order round trip, medians of 30: direct "), done.stdout
    assert " ms: the relay adds " in done.stdout
    left = subprocess.run(["pgrep", "-f", "bench.relay_floor --serve"], capture_output=True, text=True)
    assert left.stdout.strip() == ""
