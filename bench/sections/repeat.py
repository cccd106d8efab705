"""4. Repeat run: everything already up, the time for a second run to refuse."""

from __future__ import annotations

from typing import Any

from bench.markdown import count, exit_codes, fmt, label, ratio, table
from bench.stats import by_contender, median, p95, select, values


def section(s4: list[dict[str, Any]]) -> list[str]:
    pm = median(values(select(s4, contender="project"), "time_to_refuse"))
    rows = []
    for c, v, m in by_contender(s4, "time_to_refuse"):
        who = {"project": "the orchestrator (bot lock held)", "handoff": "the orchestrator (process scan)",
               "common": "only the duplicate bot itself (its own lock)"}.get(c, "")
        rows.append([label(c), str(len(v)), fmt(m), fmt(p95(values(v, "time_to_refuse"))),
                     "1.0×" if c == "project" else ratio(m, pm), who, exit_codes(v),
                     count(v, "first_bot_still_running")])
    return ["## 4. Repeat run", "",
            "Everything already up (the Gateway and the bot of a first run); time for a second run to "
            "refuse. Common practice has no check: it sleeps, starts a second bot, and only this project's "
            "bot lock (`state/bot.pid`) makes that duplicate exit; a bot without one would run twice.", "",
            table(["contender", "n", "time to refuse, median", "p95", "ratio", "what refused", "exit codes",
                   "first bot untouched"], rows), ""]
