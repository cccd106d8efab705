"""Soft versus cold recovery (issue "Recovery that costs no 2FA push"): a frozen API, to the bot trading-ready again.

    python -m bench.recovery [--samples 5] [--json FILE] [--out docs/BENCHMARKS.md]

Two contenders side by side, each a `--supervise` run against its own simulator Gateway (real Docker, Compose,
the firewall and the bot) on a **live account with a 2FA approval on every cold login** (the simulator's
`2fa-then-ok`, approved after TWOFA_DELAY s, as an operator at hand would):

* **soft**: the ladder as shipped: IBC's RESTART through its command server first (the session kept);
* **cold**: `GATEWAY_SOFT_RESTART_BUDGET=0`: straight to the container restart (a cold login: a push).

Each sample freezes the API (the simulator's SIMOUTAGE freeze: connections stay open, nothing is answered) and
times, from the freeze and from the supervisor's recovery decision (its `soft_restart` or `restart` record),
until the bot's readiness record says connected again; the pushes are the APPROVE alerts the webhook received.
Samples alternate between the contenders. Goal on the soft path: 0 pushes, and a time from the decision within
the simulator's restart delay + 5 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.markdown import fmt, table
from bench.markers import RECOVERY_END as END
from bench.markers import RECOVERY_START as START
from bench.markers import replace_section
from bench.stats import median, quantile
from src.core.statefiles import read_ready_record
from testkit.stack import Stack, stop_bot, wait_until
from testkit.webhook import WebhookReceiver

ROOT = Path(__file__).resolve().parents[1]
LIVE = "U1234567"
RESTART_DELAY, TWOFA_DELAY, LOGIN_DELAY = 2.0, 5.0, 1.0
SIM = {"login_delay": LOGIN_DELAY, "accounts": LIVE, "login_outcome": "2fa-then-ok", "twofa_delay": TWOFA_DELAY,
       "restart_delay": RESTART_DELAY}
# Detection shortened on both sides alike (production waits GATEWAY_DOWN_ALERT_AFTER's default, on purpose: most
# outages heal by themselves): the outage's delay 2 s, and the supervisor's probe of a frozen API 2 s (a healthy
# Gateway answers the handshake in milliseconds), so what is measured is the recovery, not the waiting.
SETTINGS = {"TRADING_CALENDAR": "ALWAYS", "GATEWAY_DOWN_ALERT_AFTER": "2", "HEALTH_CHECK_TIMEOUT": "2",
            "TWOFA_WAIT_TIMEOUT": "60",
            "GATEWAY_LOGIN_BUDGET": "20", "GATEWAY_SOFT_RESTART_BUDGET": "20"}
CONTENDERS = {"soft": {}, "cold": {"GATEWAY_SOFT_RESTART_BUDGET": "0"}}
DECISIONS = ("soft_restart", "restart")


def approvals(stack: Stack, before: int) -> int:
    return sum(1 for r in stack.hook.received[before:]
               if r.json and str(r.json["embeds"][0].get("description", "")).startswith("APPROVE THE IBKR LOGIN"))


def sample(stack: Stack, contender: str) -> dict[str, Any]:
    before_alerts, before_decisions = len(stack.hook.received), len(stack.decisions())
    began, t0 = datetime.now(UTC), time.monotonic()
    stack.freeze_api()
    wait_until(lambda: stack.bot_connected_since(began), 180, f"{contender}: the bot trading-ready again")
    total = time.monotonic() - t0
    new = stack.decisions()[before_decisions:]
    acted = next((d for d in new if d.get("event") in DECISIONS), None)
    from_decision = None
    if acted is not None:
        decided = datetime.fromisoformat(acted["at"])
        ready = datetime.fromisoformat((read_ready_record(stack.state_dir) or {})["connection_since"])
        from_decision = (ready - decided).total_seconds()
    time.sleep(2)  # the all-clear and any approval alert land
    return {"contender": contender, "seconds": total, "from_decision": from_decision,
            "decision": acted.get("event") if acted else None, "pushes": approvals(stack, before_alerts)}


def run(samples: int, log: Any) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    with WebhookReceiver() as hook_soft, WebhookReceiver() as hook_cold:
        tmp = Path(tempfile.mkdtemp(prefix="zt-bench-recovery-"))
        stacks = {"soft": Stack(tmp / "soft", hook_soft, mode="live", sim=dict(SIM)),
                  "cold": Stack(tmp / "cold", hook_cold, mode="live", sim=dict(SIM))}
        procs: dict[str, subprocess.Popen[str]] = {}
        try:
            for name, stack in stacks.items():
                (tmp / name).mkdir(parents=True, exist_ok=True)
                procs[name] = stack.launch("--supervise", **{**SETTINGS, **CONTENDERS[name]})
            for name, stack in stacks.items():
                wait_until(lambda s=stack: any(d["event"] == "supervising" for d in s.decisions()), 120,
                           f"{name}: the supervisor to take over")
            for i in range(samples):
                order = ("soft", "cold") if i % 2 == 0 else ("cold", "soft")
                for name in order:
                    result = sample(stacks[name], name)
                    results.append(result)
                    log(f"{name} #{i + 1}: {result['seconds']:.1f} s from the freeze, "
                        f"{fmt(result['from_decision'], ' s', 1)} from the {result['decision']} decision, "
                        f"{result['pushes']} push(es)")
                    time.sleep(3)
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                try:
                    proc.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for stack in stacks.values():
                stop_bot(stack.state_dir)
                stack.down()
    return {"at": f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}", "samples": results,
            "settings": {"restart_delay": RESTART_DELAY, "twofa_delay": TWOFA_DELAY, "login_delay": LOGIN_DELAY}}


def summary(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name in CONTENDERS:
        rows = [s for s in results["samples"] if s["contender"] == name]
        total = [s["seconds"] for s in rows]
        decided = [s["from_decision"] for s in rows if s["from_decision"] is not None]
        out[name] = {"n": len(rows), "median": median(total), "p95": quantile(total, 0.95),
                     "decision_median": median(decided), "decision_p95": quantile(decided, 0.95),
                     "pushes": sum(s["pushes"] for s in rows),
                     "decisions": sorted({str(s["decision"]) for s in rows})}
    return out


def report(results: dict[str, Any], git: str) -> str:
    summ = summary(results)
    soft = summ["soft"]
    goal = RESTART_DELAY + 5
    met_time = soft["decision_p95"] is not None and soft["decision_p95"] <= goal
    rows = [[name, str(s["n"]), ", ".join(s["decisions"]), fmt(s["median"], " s", 1), fmt(s["p95"], " s", 1),
             fmt(s["decision_median"], " s", 1), fmt(s["decision_p95"], " s", 1), str(s["pushes"])]
            for name, s in summ.items()]
    return "\n".join([
        START,
        "## Recovery without a 2FA push: soft versus cold",
        "",
        f"_Generated by `python -m bench.recovery` on {results['at']} (git {git}); real Docker, Compose, the "
        "firewall and the bot against the simulator Gateway._",
        "",
        "The question (issue \"Recovery that costs no 2FA push\"): **what does IBC's own restart save over a container "
        "restart when the API freezes with the container up?** Two `--supervise` runs side by side, each with its own "
        "simulator Gateway on a live account whose every cold login waits for a 2FA approval (given after "
        f"{TWOFA_DELAY:g} s, an operator at hand; login {LOGIN_DELAY:g} s, IBC's RESTART keeps the API away "
        f"{RESTART_DELAY:g} s): **soft** is the ladder as shipped (IBC's RESTART first), **cold** has "
        "`GATEWAY_SOFT_RESTART_BUDGET=0` (straight to the container restart). Each sample freezes the API (the "
        "simulator's `SIMOUTAGE freeze`), then times until the bot's readiness record says connected again: from "
        "the freeze (detection included: `GATEWAY_DOWN_ALERT_AFTER=2`, `HEALTH_CHECK_TIMEOUT=2`, the same for both) "
        "and from the supervisor's recovery decision "
        "(its `soft_restart` or `restart` record). Pushes = the APPROVE alerts received. Samples alternate.",
        "",
        table(["contender", "n", "decision", "freeze → ready, median", "p95", "decision → ready, median", "p95",
               "2FA pushes"], rows),
        "",
        table(["goal", "measured", "verdict"], [
            ["soft path: 0 pushes", str(soft["pushes"]), "**met**" if soft["pushes"] == 0 else "**not met**"],
            [f"soft path: decision → ready within the restart delay + 5 s ({goal:g} s), p95",
             fmt(soft["decision_p95"], " s", 1), "**met**" if met_time else "**not met**"],
            [f"soft path: freeze → ready within the restart delay + 5 s ({goal:g} s), p95",
             fmt(soft["p95"], " s", 1), "**met**" if (soft["p95"] or 1e9) <= goal else "**not met**"],
        ]),
        "",
        "Reading: the rung itself is as fast as the simulator allows (the restart delay, then the bot's resync) "
        "and sends no push, where the container restart costs one push and the approval's wait. The rest of the "
        "time from the freeze is detection: a frozen API answers nothing, so it is known only when an answer "
        "deadline passes (the bot's heartbeat, then the supervisor's own probe, `HEALTH_CHECK_TIMEOUT`), and the "
        "outage must have lasted `GATEWAY_DOWN_ALERT_AFTER`; the probe's wait counts toward that delay, and the "
        "next look is due when the delay ends. In production that delay is 300 s by default, on purpose: most "
        "outages heal by themselves, and a restart is an IBKR login.",
        END,
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.recovery", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--samples", type=int, default=5, help="samples per contender [5]")
    p.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "recovery.json")
    p.add_argument("--out", type=Path, help="the report whose recovery section is (re)written")
    p.add_argument("--report-only", action="store_true", help="no run: the report from --json's results")
    args = p.parse_args(argv)

    def log(line: str) -> None:
        print(f"bench.recovery: {line}", flush=True)

    results = json.loads(args.json.read_text()) if args.report_only else run(args.samples, log)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,  # noqa: S607 - the PATH's git
                         capture_output=True, text=True).stdout.strip() or "?"
    if args.report_only:
        git = results.get("git", git)
    else:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**results, "git": git}, indent=2) + "\n")
    section = report(results, git)
    if args.out:
        args.out.write_text(replace_section(args.out.read_text(), section, START, END))
    print(section)
    soft = summary(results)["soft"]
    return 0 if soft["pushes"] == 0 and (soft["decision_p95"] or 1e9) <= RESTART_DELAY + 5 else 1


if __name__ == "__main__":
    sys.exit(main())
