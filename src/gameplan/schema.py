"""The daily trading gameplan: pydantic models and their JSON Schema.

Strict where a field decides authority, open where the spec is silent:

* The fields that decide whether and how the bot trades (date, strategy, symbols,
  multiplier, key levels, earnings blackout, quarantine, hard limits) are strict
  (fail closed): unknown fields are rejected, "1" is not an integer, true is not
  a number, NaN and Infinity are not numbers, every list has a maximum length,
  and Strategy C can never carry trading authority.
* A plan that contradicts itself where authority is decided is invalid (the
  orchestrator deploys Strategy C, and the reason names the fields to fix):
  stale fields listed without quarantine, a symbol that is also under earnings
  blackout, a non-zero size on an unverified VIX reading.
* The descriptive fields (``regime``, ``bias``, ``expected_behavior``,
  ``geo_risk``) are free text: the spec only shows examples. ``KNOWN_VALUES``
  documents the usual ones; the loader logs a warning for any other.

Every check runs in linear time: a 1 MiB plan validates in milliseconds
(``python -m bench.gameplan``). Validate JSON text with
``Gameplan.model_validate_json``; the loader adds the checks JSON Schema cannot
express (duplicate keys, file size, today's date, quarantine).

``python -m src.gameplan.schema`` prints the JSON Schema committed as
``docs/gameplan.schema.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

# A and B are the trading strategies; C is the no-trading (alert-only) mode.
Strategy = Literal["A", "B", "C"]

# The usual values of the descriptive fields. Documentation, not a constraint: the
# spec only shows examples (crisis, neutral, mean_reverting, high), so any other
# text is accepted and the loader logs a warning naming the field.
KNOWN_VALUES: dict[str, tuple[str, ...]] = {
    "regime": ("bull_trend", "bear_trend", "range_bound", "high_volatility", "crisis"),
    "bias": ("bullish", "bearish", "neutral"),
    "expected_behavior": ("trending", "mean_reverting", "breakout", "choppy"),
    "geo_risk": ("low", "medium", "high"),
}
MAX_DESCRIPTIVE_LENGTH = 64

MAX_POSITION_SIZE_MULTIPLIER = 2.0

# Maximum list lengths: far above any real plan, low enough that a hostile or
# runaway file costs milliseconds, not minutes.
MAX_SYMBOLS = 100
MAX_EARNINGS_BLACKOUT = 1000
MAX_KEY_LEVEL_SYMBOLS = 200
MAX_LEVELS_PER_SYMBOL = 32
MAX_CATALYSTS = 100
MAX_STALE_FIELDS = 100

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NonNegativeInt = Annotated[int, Field(ge=0)]
# Upper-case exchange symbol, optionally with a share-class suffix (BRK.B).
Ticker = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{0,9}(\.[A-Z0-9]{1,4})?$")]
# Name of a price level in lower-case snake case (support, prior_close).
LevelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Text = Annotated[str, Field(min_length=1, max_length=500)]
# JSON Schema: keys that match no patternProperties are rejected, as pydantic does.
_CLOSED_MAP = {"additionalProperties": False}
PriceLevels = Annotated[dict[LevelName, Annotated[FiniteFloat, Field(gt=0)]],
                        Field(max_length=MAX_LEVELS_PER_SYMBOL, json_schema_extra=_CLOSED_MAP)]
_UNIQUE = {"uniqueItems": True}


def _printable(text: str) -> str:
    """Descriptive text: not blank, no control characters (a newline would forge a log line)."""
    if not text.strip():
        raise PydanticCustomError("blank_text", "must not be blank")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
        raise PydanticCustomError("control_character", "must not contain control characters")
    return text


# Free text for a descriptive field; the JSON Schema pattern says what _printable checks.
_CONTROL = r"\u0000-\u001f\u007f-\u009f"
_PRINTABLE = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
Descriptive = Annotated[str, Field(min_length=1, max_length=MAX_DESCRIPTIVE_LENGTH,
                                   json_schema_extra={"pattern": _PRINTABLE}), AfterValidator(_printable)]


def _described(field: str, what: str) -> Any:
    """A descriptive field's documentation: what it is and its known values (also as JSON Schema examples)."""
    known = KNOWN_VALUES[field]
    return Field(
        examples=list(known),
        description=f"{what}: free text, 1 to {MAX_DESCRIPTIVE_LENGTH} characters, no control characters. "
                    f"Known values: {', '.join(known)}. Any other value is accepted and logged as a "
                    f"warning; it never decides trading authority.",
    )


