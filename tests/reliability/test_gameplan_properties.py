"""Fail closed, proven by hypothesis: from valid plans, mutate any field, type, nesting or encoding.

For every file the loader either accepts a plan whose trading-relevant values are exactly what the
file says, or rejects it with its own error (GameplanError, and a verdict that is not the
"unexpected ..." safety net); nothing else escapes. No accepted plan that is quarantined, Strategy C,
stale or self-contradictory (a traded symbol under earnings blackout, a size on an unverified VIX,
stale fields without quarantine) gives the bot trading authority, and the bot's own loader never
grants authority to a file the orchestrator would not trade on.

Profiles (tests/conftest.py): HYPOTHESIS_PROFILE=ci (default, ~150 examples per
property) or long (10 000):
    HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest --timeout 0 tests/reliability/test_gameplan_properties.py
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from src.gameplan.loader import GameplanError, evaluate_gameplan, load_emergency_plan, load_gameplan, trading_date
from src.gameplan.schema import Gameplan
from src.main import PrerequisiteError, load_plan
from testkit.plans import valid_plan

VALID = ["SPY", "QQQ", "BRK.B", "AAPL", "X", "ABCDEFGHIJ"]
BLACKED_OUT = valid_plan()["earnings_blackout"]  # a symbol also there is a contradiction
INVALID = ["spy", "", "ABCDEFGHIJK", "A.", "BRK.", "SPY "]
OFTEN, SOMETIMES, RARELY = (st.sampled_from([True] * 3 + [False]), st.sampled_from([False] * 3 + [True]),
                            st.sampled_from([False] * 9 + [True]))  # integers(0, n) == 0 would favour 0
SIZES = st.floats(0, 2, exclude_min=True) | st.sampled_from([2, 1, 0.5, 1e-300])
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
           | st.text(max_size=12) | st.sampled_from(["A", "B", "C", "", "0", "1e400", "NaN", "2026-02-10"]))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
ENCODINGS = ["utf-8"] * 12 + ["utf-8-sig", "utf-16", "latin-1"]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every dict key and list index in `value`, as paths from the top."""
    found = [prefix] if prefix else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found += paths(child, (*prefix, key))
    return found


def parent(plan: dict[str, Any], path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        plan = plan[key]
    return plan


@st.composite
def plan_files(draw: st.DrawFn) -> tuple[bytes, date]:
    """The bytes of a gameplan file: a valid plan with its trading values varied, then often mutated.

    Weighted so that about half the files are accepted: the properties about accepted plans
    need accepted plans to check.
    """
    today = trading_date()
    plan = valid_plan(today)
    plan["strategy"] = strategy = draw(st.sampled_from(["A", "B", "C"]))
    if draw(OFTEN):  # symbols and size consistent with the strategy, as an analyst writes them
        tickers = st.lists(st.sampled_from(VALID), min_size=1, max_size=4, unique=True)
        plan["symbols"] = [] if strategy == "C" else draw(tickers)
        plan["position_size_multiplier"] = 0 if strategy == "C" else draw(SIZES)
    else:
        plan["symbols"] = draw(st.lists(st.sampled_from(VALID + INVALID + BLACKED_OUT), max_size=3))
        plan["position_size_multiplier"] = draw(SIZES | st.sampled_from([0, -0.0, -1, 2.0000001]) | st.floats())
    plan["date"] = str(today + timedelta(days=draw(st.sampled_from([0] * 6 + [-1, 1, -365]))))
    plan["data_quality"]["quarantine_active"] = draw(SOMETIMES)
    if draw(SOMETIMES):  # the other inputs of authority, in either state
        plan["vix_source_verified"] = draw(OFTEN)
        plan["data_quality"]["stale_fields"] = draw(st.sampled_from([[], [], ["vix"], ["all"]]))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        where = draw(st.sampled_from(paths(plan)))
        container, key = parent(plan, where), where[-1]
        operation = draw(st.sampled_from(["set", "delete", "add", "nest", "as_text"]))
        if operation == "set":
            container[key] = draw(JSON_VALUES)
        elif operation == "delete":
            del container[key]
        elif operation == "add" and isinstance(container, dict):
            container[draw(st.text(max_size=10))] = draw(JSON_VALUES)
        elif operation == "nest":
            for _ in range(draw(st.integers(1, 50))):
                container[key] = [container[key]] if draw(st.booleans()) else {"x": container[key]}
        elif operation == "as_text":
            container[key] = json.dumps(container[key])
    text = json.dumps(plan, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 2])))
    if draw(RARELY):  # a duplicate key, as a hand edit leaves it
        text = text.replace("{", '{"strategy": "A", ', 1)
    data = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    if draw(RARELY):  # a torn or corrupted file
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=4)) + data[cut + draw(st.integers(0, 3)):]
    return data, today


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values: true is not 1, 1 equals 1.0, lists and tuples alike."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def trading_values(plan: dict[str, Any]) -> dict[str, Any]:
    """What decides whether and how the bot trades."""
    return {"date": plan["date"], "strategy": plan["strategy"], "symbols": plan["symbols"],
            "position_size_multiplier": plan["position_size_multiplier"], "key_levels": plan["key_levels"],
            "earnings_blackout": plan["earnings_blackout"], "hard_limits": plan["hard_limits"],
            "vix_source_verified": plan["vix_source_verified"],
            "quarantine_active": plan["data_quality"]["quarantine_active"],
            "stale_fields": plan["data_quality"]["stale_fields"]}


