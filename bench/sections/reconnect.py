"""7. Reconnect after an outage: the API back to the client connected and synced, beside ib_async's Watchdog;
the backoff's reset on a second outage; candidates (a patched scratch copy of the bot)."""

from __future__ import annotations

from typing import Any

from bench.figures import GOALS, RECONNECT_BASELINE
from bench.markdown import fmt, label, ratio, table
from bench.stats import contenders_in, median, reconnect_cell, select, values


def _reconnect_label(contender: str) -> str:
    if contender.startswith("candidate:"):
        return f"candidate `{contender.split(':', 1)[1]}` (local patch, not in src/)"
    return label(contender)


def _reconnect_rows(cells: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for d in sorted({s["outage_s"] for s in cells if "outage_s" in s}):
        base = median(values(select(cells, contender=RECONNECT_BASELINE, outage_s=d), "latency"))
        for c in contenders_in(cells):
            v = select(cells, contender=c, outage_s=d)
            if not v:
                continue
            cell = reconnect_cell(v)
            goal = "" if c == RECONNECT_BASELINE else (
                "–" if cell["recovered"] < cell["n"] and not cell["n"] else
                "**not met**" if cell["recovered"] < cell["n"] or cell["p95"] is None
                or cell["p95"] > GOALS["reconnect_p95"] else "**met**")
            up = median(values(v, "up_before_s"))
            rows.append([f"{d:g} s", _reconnect_label(c), str(cell["n"]), f"{cell['recovered']}/{cell['n']}",
                         fmt(cell["median"]), fmt(cell["p95"]), fmt(cell["max"]),
                         "1.0×" if c == RECONNECT_BASELINE else ratio(base, cell["median"]), goal,
                         fmt(median(values(v, "notice_latency")), " s", 3),
                         fmt(median(values(v, "failed_attempts")), "", 0),
                         *([fmt(up, " s", 0)] if up is not None else [])])
    return rows


def section(s7: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    r = meta.get("reconnect", {})
    header = ["outage", "contender", "n", "recovered", "API back → connected and synced, median", "p95", "max",
              "Watchdog median ÷ this median", "goal p95 ≤ 2 s", "outage → noticed, median",
              "failed attempts, median"]
    parts = ["## 7. Reconnect after an outage", "",
             "From the instant the Gateway's API serves again after an outage of D seconds to the client being "
             "connected and synced again. The Gateway is the simulator **in the bench's own process** "
             "(`GatewaySimulator`, the protocol code the container runs), so the bench closes and opens its "
             "API at instants it knows exactly: \"API back\" is `open_api()` returning. The outage is the "
             "simulator's `closed` kind, as its timed outage does it: error 1100 to every client, then every "
             "connection closed and each new one closed on accept (socat in front of a restarting Gateway, "
             "as in the production image); after D s connectivity is restored and the API serves again. "
             "Every contender is a client of the same simulator during the same outage (start order "
             "rotated from one outage to the next):", ""]
    present = {s.get("contender") for s in s7}
    bullets = [
             f"* **this project**: the real bot, `python -m src.main --heartbeat {r.get('heartbeat', 1):g}`, "
             "started fresh for each outage (the first outage of its life); connected and synced = its "
             "readiness record `state/bot_ready.json` showing `connection: connected`, reason "
             "\"connected and synced\", written after the outage began (the file's mtime);",
             "* **ib_async Watchdog (defaults)**: `bench/baselines/watchdog.py`, the real "
             "`ib_async.Watchdog` loop with its default timing (appStartupTime 30 s, retryDelay 2 s, "
             "connectTimeout 2 s, appTimeout 20 s, probeTimeout 4 s) and a controller that does nothing: "
             "the bench, not Watchdog, restarts the Gateway, so only Watchdog's own waiting is modelled (a "
             "real controller would also restart and log in the Gateway each cycle: a lower bound). Its "
             "probe contract is SPY, not its default EURUSD, which the simulator does not list. One process "
             "for the whole scenario (its loop keeps no state from one outage to the next); connected and "
             "synced = its `startedEvent`;",
             "* **candidates**: the same bot run from a scratch copy of the repository with a local "
             "patch to src/ (`bench/candidates/`), to measure a suggested change before anyone makes it."]
    parts += [b for b, c in zip(bullets, ("project", RECONNECT_BASELINE, "candidate"), strict=True)
              if any(str(x).startswith(c) for x in present)]
    parts += ["",
             "\"outage → noticed\": from the outage's start to the client's first sign of it (the bot's record "
             "leaving `connected`; Watchdog's error/disconnect event). \"failed attempts\": connect attempts "
             "that failed during the outage (the bot's \"connection attempt N failed\" lines; Watchdog's "
             "cycles after the one the outage ended). Ratio: Watchdog's median ÷ this contender's in the same "
             "cell (> 1: faster than the baseline). A contender not connected within "
             f"{r.get('recovery_limit', 120):g} s of the API's return counts as not recovered, and the cell's "
             "goal is then not met.", ""]
    first = [s for s in s7 if s.get("outage_no") == 1]
    if first:
        n, slow = r.get("repeats"), r.get("slow_outage", 60)
        reps = f"{n} outages per duration" + (
            f", {r.get('slow_repeats')} at ≥ {slow:g} s" if any(d >= slow for d in r.get("outages", [])) else "")
        if r.get("second_repeats"):
            reps += (f"; the first outages of the backoff-reset sequences below count at "
                     f"{r.get('second_outage', 10):g} s too")
        parts += ["**First outage of a fresh bot**" + (f" ({reps})" if n else ""), "",
                  table(header, _reconnect_rows(first)), ""]
    second = [s for s in s7 if s.get("outage_no") == 2]
    if second:
        parts += [f"**Second outage: the backoff's reset.** The same bots: a first {r.get('second_outage', 10):g} s "
                  f"outage, then connected for about {r.get('up_between', 65):g} s (longer than the 60 s after "
                  "which `src/broker/connection.py` promises to reset the backoff), then a second "
                  f"{r.get('second_outage', 10):g} s outage, measured here.", "",
                  table([*header, "connected before it, median"], _reconnect_rows(second)), ""]
    cands = r.get("candidates") or {}
    if cands:
        parts += ["**Candidates** (the bot run from a scratch copy; the diff against this tree's src/ is in the "
                  "results file, `meta.reconnect.candidates`):", "",
                  table(["candidate", "src/ digest", "lines added / removed"],
                        [[f"`{lb}`", c.get("src_digest", "?"), f"+{c.get('lines_added')} / −{c.get('lines_removed')}"]
                         for lb, c in cands.items()]), ""]
    errors = [s["error"] for s in s7 if s.get("error")]
    if errors:
        parts += [f"Failed outages: {len(errors)}", "", *[f"* {e}" for e in errors], ""]
    return parts
