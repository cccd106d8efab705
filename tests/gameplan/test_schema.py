"""The gameplan schema: exact values, strictness, cross-field rules, JSON Schema export.

The plan under test is the documented example (testkit.plans.valid_plan: docs/examples/gameplan.example.json)."""

import json
import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from src.gameplan.schema import KNOWN_VALUES, DataQuality, Gameplan, gameplan_json_schema
from testkit.plans import strategy_c_plan, valid_plan

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "gameplan.schema.json"


def parse(plan: dict) -> Gameplan:
    return Gameplan.model_validate_json(json.dumps(plan))


def first_error(plan: dict) -> dict:
    with pytest.raises(ValidationError) as caught:
        parse(plan)
    return caught.value.errors()[0]


def test_valid_plan_is_parsed_with_exact_values():
    plan = parse(valid_plan())

    assert plan.date == date(2026, 2, 10)
    assert plan.session_id == "example_20260210_0800"
    assert (plan.regime, plan.strategy, plan.bias, plan.expected_behavior, plan.geo_risk) == (
        "bull_trend", "A", "bullish", "trending", "low")
    assert plan.symbols == ("SPY", "QQQ", "BRK.B")
    assert plan.position_size_multiplier == 0.75
    assert plan.vix_at_analysis == 14.2 and plan.vix_source_verified is True
    assert plan.key_levels == {"SPY": {"support": 590.5, "resistance": 602.0}, "QQQ": {}}
    assert plan.catalysts == ("CPI release 08:30 ET",)
    assert plan.earnings_blackout == ("NVDA",)
    assert plan.alert_message == ""
    assert plan.data_quality.quarantine_active is False
    assert plan.data_quality.stale_fields == ()
    assert plan.data_quality.last_verified == datetime(2026, 2, 10, 12, 45, tzinfo=timezone.utc)
    assert plan.hard_limits.model_dump() == valid_plan()["hard_limits"]
    assert plan.scorecard.model_dump() == valid_plan()["scorecard"]
    assert isinstance(plan.scorecard.weekly_cumulative_pnl, float)
    assert plan.trading_authorized is True


def test_strategy_b_is_a_trading_strategy_too():
    plan = valid_plan()
    plan["strategy"] = "B"
    assert parse(plan).trading_authorized is True


def test_model_is_frozen():
    plan = parse(valid_plan())
    with pytest.raises(ValidationError, match="frozen"):
        plan.strategy = "B"
    with pytest.raises(ValidationError, match="frozen"):
        plan.hard_limits.max_single_position = 100


def _set(path: str, value):
    """A mutator that sets a dotted path (``-`` as value deletes it)."""
    def mutate(plan: dict) -> None:
        *parents, leaf = path.split(".")
        target = plan
        for part in parents:
            target = target[part]
        if value == "-":
            del target[leaf]
        else:
            target[leaf] = value
    return mutate


