"""8. The supervisor: a killed Gateway container to the operator's alert, an outage in a reset window to the
bot connected, and an idle supervisor's cost, each beside what an operator had before."""

from __future__ import annotations

from typing import Any

from bench.figures import GOALS, SUPERVISOR_BASELINE
from bench.markdown import fmt, table
from bench.stats import cell_stat, contenders_in, median, select, values


def section(s8: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    o = meta.get("supervisor", {})
    every = o.get("cron_every", 60)
    parts = ["## 8. The supervisor", "",
             "`python -m src.orchestration.startup --supervise` after the handoff (bench/supervisor.py): the real "
             "CLI, Docker and the simulator container, each run a Compose project of its own, a local webhook "
             "standing in for Discord (`testkit.webhook`), IBKR's reset windows off unless a part sets one.", ""]
    kills = select(s8, part="kill")
    outages = select(s8, part="outage")
    base = select(outages, contender=SUPERVISOR_BASELINE)
    idle = next(iter(select(s8, part="idle")), None)
    inspect_wall = (idle or {}).get("inspect_wall_s")
    if kills:
        alert, ready = cell_stat(kills, "kill_to_alert"), cell_stat(kills, "kill_to_ready")
        death = cell_stat(kills, "death_to_alert")
        late = [s for s in kills if s.get("kill_to_alert") is not None and s["kill_to_alert"] > 2.0]
        first_up = sum(1 for s in kills if s.get("first_seen_dead") is False)
        never = (f"none in {len(base)} × {o.get('no_watch_wait', 20):g} s after the kill "
                 f"({sum(s.get('no_watch_alerts', 0) for s in base)} alerts; bot back: "
                 f"{sum(1 for s in base if s.get('no_watch_bot_back'))}/{len(base)}); by design, never"
                 if base and any("no_watch_alerts" in s for s in base) else "never (by design; not run)")
        met = alert["p95"] is not None and alert["p95"] <= GOALS["alert_p95"]
        rows = [["`docker kill` called → first alert at the webhook", str(alert["n"]), fmt(alert["median"]),
                 fmt(alert["p95"]), fmt(alert["max"]), "≤ 5 s: " + ("**met**" if met else "**not met**")],
                ["container's death (Docker `FinishedAt`) → first alert", str(death["n"]), fmt(death["median"]),
                 fmt(death["p95"]), fmt(death["max"]), ""],
                ["`docker kill` called → bot trading-ready again", str(ready["n"]), fmt(ready["median"]),
                 fmt(ready["p95"]), fmt(ready["max"]), ""]]
        parts += [f"**(a) A dead Gateway container → the operator's alert.** {len(kills)} `docker kill`s of one "
                  "supervised stack's Gateway (outside any reset window), each once the previous one was over (the "
                  "bot trading-ready again, the supervisor's all-clear sent, 3 s more). Alert = the first webhook "
                  "request after the kill (the bench's monotonic clock on both ends); trading-ready = the bot's "
                  "readiness record `connection: connected` with `connection_since` after the kill.", "",
                  table(["measure", "n", "median", "p95", "max", "goal"], rows), "",
                  f"The supervisor's first sight of the outage was the container still up (the bot's record said "
                  f"`reconnecting` before Docker's `die` event reached it) in {first_up} of {len(kills)} kills; "
                  f"alerts later than 2 s: {len(late)} ({', '.join(fmt(s['kill_to_alert']) for s in late) or 'none'})."
                  f" Each kill met with one restart: {sum(1 for s in kills if s.get('restarts') == 1)}/{len(kills)}; "
                  f"all-clear sent: {sum(1 for s in kills if s.get('all_clear'))}/{len(kills)}.", "",
                  "Baselines, what an operator had before:", "",
                  table(["design", "kill → alert", "how it is known"], [
                      ["plain start-up (no `--supervise`): the bot reconnects for ever, nothing watches", never,
                       "measured: the plain start-up runs of (b) below, each container killed afterwards"],
                      [f"cron-style poller: `docker inspect` every {every:g} s, alert when not running",
                       f"median {fmt(every / 2 + (inspect_wall or 0))}, p95 {fmt(0.95 * every + (inspect_wall or 0))}",
                       f"computed: the next poll comes uniformly within {every:g} s, plus one `docker inspect` "
                       f"({fmt(inspect_wall, ' s', 3)}, measured)"]]), ""]
    if outages:
        rows = []
        for c in contenders_in(outages):
            v = select(outages, contender=c)
            cell = cell_stat(v, "latency")
            sched = cell_stat(v, "latency_from_schedule")
            goal = "" if c == SUPERVISOR_BASELINE else ("≤ 2 s: **met**" if cell["p95"] is not None and cell["p95"]
                                                        <= GOALS["supervised_reconnect_p95"] else "≤ 2 s: **not met**")
            rows.append([("plain start-up, no supervisor (baseline)" if c == SUPERVISOR_BASELINE
                          else "this project, under `--supervise`"), str(cell["n"]), fmt(cell["median"]),
                         fmt(cell["p95"]), fmt(cell["max"]), goal, fmt(sched["median"]),
                         fmt(median(values(v, "open_vs_schedule")), " s", 3),
                         f"{sum(1 for s in v if s.get('in_reset_window'))}/{len(v)}",
                         f"{sum(1 for s in v if s.get('restarted'))}/{len(v)}",
                         str(sum(s.get("alerts_during", 0) for s in v)),
                         f"{sum(1 for s in v if s.get('supervising_before_outage'))}/{len(v)}"])
        parts += [f"**(b) API back → bot trading-ready, through the supervisor.** A fresh stack per run; the "
                  f"simulator's timed outage (kind `closed`, {o.get('outage_for', 5):g} s, "
                  f"{o.get('outage_after', 12):g} s after its login) inside a reset window set around now "
                  "(IBKR_RESET_WINDOWS; GATEWAY_DOWN_ALERT_AFTER 1 s), so the supervisor records it and leaves it "
                  "alone. \"API back\" = the simulator's `API: open again` line as Docker timed it "
                  "(`docker logs --timestamps`); connected = the bot's readiness record `connection: connected`, "
                  "its `connection_since`. Runs of the two designs interleaved.", "",
                  table(["design", "n", "API back → connected, median", "p95", "max", "goal",
                         "from the schedule's end, median", "log line − schedule, median",
                         "reset window recorded", "restarted", "alerts during", "supervisor up before the outage"],
                        rows), ""]
    if idle and not idle.get("error"):
        mins = idle["window_s"] / 60
        rows = [["CPU seconds per minute", fmt(idle["cpu_per_min"], "", 3), "≤ 0.1: " + (
                    "**met**" if idle["cpu_per_min"] <= GOALS["idle_cpu_per_min"] else "**not met**"),
                 fmt(idle.get("bot_cpu_per_min"), "", 3), fmt(idle.get("cron_cpu_per_min"), "", 3)],
                ["… of which the orchestrator process itself", fmt(idle["cpu_own_per_min"], "", 3), "", "", ""],
                ["RSS, max / end (its own)", f"{fmt(idle['rss_own_max_mb'], ' MB', 1)} / "
                 f"{fmt(idle['rss_own_end_mb'], ' MB', 1)}", "≤ 80 MB: " + (
                    "**met**" if idle["rss_own_max_mb"] <= GOALS["idle_rss_mb"] else "**not met**"),
                 f"{fmt(idle.get('bot_rss_max_mb'), ' MB', 1)} / {fmt(idle.get('bot_rss_end_mb'), ' MB', 1)}",
                 "0 between polls"],
                ["RSS with its live children (`docker events`), max / end", f"{fmt(idle['rss_tree_max_mb'], ' MB', 1)}"
                 f" / {fmt(idle['rss_tree_end_mb'], ' MB', 1)}", "", "", ""]]
        parts += [f"**(c) An idle supervisor's cost.** One supervised, healthy stack left alone for {mins:.1f} min "
                  f"({idle['n_samples']} samples, every {o.get('sample_every', 3):g} s; it ran beside (a) and (b), "
                  "each on its own stack). CPU = the orchestrator's own, its reaped children's (every docker CLI "
                  "call it waited for) and its live children's (the `docker events` stream), the bot and its "
                  "descendants excluded; the bot's own figures beside for information. Baseline: a cron-style "
                  f"poller's one `docker inspect` every {every:g} s (its CPU measured here with RUSAGE_CHILDREN, "
                  "mean of 10 calls).", "",
                  table(["figure", "supervisor", "goal", "the bot (information)", f"cron poller ({every:g} s)"], rows),
                  "", f"During the window: outages seen {idle.get('outages')}, bot still connected at the end: "
                  f"{idle.get('still_connected')}, live children seen: {idle.get('live_children_seen')}.", ""]
    errors = [s["error"] for s in s8 if s.get("error")]
    if errors:
        parts += [f"Failed runs: {len(errors)}", "", *[f"* {e}" for e in errors], ""]
    return parts
