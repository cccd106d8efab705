"""The bot's connection state against a misbehaving simulator: a frozen API, 1100/1102; the gate pauses.

The bot runs in this process (its own asyncio loop in the main thread, as `python -m src.main`
does); a script thread plays the Gateway's faults. A strategy tries one order every 0.1 s
whatever the state, so the gate's answers are sampled in every state.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from pathlib import Path

from src import main as bot_main
from src.broker.connection import OrderRefused
from src.core.statefiles import READY_FILE
from testkit.plans import write_plan
from tests.helpers.simulator import running_simulator
from testkit.stack import wait_until

LIMITS = {"max_daily_loss_pct": 2.0, "max_single_position": 1000, "pdt_trades_remaining": 3,
          "force_close_at_dte": 2, "weekly_drawdown_governor_active": False, "max_intraday_pivots": 3}


class Prober:
    """Tries BUY 1 SPY every 0.1 s and records (connection state, placed?)."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, bool]] = []

    async def on_start(self, plan, api) -> None:
        from ib_async import MarketOrder, Stock

        async def loop() -> None:
            while True:
                state = api.connection_state
                try:
                    api.place_order(Stock("SPY", "SMART", "USD"), MarketOrder("BUY", 1, account=api.accounts()[0]))
                    self.attempts.append((state, True))
                except OrderRefused:
                    self.attempts.append((state, False))
                await asyncio.sleep(0.1)

        self.task = asyncio.get_running_loop().create_task(loop())

    def on_heartbeat(self, api) -> None:
        pass


def connection(state_dir: Path) -> tuple[str | None, str | None]:
    try:
        record = json.loads((state_dir / READY_FILE).read_text())
    except (OSError, ValueError):
        return None, None
    return record.get("connection"), record.get("connection_reason")


def test_a_frozen_api_and_a_lost_ib_connection_pause_the_gate_until_resynced(tmp_path):
    state_dir = tmp_path / "state"
    plan = write_plan(tmp_path / "plan.json", hard_limits=LIMITS)
    prober = Prober()
    seen: list[str] = []
    failures: list[BaseException] = []

    def script(sim) -> None:
        try:
            def reach(want: str, reason_part: str = "") -> None:
                wait_until(lambda: connection(state_dir)[0] == want and reason_part in (connection(state_dir)[1] or ""),
                           20, f"connection {want} {reason_part}")
                seen.append(f"{want}: {connection(state_dir)[1]}")

            reach("connected")
            wait_until(lambda: any(placed for _, placed in prober.attempts), 10, "a first order")
            sim.freeze()  # TCP open, nothing answers: the heartbeat's round trip times out
            reach("degraded", "did not answer reqCurrentTime")
            sim.unfreeze()
            reach("connected", "restored and resynced")
            sim.connectivity_lost()  # 1100: the Gateway lost IB
            reach("degraded", "error 1100")
            sim.connectivity_restored()  # 1102
            reach("connected", "restored and resynced")
            placed_before = sum(placed for _, placed in prober.attempts)
            wait_until(lambda: sum(placed for _, placed in prober.attempts) > placed_before, 10, "trading resumed")
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # the bot's own handler: a clean stop

    with running_simulator() as sim:
        threading.Thread(target=script, args=(sim,), daemon=True).start()
        code = bot_main.main(["--gateway-host", "127.0.0.1", "--gateway-port", str(sim.port), "--gameplan", str(plan),
                              "--state-dir", str(state_dir), "--heartbeat", "0.3", "--heartbeat-timeout", "0.5"],
                             strategy=prober)
        placed = sum(ok for _, ok in prober.attempts)
        wait_until(lambda: len(sim.orders) == placed, 10, "every placed order to reach the simulator")
    assert not failures, failures[0]
    assert code == 0
    assert [s.split(":")[0] for s in seen] == ["connected", "degraded", "connected", "degraded", "connected"]
    refused_states = {state for state, ok in prober.attempts if not ok}
    assert "degraded" in refused_states  # sampled while paused ...
    assert all(state == "connected" for state, ok in prober.attempts if ok)  # ... and placed only while connected