REJECTED = [
    ("unknown top-level field", _set("surprise", 1), ("surprise",), "extra_forbidden"),
    ("unknown nested field", _set("hard_limits.max_leverage", 4), ("hard_limits", "max_leverage"), "extra_forbidden"),
    ("missing field", _set("scorecard.regime_accuracy", "-"), ("scorecard", "regime_accuracy"), "missing"),
    ("string where int expected", _set("hard_limits.max_single_position", "1"),
     ("hard_limits", "max_single_position"), "int_type"),
    ("float where int expected", _set("hard_limits.pdt_trades_remaining", 1.0),
     ("hard_limits", "pdt_trades_remaining"), "int_type"),
    ("true is not a number", _set("vix_at_analysis", True), ("vix_at_analysis",), "float_type"),
    ("1 is not a bool", _set("vix_source_verified", 1), ("vix_source_verified",), "bool_type"),
    ("strategy D", _set("strategy", "D"), ("strategy",), "literal_error"),
    ("empty regime", _set("regime", ""), ("regime",), "string_too_short"),
    ("blank bias", _set("bias", "   "), ("bias",), "blank_text"),
    ("behavior over 64 characters", _set("expected_behavior", "x" * 65), ("expected_behavior",), "string_too_long"),
    ("geo risk with a newline", _set("geo_risk", "low\nINFO forged log line"), ("geo_risk",), "control_character"),
    ("regime with a NUL", _set("regime", "bull\x00"), ("regime",), "control_character"),
    ("regime not a string", _set("regime", 3), ("regime",), "string_type"),
    ("lower-case symbol", _set("symbols", ["SPY", "qqq"]), ("symbols", 1), "string_pattern_mismatch"),
    ("symbol with newline", _set("symbols", ["SPY\n"]), ("symbols", 0), "string_pattern_mismatch"),
    ("duplicate symbols", _set("symbols", ["SPY", "QQQ", "SPY"]), ("symbols",), "duplicate_symbol"),
    ("duplicate blackout", _set("earnings_blackout", ["NVDA", "NVDA"]), ("earnings_blackout",), "duplicate_symbol"),
    ("multiplier too big", _set("position_size_multiplier", 2.5), ("position_size_multiplier",), "less_than_equal"),
    ("negative multiplier", _set("position_size_multiplier", -0.1), ("position_size_multiplier",),
     "greater_than_equal"),
    ("negative VIX", _set("vix_at_analysis", -1), ("vix_at_analysis",), "greater_than_equal"),
    ("loss limit over 100", _set("hard_limits.max_daily_loss_pct", 250), ("hard_limits", "max_daily_loss_pct"),
     "less_than_equal"),
    ("more than 3 PDT trades", _set("hard_limits.pdt_trades_remaining", 4), ("hard_limits", "pdt_trades_remaining"),
     "less_than_equal"),
    ("negative position limit", _set("hard_limits.max_single_position", -1), ("hard_limits", "max_single_position"),
     "greater_than_equal"),
    ("hit rate above 1", _set("scorecard.yesterday_hit_rate", 1.5), ("scorecard", "yesterday_hit_rate"),
     "less_than_equal"),
    ("naive last_verified", _set("data_quality.last_verified", "2026-02-10T12:45:00"),
     ("data_quality", "last_verified"), "timezone_aware"),
    ("epoch last_verified", _set("data_quality.last_verified", 1770727500), ("data_quality", "last_verified"),
     "datetime_type"),
    ("date without zero padding", _set("date", "2026-2-10"), ("date",), "date_parsing"),
    ("date with a time", _set("date", "2026-02-10T00:00:00"), ("date",), "date_parsing"),
    ("empty session id", _set("session_id", ""), ("session_id",), "string_pattern_mismatch"),
    ("level name not snake case", _set("key_levels", {"SPY": {"Support": 1.0}}), ("key_levels", "SPY", "Support",
     "[key]"), "string_pattern_mismatch"),
    ("level not positive", _set("key_levels", {"SPY": {"support": 0}}), ("key_levels", "SPY", "support"),
     "greater_than"),
    ("level as string", _set("key_levels", {"SPY": {"support": "590"}}), ("key_levels", "SPY", "support"),
     "float_type"),
    ("key levels as list", _set("key_levels", []), ("key_levels",), "dict_type"),
    ("empty catalyst", _set("catalysts", [""]), ("catalysts", 0), "string_too_short"),
    ("alert over Discord's limit", _set("alert_message", "x" * 2001), ("alert_message",), "string_too_long"),
    ("stale_fields not a list", _set("data_quality.stale_fields", "all"), ("data_quality", "stale_fields"),
     "tuple_type"),
    ("strategy A without symbols", _set("symbols", []), ("symbols",), "strategy_mismatch"),
    ("strategy A with multiplier 0", _set("position_size_multiplier", 0), ("position_size_multiplier",),
     "strategy_mismatch"),
    # lists have a maximum length (linear-time validation of any file the loader reads)
    ("101 symbols", _set("symbols", [f"S{i}" for i in range(101)]), ("symbols",), "too_long"),
    ("1001 earnings blackout symbols", _set("earnings_blackout", [f"E{i}" for i in range(1001)]),
     ("earnings_blackout",), "too_long"),
    ("101 catalysts", _set("catalysts", ["news"] * 101), ("catalysts",), "too_long"),
    ("101 stale fields", _set("data_quality", {"quarantine_active": True, "stale_fields": ["vix"] * 101,
                                               "last_verified": "2026-02-10T12:45:00Z"}),
     ("data_quality", "stale_fields"), "too_long"),
    ("key levels for 201 symbols", _set("key_levels", {f"K{i}": {} for i in range(201)}), ("key_levels",),
     "too_long"),
    ("33 levels for one symbol", _set("key_levels", {"SPY": {f"l{i}": 1.0 for i in range(33)}}),
     ("key_levels", "SPY"), "too_long"),
    # contradictions where authority is decided
    ("symbol also in earnings blackout", _set("earnings_blackout", ["NVDA", "QQQ"]), ("earnings_blackout",),
     "symbol_in_blackout"),
    ("size on an unverified VIX", _set("vix_source_verified", False), ("vix_source_verified",), "unverified_vix"),
    ("stale fields without quarantine", _set("data_quality.stale_fields", ["vix"]), ("data_quality", "stale_fields"),
     "stale_without_quarantine"),
]


