"""Gameplan files for orchestrator and bot tests, dated for today's trading date."""

from __future__ import annotations

import json
from pathlib import Path

from src.gameplan.loader import trading_date
from tests.gameplan.test_schema import valid_plan


def write_plan(path: Path, **changes: object) -> Path:
    """A usable Strategy A plan for today (New York), with `changes` applied on top."""
    plan = valid_plan(trading_date())
    plan.update(changes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan))
    return path
