"""docs/examples/strategy.py end to end: the real CLI, the real bot, the gate, orders counted at the simulator.

The strategy always tries one BUY at start; only the gate decides whether it reaches the
Gateway. Each case counts what the simulator received: one order within the plan, none otherwise.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest

from src import main as bot_main
from src.gameplan.loader import trading_date
from src.orchestration.config import REPO_ROOT
from src.core.statefiles import READY_FILE
from testkit.plans import write_plan
from testkit.stack import Stack, wait_until

STRATEGY = "docs/examples/strategy.py:ExampleStrategy"


def bot_log(world: Stack) -> str:
    return "".join(path.read_text() for path in world.log_dir.glob("bot_*.log"))


def run_example(world: Stack, **env: str | None) -> tuple[int, str]:
    run = world.orchestrate(BOT_STRATEGY=STRATEGY, **env)
    assert run.code in (0, 2), run.stderr
    wait_until(lambda: "example strategy:" in bot_log(world), 20, "the strategy to act")
    return run.code, bot_log(world)


def test_an_order_within_the_plan_reaches_the_gateway(world, gateway):
    code, log = run_example(world)
    assert code == 0
    orders = gateway.wait_for_orders(1)
    assert [(o["client_id"], o["action"], o["symbol"], o["quantity"]) for o in orders] == [(1, "BUY", "SPY", 1)]
    assert "Order placed: BUY 1.0 SPY" in log


@pytest.mark.parametrize(("env", "refusal"), [
    ({"GAMEPLAN_PATH": None}, "no trading authority under the plan in force (strategy C)"),
    ({"EXAMPLE_SYMBOL": "TSLA"}, "'TSLA' is not in the plan's symbols"),
    ({"EXAMPLE_QUANTITY": "11"}, "would be 11, beyond hard_limits.max_single_position 10"),
])
def test_the_gate_refuses_and_nothing_reaches_the_gateway(world, gateway, env, refusal):
    world.extra.update({k: v for k, v in env.items() if v is not None})
    code, log = run_example(world, **{k: v for k, v in env.items() if v is None})
    assert refusal in log and "the gate refused" in log
    assert gateway.orders == []
    assert code == (2 if "GAMEPLAN_PATH" in env else 0)


def test_after_the_date_change_yesterdays_plan_places_no_order(tmp_path, gateway, monkeypatch, caplog):
    """In this process, with the bot's clock moved past midnight New York after its plan was loaded."""
    from docs.examples.strategy import ExampleStrategy

    class ThenStop(ExampleStrategy):
        async def on_start(self, plan, api):
            await super().on_start(plan, api)
            os.kill(os.getpid(), signal.SIGTERM)  # the bot's own handler: a clean stop

    plan = write_plan(tmp_path / "plan.json")
    tomorrow = trading_date() + timedelta(days=1)
    monkeypatch.setattr(bot_main, "trading_date", lambda: tomorrow)  # the gate's clock
    monkeypatch.chdir(REPO_ROOT)
    code = bot_main.main(["--gateway-host", "127.0.0.1", "--gateway-port", str(gateway.port), "--gameplan", str(plan),
                          "--state-dir", str(tmp_path / "state")], strategy=ThenStop())
    assert code == 0
    assert any("authority ended" in r.getMessage() for r in caplog.records)
    assert gateway.orders == []
    assert Path(tmp_path / "state" / READY_FILE).exists() is False