@pytest.mark.parametrize(("mutate", "loc", "error_type"), [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED])
def test_rejected(mutate, loc, error_type):
    plan = valid_plan()
    mutate(plan)
    error = first_error(plan)
    assert (error["loc"], error["type"]) == (loc, error_type)


def test_strategy_c_plan_is_valid_and_has_no_authority():
    plan = parse(strategy_c_plan())
    assert plan.strategy == "C"
    assert plan.trading_authorized is False


@pytest.mark.parametrize(("field", "value"), [("symbols", ["SPY"]), ("position_size_multiplier", 0.5)])
def test_strategy_c_never_carries_trading_authority(field, value):
    plan = strategy_c_plan()
    plan[field] = value
    error = first_error(plan)
    assert (error["loc"], error["type"]) == ((field,), "strategy_mismatch")
    assert "for strategy C" in error["msg"]


def test_quarantine_removes_trading_authority():
    plan = valid_plan()
    plan["data_quality"]["quarantine_active"] = True
    assert parse(plan).trading_authorized is False


DESCRIPTIVE = ["regime", "bias", "expected_behavior", "geo_risk"]


@pytest.mark.parametrize("value", ["normal", "Bullish", "risk-off: Fed week", "élevé", "x" * 64])
@pytest.mark.parametrize("field", DESCRIPTIVE)
def test_descriptive_fields_take_any_short_text_and_keep_it(field, value):
    """The spec only shows examples: an analyst's "regime": "normal" is a valid plan, not Strategy C."""
    plan = valid_plan()
    plan[field] = value
    parsed = parse(plan)
    assert getattr(parsed, field) == value
    assert parsed.trading_authorized is True


def test_strategy_stays_a_closed_vocabulary_and_descriptive_fields_document_their_known_values():
    properties = json.loads(gameplan_json_schema())["properties"]
    assert properties["strategy"]["enum"] == ["A", "B", "C"]
    for field in DESCRIPTIVE:
        described = properties[field]
        assert "enum" not in described
        assert (described["type"], described["minLength"], described["maxLength"]) == ("string", 1, 64)
        assert described["examples"] == list(KNOWN_VALUES[field])
        assert f"Known values: {', '.join(KNOWN_VALUES[field])}." in described["description"]
        assert "logged as a warning" in described["description"]


@pytest.mark.parametrize(("value", "matches"), [
    ("normal", True), ("risk-off: Fed week", True), ("élevé", True), (" crisis ", True),
    ("", False), ("   ", False), ("low\nhigh", False), ("tab\there", False), ("del\x7f", False), ("c1\x85", False),
])
def test_the_json_schema_pattern_of_descriptive_text_agrees_with_the_model(value, matches):
    pattern = json.loads(gameplan_json_schema())["properties"]["regime"]["pattern"]
    plan = valid_plan()
    plan["regime"] = value
    try:
        parse(plan)
        accepted = True
    except ValidationError:
        accepted = False
    assert (re.fullmatch(pattern, value) is not None, accepted) == (matches, matches)


def test_json_schema_documents_every_list_maximum():
    schema = json.loads(gameplan_json_schema())
    properties = schema["properties"]
    assert properties["symbols"]["maxItems"] == 100
    assert properties["earnings_blackout"]["maxItems"] == 1000
    assert properties["catalysts"]["maxItems"] == 100
    assert properties["key_levels"]["maxProperties"] == 200
    assert next(iter(properties["key_levels"]["patternProperties"].values()))["maxProperties"] == 32
    assert schema["$defs"]["DataQuality"]["properties"]["stale_fields"]["maxItems"] == 100
    for rule in ("earnings_blackout", "vix_source_verified", "quarantine_active"):
        assert rule in schema["description"]  # the contradictions JSON Schema cannot express


def test_lists_at_their_maximum_length_are_valid():
    plan = valid_plan()
    plan.update(symbols=[f"S{i}" for i in range(100)], earnings_blackout=[f"E{i}" for i in range(1000)],
                catalysts=["news"] * 100, key_levels={f"K{i}": {f"l{j}": 1.0 for j in range(32)} for i in range(200)})
    plan["data_quality"].update(quarantine_active=True, stale_fields=["vix"] * 100)
    parsed = parse(plan)
    assert (len(parsed.symbols), len(parsed.earnings_blackout), len(parsed.key_levels)) == (100, 1000, 200)


