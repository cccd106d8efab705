"""The Strategy C emergency plan: content, atomic write, read-back verification."""

import json
import os
from datetime import date, datetime, timedelta, timezone

import pytest

from src.core import atomic_file
from src.gameplan import generator
from src.gameplan.generator import generate_strategy_c
from src.gameplan.loader import GameplanError, evaluate_gameplan, load_emergency_plan, trading_date

# 22:00 in New York on 10 February 2026 is already the 11th in UTC.
NOW = datetime(2026, 2, 11, 3, 0, 0, 123456, tzinfo=timezone.utc)


def test_plan_matches_the_spec(tmp_path):
    path = tmp_path / "emergency_gameplan.json"
    plan = generate_strategy_c(path, now=NOW)

    assert json.loads(path.read_text(encoding="utf-8")) == {
        "date": "2026-02-10",
        "session_id": "emergency_20260210_220000",
        "regime": "crisis",
        "strategy": "C",
        "symbols": [],
        "position_size_multiplier": 0.0,
        "vix_at_analysis": 0.0,
        "vix_source_verified": False,
        "bias": "neutral",
        "expected_behavior": "mean_reverting",
        "key_levels": {},
        "catalysts": ["Emergency deployment — no trading authorized"],
        "earnings_blackout": [],
        "geo_risk": "high",
        "alert_message": "⚠️ EMERGENCY STRATEGY C — No trading. Operator intervention required.",
        "data_quality": {
            "quarantine_active": True,
            "stale_fields": ["all"],
            "last_verified": "2026-02-11T03:00:00.123456Z",
        },
        "hard_limits": {
            "max_daily_loss_pct": 0.0,
            "max_single_position": 0,
            "pdt_trades_remaining": 0,
            "force_close_at_dte": 1,
            "weekly_drawdown_governor_active": True,
            "max_intraday_pivots": 0,
        },
        "scorecard": {
            "yesterday_pnl": 0.0,
            "yesterday_hit_rate": 0.0,
            "regime_accuracy": False,
            "weekly_cumulative_pnl": 0.0,
        },
    }
    assert plan.date == date(2026, 2, 10)
    assert plan.data_quality.last_verified == NOW
    assert plan.data_quality.last_verified.utcoffset() == timedelta(0)


def test_plan_has_no_trading_authority_and_reads_back_valid(tmp_path):
    path = tmp_path / "emergency_gameplan.json"
    plan = generate_strategy_c(path, now=NOW)

    assert plan.trading_authorized is False
    assert (plan.strategy, plan.symbols, plan.position_size_multiplier) == ("C", (), 0.0)
    assert load_emergency_plan(path) == plan


def test_the_orchestrators_loader_never_treats_it_as_a_trading_plan(tmp_path):
    path = tmp_path / "emergency_gameplan.json"
    generate_strategy_c(path, now=NOW)
    verdict = evaluate_gameplan(path, today=date(2026, 2, 10))
    assert (verdict.usable, verdict.kind) == (False, "quarantined")


def test_local_time_zone_of_now_does_not_matter(tmp_path):
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    plan = generate_strategy_c(tmp_path / "plan.json", now=tokyo)
    assert (plan.date, plan.session_id) == (date(2026, 2, 10), "emergency_20260210_220000")
    assert plan.data_quality.last_verified.utcoffset() == timedelta(0)


def test_default_now_is_the_current_trading_date(tmp_path):
    before = trading_date()
    plan = generate_strategy_c(tmp_path / "plan.json")
    assert plan.date in (before, trading_date())


def test_naive_now_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_strategy_c(tmp_path / "plan.json", now=datetime(2026, 2, 10, 22, 0))
    assert list(tmp_path.iterdir()) == []


def test_creates_parent_directories_and_leaves_only_the_target(tmp_path):
    path = tmp_path / "state" / "deep" / "emergency_gameplan.json"
    generate_strategy_c(path, now=NOW)
    assert os.listdir(path.parent) == [path.name]
    assert path.stat().st_mode & 0o777 == 0o644


def test_replaces_an_existing_plan(tmp_path):
    path = tmp_path / "emergency_gameplan.json"
    path.write_text("garbage from an earlier crash")
    generate_strategy_c(path, now=NOW)
    assert load_emergency_plan(path).session_id == "emergency_20260210_220000"
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, failing):
    path = tmp_path / "emergency_gameplan.json"

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_file.os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        generate_strategy_c(path, now=NOW)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_plan_intact(tmp_path, monkeypatch):
    path = tmp_path / "emergency_gameplan.json"
    generate_strategy_c(path, now=NOW)
    previous = path.read_bytes()

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_file.os, "replace", fail)
    with pytest.raises(OSError):
        generate_strategy_c(path, now=NOW + timedelta(hours=1))
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == [path.name]


def test_target_that_is_a_directory_fails_cleanly(tmp_path):
    path = tmp_path / "emergency_gameplan.json"
    path.mkdir()
    with pytest.raises(OSError):
        generate_strategy_c(path, now=NOW)
    assert os.listdir(tmp_path) == [path.name] and path.is_dir()


def test_read_back_that_differs_is_an_error(tmp_path, monkeypatch):
    path = tmp_path / "emergency_gameplan.json"
    other = generate_strategy_c(tmp_path / "other.json", now=NOW - timedelta(days=1))
    monkeypatch.setattr(generator, "load_emergency_plan", lambda p: other)
    with pytest.raises(GameplanError, match="does not read back"):
        generate_strategy_c(path, now=NOW)
