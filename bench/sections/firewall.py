"""The "Order firewall" section, which `python -m bench.firewall` writes between its markers in the report
(`python -m bench` keeps it as it is): the goals, the latencies, the bursts, the firewall process."""

from __future__ import annotations

from typing import Any

from bench.firewall_figures import GOALS
from bench.markdown import fmt, table
from bench.markers import FIREWALL_END, FIREWALL_START, replace_section


def ms(x: float | None, digits: int = 3) -> str:
    return fmt(x, " ms", digits)


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _rate(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f}/s"


def _floor(floor: dict[str, Any] | None, added: float | None) -> str:
    """The relay floor measured in the same run, and the firewall's own share of what it adds."""
    if not floor:
        return "The relay floor was not measured in this run (see the failed measurements)."
    own = None if added is None else added - floor["added"]
    return ("The floor, in the same run: a null relay (`python -m bench.relay_floor`: asyncio protocols forwarding "
            "bytes both ways, judging nothing, a process of its own in front of a simulator of its own) adds "
            f"+{ms(floor['added'])} to the median of the same order round trip ({ms(floor['direct'])} direct → "
            f"{ms(floor['relay'])} relayed, {floor['n']:,} each, alternating). Any Python relay on this machine "
            f"pays that; the firewall's own work on the path (decode, judge, journal) is the rest, about "
            f"+{ms(own)} of its +{ms(added)}.")


