"""2. End-to-end overhead: a contender's wall time minus the login delay, cold (scenario 1's runs) and warm."""

from __future__ import annotations

from typing import Any

from bench.markdown import count, fmt, label, ratio, table
from bench.stats import contenders_in, median, p95, select, values


def section(samples: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    parts = ["## 2. End-to-end overhead", "",
             "Contender wall time (process start → exit, which is when a supervisor learns the result) "
             "minus the simulator's login delay. Cold: no container at the start (the runs of scenario 1). "
             "Warm: the Gateway already running, logged in and healthy, so the overhead is the whole wall "
             "time. \"start → bot ready\" is when the bot really was connected.", ""]
    cold = [s for s in samples if s.get("mode") == "cold" and s.get("variant") == "sim"]
    if cold:
        rows = []
        for d in sorted({s["login_delay"] for s in cold}):
            pm = median(values(select(cold, contender="project", login_delay=d), "overhead"))
            for c in contenders_in(cold):
                v = select(cold, contender=c, login_delay=d)
                if v:
                    m = median(values(v, "overhead"))
                    rows.append([f"{d:g} s", label(c), str(len(v)), fmt(m), fmt(p95(values(v, "overhead"))),
                                 "1.0×" if c == "project" else ratio(m, pm),
                                 fmt(median(values(v, "start_to_bot_ready"))), count(v, "ready_at_claim")])
        parts += ["**Cold**", "", table(["login delay", "contender", "n", "overhead median", "p95", "ratio",
                                         "start → bot ready, median", "bot ready when \"done\""], rows), ""]
    warm = [s for s in samples if s.get("mode") == "warm"]
    if warm:
        pm = median(values(select(warm, contender="project"), "overhead"))
        rows = []
        for c in contenders_in(warm):
            v = select(warm, contender=c)
            m = median(values(v, "overhead"))
            rows.append([label(c), str(len(v)), fmt(m), fmt(p95(values(v, "overhead"))),
                         "1.0×" if c == "project" else ratio(m, pm), fmt(median(values(v, "start_to_bot_ready"))),
                         count(v, "ready_at_claim"), fmt(median(values(v, "cpu_s")), " CPU-s")])
        parts += ["**Warm**", "", table(["contender", "n", "overhead median", "p95", "ratio",
                                         "start → bot ready, median", "bot ready when \"done\"",
                                         "CPU (process + children), median"], rows), ""]
    return parts
