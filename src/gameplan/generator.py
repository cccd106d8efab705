"""The Strategy C emergency gameplan: no trading, alert only.

Deployed when the daily gameplan is missing or unusable. The file is written
atomically (a crash leaves either the old file or the new one, never half of
one), then read back and verified before it is handed to the bot.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from src.core.atomic_file import write_atomic
from src.gameplan.loader import MARKET_TZ, GameplanError, load_emergency_plan, trading_date
from src.gameplan.schema import DataQuality, Gameplan, HardLimits, Scorecard


def generate_strategy_c(output_path: Path, *, now: datetime | None = None) -> Gameplan:
    """Write the emergency Strategy C plan to ``output_path`` and return it, verified.

    ``now`` (timezone-aware, default the current time) fixes the plan's date,
    session id and ``last_verified``. Raises ``OSError`` when the file cannot be
    written and ``GameplanError`` when what was written does not read back intact.
    """
    now = datetime.now(timezone.utc) if now is None else now
    plan = _strategy_c_plan(now)
    output_path = Path(output_path)
    write_atomic(output_path, (plan.model_dump_json(indent=2) + "\n").encode("utf-8"))
    written = load_emergency_plan(output_path)
    if written != plan:
        raise GameplanError("invalid", f"{output_path} does not read back as the plan that was written")
    return written


def _strategy_c_plan(now: datetime) -> Gameplan:
    """The spec §9 plan; the session id uses New York time so it matches ``date``."""
    return Gameplan(
        date=trading_date(now),
        session_id=f"emergency_{now.astimezone(MARKET_TZ):%Y%m%d_%H%M%S}",
        regime="crisis",
        strategy="C",
        symbols=(),
        position_size_multiplier=0.0,
        vix_at_analysis=0.0,
        vix_source_verified=False,
        bias="neutral",
        expected_behavior="mean_reverting",
        key_levels={},
        catalysts=("Emergency deployment — no trading authorized",),
        earnings_blackout=(),
        geo_risk="high",
        alert_message="⚠️ EMERGENCY STRATEGY C — No trading. Operator intervention required.",
        data_quality=DataQuality(
            quarantine_active=True,
            stale_fields=("all",),
            last_verified=now.astimezone(timezone.utc),
        ),
        hard_limits=HardLimits(
            max_daily_loss_pct=0.0,
            max_single_position=0,
            pdt_trades_remaining=0,
            force_close_at_dte=1,
            weekly_drawdown_governor_active=True,
            max_intraday_pivots=0,
        ),
        scorecard=Scorecard(
            yesterday_pnl=0.0,
            yesterday_hit_rate=0.0,
            regime_accuracy=False,
            weekly_cumulative_pnl=0.0,
        ),
    )