def assert_no_authority_unless_tradeable(plan: Gameplan, today: date) -> None:
    if plan.trading_authorized:
        assert plan.strategy in ("A", "B") and plan.position_size_multiplier > 0 and plan.symbols
        assert not plan.data_quality.quarantine_active and plan.date == today
        assert plan.vix_source_verified and not plan.data_quality.stale_fields
        assert not set(plan.symbols) & set(plan.earnings_blackout)


@pytest.fixture(scope="module")
def plan_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties") / "gameplan.json"


@given(plan_files())
def test_the_loader_accepts_exactly_what_the_file_says_or_rejects_with_its_own_error(plan_path, case):
    data, today = case
    plan_path.write_bytes(data)
    verdict = evaluate_gameplan(plan_path, today=today)
    event(f"verdict {verdict.kind}" + (f", authority {verdict.plan.trading_authorized}" if verdict.plan else ""))
    assert not verdict.reason.startswith("unexpected"), verdict.reason  # the safety net was never needed
    try:
        plan = load_gameplan(plan_path, today=today)
    except GameplanError as error:
        assert (verdict.usable, verdict.kind, verdict.reason) == (False, error.kind, error.reason)
        return
    assert verdict.usable and verdict.plan == plan
    written = json.loads(data.decode("utf-8"))  # accepted: strict UTF-8 JSON, so the stdlib reads it too
    assert same(trading_values(plan.model_dump(mode="json")), trading_values(written))
    assert plan.date == today and not plan.data_quality.quarantine_active  # stale and quarantined never pass
    assert_no_authority_unless_tradeable(plan, today)
    if plan.strategy == "C":
        assert not plan.trading_authorized


@given(plan_files())
def test_the_bot_never_gets_authority_from_a_file_the_orchestrator_would_not_trade_on(plan_path, case):
    data, today = case
    assume(today == trading_date())  # the bot reads the real clock: skip a case made across midnight
    plan_path.write_bytes(data)
    try:
        bot_plan, _ = load_plan(plan_path)
    except PrerequisiteError:
        return
    assert_no_authority_unless_tradeable(bot_plan, today)
    if bot_plan.trading_authorized:
        verdict = evaluate_gameplan(plan_path, today=today)
        assert verdict.usable and verdict.plan == bot_plan


@given(plan_files())
def test_an_emergency_plan_is_never_a_trading_plan(plan_path, case):
    data, _ = case
    plan_path.write_bytes(data)
    try:
        plan = load_emergency_plan(plan_path)
    except GameplanError:
        return
    assert plan.strategy == "C" and not plan.trading_authorized
