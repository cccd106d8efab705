"""3. Timeout accuracy: a Gateway that never logs in, each design's waits against its configured deadline."""

from __future__ import annotations

from typing import Any

from bench.markdown import exit_codes, fmt, label, table
from bench.stats import contenders_in, median, select, values


def section(s3: list[dict[str, Any]]) -> list[str]:
    T = next((s.get("deadline") for s in s3 if s.get("deadline")), None)
    rows = []
    for c in contenders_in(s3):
        v = select(s3, contender=c)
        errs = [e for s in v for e in s.get("wait_errors", [])]
        waits = [w for s in v for w in s.get("waits", [])]
        configured = fmt(T, " s", 0) + (" once" if c == "common" else " + restart + " + fmt(T, " s", 0))
        rows.append([label(c), str(len(v)), configured,
                     fmt(median(waits)), fmt(median(errs), " s", 2) if errs else "–",
                     fmt(max((abs(e) for e in errs), default=None)), fmt(median(values(v, "wall"))),
                     fmt(median(values(v, "total_error"))), exit_codes(v)])
    return ["## 3. Timeout accuracy", "",
            f"A Gateway that never logs in (`SIM_LOGIN_DELAY=3600`, connections accepted then closed, like "
            f"socat in front of a Gateway that is not up), configured deadline T = {T:g} s: this project "
            f"(`GATEWAY_HEALTH_TIMEOUT={T:g}`) and the handoff design (`timeout={T:g}`, interval 5 s) wait T, "
            "restart the container once, wait T again, then exit 1; common practice has one deadline, "
            f"Compose's `--wait-timeout {T:g}`, and no restart. \"wait\" = one waiting period as the design "
            "itself timed it; error = wait − T. The total includes start-up, `compose up` and the restart.",
            "",
            table(["contender", "n", "configured", "each wait, median", "error, median", "largest absolute error",
                   "total to exit, median", "total − configured, median", "exit codes"], rows), ""]
