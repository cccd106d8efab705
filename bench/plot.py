"""The detection-latency plot (PNG): latency against login delay, one line per contender.

Needs matplotlib (a dev dependency); only `python -m bench --plot` imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.stats import before_login, median, p95, select, values

STYLE = {
    ("project", "sim"): ("this project", "tab:green", "o", "-"),
    ("handoff", "sim"): ("handoff design", "tab:orange", "s", "-"),
    ("common", "sim"): ("common practice (compose --wait + sleep)", "tab:red", "^", "-"),
    ("project", "no-healthcheck"): ("this project, no container healthcheck", "tab:green", "o", "--"),
    ("handoff", "no-healthcheck"): ("handoff design, no container healthcheck", "tab:orange", "s", "--"),
    ("common", "no-healthcheck"): ("common practice, no container healthcheck", "tab:red", "^", "--"),
    ("project", "production-like"): ("this project, production healthcheck (5 s)", "tab:green", "o", "-."),
    ("handoff", "production-like"): ("handoff design, production healthcheck (5 s)", "tab:orange", "s", "-."),
    ("common", "production-like"): ("common practice, production healthcheck (5 s)", "tab:red", "^", "-."),
}
FLOOR = 0.005  # s: the log axis' floor, where negative latencies (decided before login) are drawn


def plot_detection(s1: list[dict[str, Any]], path: Path, goal: float = 0.5) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=120)
    jitter = {"project": -0.03, "handoff": 0.0, "common": 0.03}
    for (contender, variant), (name, colour, marker, line) in STYLE.items():
        cells = select(s1, contender=contender, variant=variant)
        delays = sorted({s["login_delay"] for s in cells})
        if not delays:
            continue
        xs, meds, lo, hi = [], [], [], []
        for d in delays:
            cell = select(cells, login_delay=d)
            v = values(cell, "detection_latency")
            early = [s for s in cell if before_login(s)]
            v += [-1.0 for s in early if s.get("detection_latency") is None]  # before login, exact value unknown
            if not v:
                continue
            x = d * (1 + jitter.get(contender, 0) + {"sim": 0, "no-healthcheck": 0.015}.get(variant, -0.015))
            m, top = max(median(v), FLOOR), max(p95(v), FLOOR)
            xs.append(x)
            meds.append(m)
            lo.append(0)
            hi.append(top - m)
            ax.scatter([x] * len(v), [max(e, FLOOR) for e in v], color=colour, alpha=0.25, s=12, marker=marker,
                       linewidths=0)
            if early:
                ax.annotate(f"{name}:\n{len(early)}/{len(cell)} decided BEFORE login (drawn at the floor)",
                            (x, FLOOR), textcoords="offset points", ha="right",
                            xytext=(-8, 4 + 18 * list(jitter).index(contender)), fontsize=7, color=colour)
        ax.errorbar(xs, meds, yerr=[lo, hi], color=colour, marker=marker, linestyle=line, capsize=3,
                    label=name, markersize=6)
    ax.axhline(goal, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted({s["login_delay"] for s in s1 if "login_delay" in s})
    ax.text(min(ticks) * 0.85, goal * 1.08, f"goal: p95 ≤ {goal:g} s", color="grey", fontsize=8)
    ax.set_xlim(min(ticks) * 0.75, max(ticks) * 1.3)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("simulator login delay (s)")
    ax.set_ylabel("detection latency after login (s, log scale)")
    ax.set_title("Gateway logged in → design decides it is ready")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
