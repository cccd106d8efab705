"""Trading gameplan: schema, loader (fail closed) and the Strategy C emergency plan.

Names are imported lazily so that ``python -m src.gameplan.loader`` (and
``.schema``) do not import their own module twice.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Gameplan": "src.gameplan.schema",
    "GameplanError": "src.gameplan.loader",
    "GameplanVerdict": "src.gameplan.loader",
    "evaluate_gameplan": "src.gameplan.loader",
    "load_emergency_plan": "src.gameplan.loader",
    "load_gameplan": "src.gameplan.loader",
    "trading_date": "src.gameplan.loader",
    "generate_strategy_c": "src.gameplan.generator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
