"""Benchmark: what the order firewall adds between a bot and the Gateway (issue "The order firewall").

    python -m bench.firewall [--quick] [--round-trips N] [--burst N] [--bursts N] [--handshakes N]
                             [--idle S] [--tmp DIR] [--json FILE] [--out FILE]

Two contenders, side by side in one run: **direct** (a client connected to the Gateway simulator)
and **firewall** (the same client through `python -m src.firewall`, a real subprocess, default
settings, in front of the same simulator). The simulator (`src.simulator.GatewaySimulator`) runs in
this process, in a thread; the client is a raw TWS API client on a blocking socket built on
`src/tws/wire.py` (TCP_NODELAY, no event loop), in the main thread, so that its own cost is small and
the same for both. Everything on 127.0.0.1; no Docker. Samples of the two contenders alternate (which
goes first alternates too) after unmeasured warm-ups, so machine noise hits both alike; this
process's garbage collector is paused during each measurement (it holds the client and the
simulator; the firewall's is its own).

1. Order round trip: placeOrder → the first orderStatus for it. The order is one the firewall allows
   (plan in force: today's documented example, SPY/QQQ/BRK.B, max_single_position 10): BUY 1 SPY
   LMT 1.00 for DU123456, which rests (the simulator fills only marketable orders here), then
   cancelOrder → orderStatus Cancelled (timed too, for information) and error 202, before the next.
   Why not BUY then SELL with immediate fills: every SELL would close a position opened today, a day
   trade, and a plan allows at most 3 (hard_limits.pdt_trades_remaining); a resting order cancelled
   never moves the position, and the firewall counts it as working until its Cancelled status.
2. Market-data burst: the simulator's `stream_ticks` builds N numbered tickPrice messages, then
   writes them to the client as fast as the connection takes them (so the sender costs next to
   nothing while they flow); throughput = N / (the read that brought the first → the last one
   read); every message's sequence number is checked (lost, reordered, duplicated).
3. Handshake: TCP connect + `API\\0` opening + version reply + startApi → nextValidId and
   managedAccounts both read; a new connection and client id each time.
4. The firewall process (psutil): its RSS after 1-3 (and its peak, VmHWM), then its CPU time over
   an idle period (the bot's connection open and quiet; the firewall's own session heartbeats):
   CPU-seconds per minute (the scheduler's per-thread nanoseconds, /proc/PID/task/*/schedstat).
5. The floor (after 3, before 4's idle period): `bench.relay_floor.measure`, the same number of order round
   trips direct and through a null relay (a process forwarding bytes, judging nothing) in front of a
   simulator of its own: what any Python relay adds here, so the report can tell it from the firewall's work.

Full run (5000 round trips, 5 bursts of 100,000 messages, 200 handshakes per contender, 60 s idle;
about 75 s): results in bench/results/firewall.json and the "Order firewall" section of
docs/BENCHMARKS.md (between its markers; `python -m bench` keeps it when it regenerates the rest).
--quick (200 round trips, 3 bursts of 10,000, 20 handshakes, 3 s idle; about 5 s): prints the
section, writes files only when --json / --out are given. Exit 0 when every measurement ran, 1
otherwise (a goal not met is reported, not an error).

This module is the command line; the pieces are bench/tws_client.py (the raw client),
bench/firewall_process.py (the firewall subprocess), bench/firewall_measure.py (the measurements),
bench/firewall_figures.py (the goals and figures) and bench/sections/firewall.py (the report section).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.firewall_figures import GOALS, dumps, stored, summary
from bench.firewall_measure import run
from bench.firewall_process import filesystem
from bench.gameplan import machine
from bench.markdown import fmt
from bench.markers import shown_path, write_section
from bench.sections.firewall import ms, render, update_report

__all__ = ["FULL", "GOALS", "QUICK", "RESULTS", "REPORT", "main", "render", "run", "stored", "summary", "update_report"]

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "firewall.json"
REPORT = REPO_ROOT / "docs" / "BENCHMARKS.md"

FULL = {"round_trips": 5000, "order_warmup": 200, "burst": 100_000, "bursts": 5, "handshakes": 200,
        "handshake_warmup": 10, "idle": 60.0}
QUICK = {"round_trips": 200, "order_warmup": 20, "burst": 10_000, "bursts": 3, "handshakes": 20,
         "handshake_warmup": 3, "idle": 3.0}


# --- command line ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.firewall", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small counts, 3 s idle; about 5 s")
    p.add_argument("--round-trips", type=int, help="order round trips per contender [5000; --quick 200]")
    p.add_argument("--burst", type=int, help="messages per market-data burst [100000; --quick 10000]")
    p.add_argument("--bursts", type=int, help="bursts per contender [5; --quick 3]")
    p.add_argument("--handshakes", type=int, help="handshakes per contender [200; --quick 20]")
    p.add_argument("--idle", type=float, help="seconds of the idle CPU period [60; --quick 3]")
    p.add_argument("--tmp", type=Path, help="where the firewall's state dir (its journal, its sessions file) is "
                                            "made [the system's temporary directory]; its filesystem is reported")
    p.add_argument("--json", type=Path, help="results [bench/results/firewall.json; --quick: none]")
    p.add_argument("--out", type=Path, help="the report whose firewall section is (re)written "
                                            "[docs/BENCHMARKS.md; --quick: none, the section is printed]")
    args = p.parse_args(argv)
    options: dict[str, Any] = dict(QUICK if args.quick else FULL)
    for name in ("round_trips", "burst", "bursts", "handshakes", "idle"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if min(options["round_trips"], options["burst"], options["bursts"], options["handshakes"]) < 1 \
            or options["idle"] <= 0:
        p.error("every count must be at least 1 and --idle positive")
    json_path = args.json or (None if args.quick else RESULTS)
    out_path = args.out or (None if args.quick else REPORT)
    command = "python -m bench.firewall " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    meta = machine(command.strip())
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-firewall-", dir=args.tmp) as work:
        meta["state_fs"] = filesystem(Path(work))
        results = run(options, Path(work))
    meta.update(options=options, duration_s=time.monotonic() - began,
                loadavg_end=" ".join(f"{x:.2f}" for x in os.getloadavg()))
    results = {"meta": meta, **results}
    results["summary"] = summary(results, options)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(dumps(stored(results)) + "\n", encoding="utf-8")
    write_section(out_path, render(results, shown_path(json_path, out_path, REPORT)), update_report)
    summ = results["summary"]
    print(f"bench.firewall: order round trip +{ms(summ['order']['added_median_ms'])} median, "
          f"+{ms(summ['order']['added_p99_ms'])} p99; burst {fmt(summ['burst']['ratio'], ' ×', 2)}; handshake "
          f"+{ms(summ['handshake']['added_median_ms'], 2)}; RSS {fmt(results['process'].get('rss_mb'), ' MB', 1)}; "
          f"idle {fmt(results['process'].get('cpu_per_min'), ' CPU-s/min', 4)}; goals "
          f"{'all met' if summ['all_met'] else 'NOT all met: ' + ', '.join(k for k, v in summ['met'].items() if not v)}"
          + ("" if summ["all_ran"] else f"; {len(summ['errors'])} measurements FAILED or missing"), file=sys.stderr)
    return 0 if summ["all_ran"] else 1


if __name__ == "__main__":
    sys.exit(main())