CONTRADICTIONS = [
    ("symbol also in earnings blackout", _set("earnings_blackout", ["QQQ"]), "earnings_blackout",
     "QQQ is also in symbols: a symbol under earnings blackout is not traded; remove it from symbols or from "
     "earnings_blackout"),
    ("several symbols in earnings blackout", _set("earnings_blackout", ["BRK.B", "NVDA", "SPY", "QQQ"]),
     "earnings_blackout", "SPY, QQQ, BRK.B are also in symbols: a symbol under earnings blackout is not traded; "
     "remove them from symbols or from earnings_blackout"),
    ("size on an unverified VIX", _set("vix_source_verified", False), "vix_source_verified",
     "false, but position_size_multiplier is 0.75: positions are not sized on an unverified VIX reading; verify "
     "the source and set vix_source_verified to true, or use strategy C (multiplier 0)"),
    ("stale fields without quarantine", _set("data_quality.stale_fields", ["vix", "breadth"]),
     "data_quality.stale_fields", "lists stale inputs but data_quality.quarantine_active is false: set "
     "quarantine_active to true, or empty stale_fields once the data is fresh"),
]


@pytest.mark.parametrize(("mutate", "where", "message"), [c[1:] for c in CONTRADICTIONS],
                         ids=[c[0] for c in CONTRADICTIONS])
@pytest.mark.parametrize("strategy", ["A", "B"])
def test_a_trading_plan_that_contradicts_itself_is_invalid_and_names_the_fields(strategy, mutate, where, message):
    plan = valid_plan()
    plan["strategy"] = strategy
    mutate(plan)
    error = first_error(plan)
    assert (".".join(map(str, error["loc"])), error["msg"]) == (where, message)


def test_the_consistent_forms_of_each_contradiction_are_valid():
    """Quarantine with stale fields, strategy C on an unverified VIX, a blackout of symbols not traded."""
    quarantined = valid_plan()
    quarantined["data_quality"].update(quarantine_active=True, stale_fields=["vix"])
    unverified_c = strategy_c_plan()
    unverified_c["vix_source_verified"] = False
    assert parse(quarantined).trading_authorized is False
    assert parse(unverified_c).trading_authorized is False
    assert parse(valid_plan()).earnings_blackout == ("NVDA",)  # NVDA is not in symbols


@pytest.mark.parametrize("contradiction", [
    {"vix_source_verified": False},
    {"earnings_blackout": ("SPY",)},
    {"data_quality": DataQuality.model_construct(quarantine_active=False, stale_fields=("vix",),
                                                 last_verified=datetime(2026, 2, 10, tzinfo=timezone.utc))},
])
def test_a_contradictory_plan_built_without_validation_still_has_no_authority(contradiction):
    """model_construct skips validation: trading_authorized checks the contradictions itself."""
    plan = parse(valid_plan())
    assert plan.trading_authorized is True
    assert plan.model_copy(update=contradiction).trading_authorized is False


def test_duplicate_check_is_linear_not_quadratic():
    """The old check ran tickers.count(t) for every ticker: N² comparisons, 270 s for a 1 MiB plan.

    Counted, not timed: tickers that count their equality comparisons go through the validator.
    """
    comparisons = 0

    class Counted(str):
        __hash__ = str.__hash__

        def __eq__(self, other: object) -> bool:
            nonlocal comparisons
            comparisons += 1
            return str.__eq__(self, other)

    tickers = tuple(Counted(f"T{i}") for i in range(2000))
    assert Gameplan._unique(tickers) == tickers
    assert comparisons <= 2 * len(tickers)
    with pytest.raises(PydanticCustomError, match="duplicate symbols: T1, T2$"):
        Gameplan._unique((*tickers, Counted("T2"), Counted("T1")))


def test_many_duplicates_are_listed_briefly():
    plan = valid_plan()
    plan["earnings_blackout"] = [f"E{i}" for i in range(400)] * 2
    assert first_error(plan)["msg"] == "duplicate symbols: E0, E1, E10, E100, E101 and 395 more"


def test_json_schema_is_closed_and_requires_every_field():
    schema = json.loads(gameplan_json_schema())
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(valid_plan())
    assert all(d["additionalProperties"] is False for d in schema["$defs"].values())


def test_committed_json_schema_is_up_to_date():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == gameplan_json_schema(), (
        "regenerate it: .venv/bin/python -m src.gameplan.schema > docs/gameplan.schema.json")
