"""The strategy plug: what a trading strategy implements, and loading one by `MODULE:ATTR`.

A strategy gets the plan in force and a `StrategyAPI` (src.broker.connection): reads, and
orders through the trading gate. `load_strategy` is used by the bot and, at start-up, by the
orchestrator to check `BOT_STRATEGY` (importable, implements the protocol) before anything runs.
No ib_async import here, so that check stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from src.broker.connection import StrategyAPI
    from src.gameplan.schema import Gameplan

log = logging.getLogger(__name__)


class Strategy(Protocol):
    """What a trading strategy implements; it only ever sees the gated StrategyAPI.

    Either hook may be a coroutine function; `on_heartbeat` runs once per heartbeat while connected.
    """

    def on_start(self, plan: Gameplan, api: StrategyAPI) -> Any: ...

    def on_heartbeat(self, api: StrategyAPI) -> Any: ...


class IdleStrategy:
    """The built-in strategy: places no orders, says which plan is in force."""

    def on_start(self, plan: Gameplan, api: StrategyAPI) -> None:
        authority = "trading authorized" if api.trading_authorized else "NO trading authority"
        log.info("Gameplan in force: %s strategy %s, regime %s, %d symbol(s), size x%s, %s",
                 plan.date, plan.strategy, plan.regime, len(plan.symbols), plan.position_size_multiplier,
                 authority)

    def on_heartbeat(self, api: StrategyAPI) -> None:
        pass


class PrerequisiteError(Exception):
    """The bot (or a strategy) must not start; the message is the one line to show."""


def load_strategy(spec: str | None) -> Strategy:
    """`MODULE:ATTR` -> a Strategy (an instance, or a class/factory called without arguments)."""
    if not spec:
        return IdleStrategy()
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise PrerequisiteError(f"strategy {spec!r}: expected MODULE:ATTR or FILE.py:ATTR, "
                                "e.g. docs/examples/strategy.py:ExampleStrategy")
    try:
        target = getattr(_import(module_name), attr)
    except Exception as exc:  # an error in the operator's module: one line, not a traceback
        raise PrerequisiteError(f"strategy {spec!r} cannot be loaded: {type(exc).__name__}: {exc}") from None
    try:
        strategy = target() if inspect.isclass(target) or not hasattr(target, "on_start") else target
    except Exception as exc:
        raise PrerequisiteError(f"strategy {spec!r} could not be created: {type(exc).__name__}: {exc}") from None
    missing = [name for name in ("on_start", "on_heartbeat") if not callable(getattr(strategy, name, None))]
    if missing:
        raise PrerequisiteError(f"strategy {spec!r} does not implement the Strategy protocol: "
                                f"no {', '.join(missing)}")
    return strategy  # type: ignore[no-any-return]


def _import(name: str) -> ModuleType:
    """A dotted module name, or a path to a .py file (relative to the working directory)."""
    if not name.endswith(".py"):
        return importlib.import_module(name)
    path = Path(name).resolve()
    spec = importlib.util.spec_from_file_location(f"strategy_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
