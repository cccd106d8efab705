"""The gameplan for today, for tests, the benchmark and the demo: the documented example
(docs/examples/gameplan.example.json, a usable Strategy A plan), dated.

    python -m testkit.plans FILE     # writes the example dated for today's trading date (the demo's plan)
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from src.gameplan.loader import trading_date

EXAMPLE_PLAN = Path(__file__).resolve().parents[1] / "docs" / "examples" / "gameplan.example.json"
PLAN_DATE = date(2026, 2, 10)  # the example's own date: valid_plan() as written


def valid_plan(day: date = PLAN_DATE) -> dict[str, Any]:
    """A complete Strategy A gameplan as the analyst writes it (the documented example), dated `day`."""
    plan: dict[str, Any] = json.loads(EXAMPLE_PLAN.read_text(encoding="utf-8"))
    plan["date"] = day.isoformat()
    return plan


def strategy_c_plan(day: date = PLAN_DATE) -> dict[str, Any]:
    """The example turned into a deliberate Strategy C: no symbols, no size, no trading authority."""
    return {**valid_plan(day), "strategy": "C", "symbols": [], "position_size_multiplier": 0.0}


def write_plan(path: Path, day: date | None = None, *, indent: int | None = None, **changes: object) -> Path:
    """valid_plan for `day` (default: today's trading date, America/New_York) with `changes` on top,
    written to `path` (its directory made if needed); returns `path`."""
    plan = {**valid_plan(trading_date() if day is None else day), **changes}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=indent), encoding="utf-8")
    return path


def put_in_force(state_dir: Path, plan: dict[str, Any] | None = None, **changes: object) -> Path:
    """Make `plan` (default: today's valid plan with `changes`) the plan in force in `state_dir`, as the
    orchestrator does after validating it (its bytes and their sha256); returns the plan's path."""
    from src.orchestration.machine.handoff import snapshot_plan

    state_dir.mkdir(parents=True, exist_ok=True)
    data = {**(plan if plan is not None else valid_plan(trading_date())), **changes}
    return snapshot_plan(state_dir, json.dumps(data).encode("utf-8"))[0]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m testkit.plans FILE")
    print(write_plan(Path(sys.argv[1]), indent=2))