def _repeated(items: Iterable[str]) -> list[str]:
    """The items that occur more than once, sorted; linear time (one set lookup per item)."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for item in items:
        (repeated if item in seen else seen).add(item)
    return sorted(repeated)


def _listed(items: list[str], limit: int = 5) -> str:
    """``A, B, C`` for the first ``limit`` items, then how many more."""
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


class _Frozen(BaseModel):
    model_config = ConfigDict(
        strict=True, frozen=True, extra="forbid", use_attribute_docstrings=True
    )


class DataQuality(_Frozen):
    """Freshness of the data the gameplan was built from."""

    quarantine_active: bool
    """True when the input data is suspect: no trading on this plan."""
    stale_fields: Annotated[tuple[Text, ...], Field(max_length=MAX_STALE_FIELDS)]
    """Inputs known to be stale (``all`` when nothing can be trusted); empty when the data is fresh.
    Listing any requires ``quarantine_active``: a plan built on stale data grants no authority."""
    last_verified: AwareDatetime
    """When the input data was last verified (timezone required)."""

    @field_validator("stale_fields")
    @classmethod
    def _stale_means_quarantine(cls, stale: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if stale and info.data.get("quarantine_active") is False:
            raise PydanticCustomError(
                "stale_without_quarantine",
                "lists stale inputs but data_quality.quarantine_active is false: set quarantine_active to true, "
                "or empty stale_fields once the data is fresh")
        return stale


class HardLimits(_Frozen):
    """Risk limits the bot must never exceed, whatever the strategy says."""

    max_daily_loss_pct: Annotated[FiniteFloat, Field(ge=0, le=100)]
    max_single_position: NonNegativeInt
    pdt_trades_remaining: Annotated[int, Field(ge=0, le=3)]
    """Day trades left under the pattern-day-trader rule (at most 3)."""
    force_close_at_dte: NonNegativeInt
    """Close option positions at this many days to expiry."""
    weekly_drawdown_governor_active: bool
    max_intraday_pivots: NonNegativeInt


class Scorecard(_Frozen):
    """How the previous plans performed."""

    yesterday_pnl: FiniteFloat
    yesterday_hit_rate: Annotated[FiniteFloat, Field(ge=0, le=1)]
    regime_accuracy: bool
    weekly_cumulative_pnl: FiniteFloat


class Gameplan(_Frozen):
    """One trading day's gameplan.

    Cross-field rules: Strategy C has no symbols and a position size multiplier
    of 0; Strategies A and B have at least one symbol and a multiplier above 0.
    A plan that contradicts itself is invalid: no symbol may also be in
    earnings_blackout, a multiplier above 0 needs vix_source_verified true, and
    data_quality.stale_fields may list inputs only when quarantine_active is true.
    Descriptive fields (regime, bias, expected_behavior, geo_risk) are free text.
    """

    date: dt.date
    """The trading day (America/New_York) this plan is for, YYYY-MM-DD."""
    session_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
    """Identifies the analysis session; emergency plans use ``emergency_YYYYMMDD_HHMMSS``."""
    regime: Annotated[Descriptive, _described("regime", "Market regime (an emergency plan declares crisis)")]
    strategy: Strategy
    """A or B trade; C is the no-trading, alert-only mode."""
    symbols: Annotated[tuple[Ticker, ...], Field(max_length=MAX_SYMBOLS, json_schema_extra=_UNIQUE)]
    """Symbols the bot may trade today, no duplicates, none in earnings_blackout."""
    position_size_multiplier: Annotated[FiniteFloat, Field(ge=0, le=MAX_POSITION_SIZE_MULTIPLIER)]
    vix_at_analysis: Annotated[FiniteFloat, Field(ge=0)]
    vix_source_verified: bool
    """Whether vix_at_analysis comes from a verified source; required for a multiplier above 0."""
    bias: Annotated[Descriptive, _described("bias", "Directional bias for the day")]
    expected_behavior: Annotated[Descriptive, _described("expected_behavior", "How prices are expected to move today")]
    key_levels: Annotated[dict[Ticker, PriceLevels],
                          Field(max_length=MAX_KEY_LEVEL_SYMBOLS, json_schema_extra=_CLOSED_MAP)]
    """Per symbol, named price levels (all > 0)."""
    catalysts: Annotated[tuple[Text, ...], Field(max_length=MAX_CATALYSTS)]
    earnings_blackout: Annotated[tuple[Ticker, ...], Field(max_length=MAX_EARNINGS_BLACKOUT, json_schema_extra=_UNIQUE)]
    """Symbols not to trade because of upcoming earnings, no duplicates; none may be in symbols."""
    geo_risk: Annotated[Descriptive, _described("geo_risk", "Geopolitical risk level")]
    alert_message: Annotated[str, Field(max_length=2000)]
    """Message for the operator (Discord's 2000-character content limit)."""
    data_quality: DataQuality
    hard_limits: HardLimits
    scorecard: Scorecard

    @field_validator("symbols", "earnings_blackout")
    @classmethod
    def _unique(cls, tickers: tuple[str, ...]) -> tuple[str, ...]:
        duplicates = _repeated(tickers)
        if duplicates:
            raise PydanticCustomError("duplicate_symbol", "duplicate symbols: {duplicates}",
                                      {"duplicates": _listed(duplicates)})
        return tickers

    @field_validator("earnings_blackout")
    @classmethod
    def _not_traded(cls, blackout: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        """A symbol both to trade and not to trade: which one the analyst meant is unknown."""
        blocked = set(blackout)
        both = [s for s in info.data.get("symbols", ()) if s in blocked]  # absent when symbols is invalid
        if both:
            raise PydanticCustomError(
                "symbol_in_blackout", "{both} {verb} also in symbols: a symbol under earnings blackout is not "
                "traded; remove {it} from symbols or from earnings_blackout",
                {"both": _listed(both), "verb": "is" if len(both) == 1 else "are",
                 "it": "it" if len(both) == 1 else "them"})
        return blackout

    @field_validator("vix_source_verified")
    @classmethod
    def _sized_on_verified_vix(cls, verified: bool, info: ValidationInfo) -> bool:
        """Sizing positions on a VIX reading nobody verified is not authority."""
        multiplier = info.data.get("position_size_multiplier")  # absent when it is invalid
        if not verified and multiplier:
            raise PydanticCustomError(
                "unverified_vix", "false, but position_size_multiplier is {multiplier}: positions are not sized "
                "on an unverified VIX reading; verify the source and set vix_source_verified to true, or use "
                "strategy C (multiplier 0)", {"multiplier": multiplier})
        return verified

    @field_validator("symbols", "position_size_multiplier")
    @classmethod
    def _matches_strategy(cls, value: tuple[str, ...] | float, info: ValidationInfo) -> tuple[str, ...] | float:
        """Strategy C never has trading authority; A and B always have some."""
        strategy = info.data.get("strategy")  # absent when strategy itself is invalid
        if strategy is None or (strategy == "C") == (not value):
            return value
        what = {
            ("symbols", True): "must be empty",
            ("symbols", False): "must not be empty",
            ("position_size_multiplier", True): "must be 0",
            ("position_size_multiplier", False): "must be above 0",
        }[str(info.field_name), strategy == "C"]
        raise PydanticCustomError("strategy_mismatch", "{what} for strategy {strategy}",
                                  {"what": what, "strategy": strategy})

    @property
    def trading_authorized(self) -> bool:
        """True only when this plan lets the bot open positions."""
        return (
            self.strategy in ("A", "B")
            and self.position_size_multiplier > 0
            and not self.data_quality.quarantine_active
            and len(self.symbols) > 0
            # the contradictions validation rejects, again for a model built without validation
            and self.vix_source_verified
            and not self.data_quality.stale_fields
            and not set(self.symbols) & set(self.earnings_blackout)
        )


def gameplan_json_schema() -> str:
    """The JSON Schema of a gameplan file, as committed in docs/gameplan.schema.json."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **Gameplan.model_json_schema()}
    return json.dumps(schema, indent=2) + "\n"


if __name__ == "__main__":
    print(gameplan_json_schema(), end="")
