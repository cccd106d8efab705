"""The strategy plug: what a trading strategy implements, and loading one by `MODULE:ATTR`.

A strategy gets the plan in force and a `StrategyAPI` (src.broker.connection): ib_async's IB, reads,
and orders checked early. `load_strategy` is used by the bot. The orchestrator checks `BOT_STRATEGY`
at start-up with `check_strategy`: the same load, in a child process (`python -m src.broker.strategy
SPEC`) with a deadline, so that nothing the operator's module does when imported (sys.exit, os.abort,
a hang, a fork) can end or block the orchestrator. No ib_async import here, so the check stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import subprocess
import sys
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


CHECK_TIMEOUT = 30.0  # seconds for the operator's module to import and build its strategy
CHECKED = "STRATEGY OK"  # the child's last line when the strategy loads and implements the protocol


def check_strategy(spec: str | None, *, timeout: float = CHECK_TIMEOUT, cwd: Path | None = None,
                   env: dict[str, str] | None = None) -> None:
    """`load_strategy(spec)` in a child process; PrerequisiteError (one line) unless it said CHECKED."""
    if not spec:
        return
    try:
        done = subprocess.run([sys.executable, "-m", "src.broker.strategy", spec], cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PrerequisiteError(f"strategy {spec!r} did not load within {timeout:g} s (a hang at import?)") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines and lines[-1] == CHECKED:
        return
    said = [line for line in lines if line.startswith("STRATEGY ERROR: ")]
    if said:
        raise PrerequisiteError(said[-1].removeprefix("STRATEGY ERROR: "))
    how = f"was killed by signal {-done.returncode}" if done.returncode < 0 else f"exited with code {done.returncode}"
    raise PrerequisiteError(f"strategy {spec!r} {how} while loading, before it could be checked "
                            "(sys.exit or os.abort at import?)")


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


def _main(argv: list[str]) -> int:
    """`python -m src.broker.strategy SPEC`: load it, then say CHECKED (or STRATEGY ERROR: <one line>)."""
    try:
        load_strategy(argv[0] if argv else None)
    except PrerequisiteError as exc:
        print(f"STRATEGY ERROR: {exc}", flush=True)
        return 2
    print(CHECKED, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