def render(results: dict[str, Any], json_path: str) -> str:
    meta, summ, process = results["meta"], results["summary"], results["process"]
    o = opts = meta["options"]
    order, cancel, hand, burst, met = summ["order"], summ["cancel"], summ["handshake"], summ["burst"], summ["met"]
    g = GOALS
    goals = [
        [f"Order round trip (placeOrder → first orderStatus): added median ≤ {g['order_added_median_ms']:g} ms",
         f"{ms(order['added_median_ms'])} ({ms(order['direct']['median_ms'])} → "
         f"{ms(order['firewall']['median_ms'])})", _verdict(met["order_added_median"])],
        [f"… added p99 ≤ {g['order_added_p99_ms']:g} ms",
         f"{ms(order['added_p99_ms'])} ({ms(order['direct']['p99_ms'])} → {ms(order['firewall']['p99_ms'])})",
         _verdict(met["order_added_p99"])],
        [f"Market-data burst of {o['burst']:,} messages: throughput through the firewall ≥ "
         f"{g['burst_ratio']:g} × direct",
         f"{fmt(burst['ratio'], ' ×', 2)} ({_rate(burst['firewall']['median_per_s'])} vs "
         f"{_rate(burst['direct']['median_per_s'])}, medians of {o['bursts']})", _verdict(met["burst_ratio"])],
        ["… none lost or reordered (sequence number in every message)",
         f"lost {burst['direct']['lost'] + burst['firewall']['lost']}, reordered "
         f"{burst['direct']['reordered'] + burst['firewall']['reordered']}, duplicated "
         f"{burst['direct']['duplicates'] + burst['firewall']['duplicates']} of "
         f"{2 * o['bursts'] * o['burst']:,}", _verdict(met["burst_intact"])],
        [f"Handshake (connect → nextValidId + managedAccounts): added median ≤ "
         f"{g['handshake_added_median_ms']:g} ms",
         f"{ms(hand['added_median_ms'], 2)} ({ms(hand['direct']['median_ms'], 2)} → "
         f"{ms(hand['firewall']['median_ms'], 2)})", _verdict(met["handshake_added_median"])],
        [f"The firewall's RSS ≤ {g['rss_mb']:g} MB (after the measurements above)",
         f"{fmt(process.get('rss_mb'), ' MB', 1)} (peak {fmt(process.get('rss_peak_mb'), ' MB', 1)})",
         _verdict(met["rss"])],
        [f"Idle CPU ≤ {g['idle_cpu_per_min']:g} CPU-seconds per minute",
         f"{fmt(process.get('cpu_per_min'), ' CPU-s/min', 4)} over {fmt(process.get('idle_s'), ' s', 1)}",
         _verdict(met["idle_cpu"])],
    ]

    def lat_row(label: str, cell: dict[str, Any], digits: int = 3) -> list[str]:
        d, f = cell["direct"], cell["firewall"]
        return [label, f"{d['n']} / {f['n']}", ms(d["median_ms"], digits), ms(d["p95_ms"], digits),
                ms(d["p99_ms"], digits), ms(f["median_ms"], digits), ms(f["p95_ms"], digits),
                ms(f["p99_ms"], digits), f"+{ms(cell['added_median_ms'], digits)}",
                f"+{ms(cell['added_p99_ms'], digits)}", fmt(cell["ratio"], " ×", 2)]

    latency = table(["measure", "n (direct / firewall)", "direct median", "p95", "p99", "firewall median", "p95",
                     "p99", "added, median", "added, p99", "ratio of medians"],
                    [lat_row("order round trip: placeOrder → first orderStatus (Submitted)", order),
                     lat_row("cancelOrder → orderStatus Cancelled (information)", cancel),
                     lat_row("handshake: connect → nextValidId + managedAccounts", hand, 2)])
    bd, bf = burst["direct"], burst["firewall"]
    bursts = table(["contender", "bursts", "messages each", "throughput, median", "slowest burst", "duration, median",
                    "first tick read after, median", "lost", "reordered", "duplicated"],
                   [[name, str(b["n"]), f"{b['messages']:,}", _rate(b["median_per_s"]), _rate(b["min_per_s"]),
                     ms(b["median_s"] * 1000 if b["median_s"] is not None else None, 1),
                     ms(b["median_first_s"] * 1000 if b["median_first_s"] is not None else None, 2),
                     str(b["lost"]), str(b["reordered"]), str(b["duplicates"])]
                    for name, b in (("direct", bd), ("firewall", bf))])
    counts = process.get("counts") or {}
    reached = process.get("orders_reached_simulator") or {}
    machine_row = (f"`{meta['command']}` on {meta['started']}, git {meta['git']}; {meta['cpu']}, "
                   f"{meta['nproc']} cores, Python {meta['python']}, pydantic {meta['pydantic']}; state dir on "
                   f"{meta.get('state_fs', '?')}; load average {meta['loadavg']} at the start, "
                   f"{meta.get('loadavg_end', '?')} at the end; {fmt(meta.get('duration_s'), ' s', 0)}")
    errors = summ.get("errors") or []
    lines = [
        FIREWALL_START,
        "## Order firewall",
        "",
        f"_Generated by `python -m bench.firewall` (bench/firewall.py) from `{json_path}`; no Docker. "
        "`python -m bench` keeps this section as it is when it regenerates the rest of the report._",
        "",
        "The question (issue \"The order firewall\"): **what does putting the firewall between the bot and the "
        "Gateway cost?** Two contenders in one run: **direct**, a client connected to the Gateway simulator, "
        "and **firewall**, the same client through `python -m src.firewall` (a real subprocess, default "
        "settings, INFO log to a file, its plan in force today's documented example) in front of the same "
        "simulator. The simulator runs in the bench's process; the client is a raw TWS API client on a blocking "
        "socket built on `src/tws/wire.py` (TCP_NODELAY), so its own cost is small and the same for both; "
        "everything on 127.0.0.1. Samples alternate between the contenders (which goes first alternates too), "
        "after unmeasured warm-ups "
        f"({opts['order_warmup']} orders and {opts['handshake_warmup']} handshakes each, a 1,000-message burst "
        "each), so machine noise hits both alike.",
        "",
        "Each order is one the firewall allows: BUY 1 SPY LMT 1.00 for DU123456, which rests (the simulator "
        "fills marketable orders only), then is cancelled before the next. BUY then SELL with immediate fills "
        "would not do: each SELL closes a position opened today, a day trade, and a plan allows at most 3 "
        "(`hard_limits.pdt_trades_remaining`). The burst is the simulator's `stream_ticks`: numbered tickPrice "
        "messages, all built before the first is sent, then written as fast as the connection takes them; "
        "throughput = messages / (the read that brought the first → the last one read), every sequence number "
        "checked. Added = the firewall's quantile − the direct one's.",
        "",
        "What the firewall does on each path, besides relaying (asyncio protocols: a frame is judged and "
        "forwarded in the callback that read it): an order is decoded, judged (the plan in force as last read: "
        "a change notice from the kernel, inotify, has it re-read; the New York date cached until midnight), "
        "journalled (`firewall_decisions.jsonl`, one line "
        "encoded by orjson, one `os.write`) and then forwarded; the book, the counts and the log line (DEBUG "
        "for an allowed order: the journal has it) come after the send, in the same callback. The Gateway's "
        "bytes go to the client as read; then only its orderStatus, errors and nextValidId are read (copied) "
        "for the book; a handshake's nextValidId is passed on once the sessions file "
        "(`firewall_sessions.json`) has been rewritten atomically, without fsync (it describes live "
        "connections), and it is rewritten again when a session closes. The state dir was on "
        f"{meta.get('state_fs', '?')} (`--tmp` puts it elsewhere).",
        "",
        table(["goal (\"The order firewall\")", "measured", "verdict"], goals),
        "",
        _floor(process.get("relay_floor"), order["added_median_ms"]),
        "",
        latency,
        "",
        bursts,
        "",
        "The firewall process (psutil; `python -m src.firewall`, started → its own session synced in "
        f"{fmt(process.get('start_to_synced_s'), ' s', 2)}): RSS {fmt(process.get('rss_mb_at_start'), ' MB', 1)} "
        f"once synced, {fmt(process.get('rss_mb'), ' MB', 1)} after the measurements, peak (VmHWM) "
        f"{fmt(process.get('rss_peak_mb'), ' MB', 1)}, {fmt(process.get('rss_mb_after_idle'), ' MB', 1)} after "
        f"the idle period; CPU {fmt(process.get('cpu_s_until_idle'), ' s', 2)} until then. Idle period: "
        f"{fmt(process.get('idle_s'), ' s', 1)} with the bot's connection open and quiet (the firewall's own "
        f"session heartbeats, its plan poll runs), {fmt(process.get('idle_cpu_s'), ' CPU-s', 4)} ("
        + ("the scheduler's nanoseconds, /proc/PID/task/*/schedstat; psutil's 10 ms ticks said "
           f"{fmt(process.get('idle_cpu_ticks_s'), ' s', 2)}" if process.get("cpu_clock") == "schedstat"
           else "psutil, 10 ms ticks") + f"; {process.get('threads', '?')} threads). It stopped on "
        f"SIGTERM with exit code {process.get('exit_code')}, counting {counts.get('allowed', '?')} orders "
        f"allowed, {counts.get('refused', '?')} refused, {counts.get('connections', '?')} connections; orders "
        f"that reached the simulator, by client id: "
        + (", ".join(f"{k}: {v}" for k, v in sorted(reached.items())) or "none") + ".",
        "",
        f"Machine and command: {machine_row}.",
    ]
    if errors:
        lines += ["", f"Failed measurements: {len(errors)}", "", *[f"* {e}" for e in errors[:20]]]
    lines.append(FIREWALL_END)
    return "\n".join(lines)


def update_report(text: str, section: str) -> str:
    """`text` with its firewall section replaced, or inserted before the reading (or at the end)."""
    return replace_section(text, section, FIREWALL_START, FIREWALL_END)
