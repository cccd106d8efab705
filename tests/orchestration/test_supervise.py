"""The supervisor's timers in this process (src/orchestration/supervisor/supervise.py, cycle.py), on an injected
wall clock.

The daily cycle, its deferral while the Gateway is down, Strategy C at the cycle, the weekly
heads-up: what an operator would notice (the bot restarted on which plan, runs.jsonl, alerts,
the Gateway container never touched).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from src.core.atomic_file import write_atomic
from src.notifications.dispatch import AlertQueue
from src.orchestration.gateway.docker import DockerError
from src.orchestration.machine.bot import record_process, recorded_bot
from src.orchestration.supervisor.supervise import Supervisor
from src.core.statefiles import BOT_PROCESS_FILE, READY_FILE, SUPERVISOR_LOG
from testkit.plans import write_plan
from tests.helpers.fakes import EXITED

# Tuesday 2026-12-01, 07:59:59 New York (EST): one second before the default DAILY_CYCLE_TIME.
BEFORE_THE_CYCLE = datetime(2026, 12, 1, 12, 59, 59, tzinfo=UTC)


def supervisor_of(harness, code: int = 0) -> tuple[object, Supervisor]:
    """A successful start (exit `code`: 2 under Strategy C), then the supervisor that takes over from it
    (alerts open again: `run` closed the start-up's queue, which --supervise keeps open)."""
    orch = harness.orchestrator()
    assert orch.run() == code
    orch.services.alerts = AlertQueue(harness.notifier)
    bot_says(harness, "connected")
    return orch, Supervisor(orch)


def bot_says(harness, connection: str, pid: int = 4242) -> None:
    write_atomic(harness.config.state_dir / READY_FILE, json.dumps(
        {"pid": pid, "connection": connection, "connection_since": datetime.now(UTC).isoformat()}))


@pytest.fixture
def supervised(harness):
    """A successful start, then its supervisor, one second before the daily cycle."""
    harness.now = BEFORE_THE_CYCLE
    return supervisor_of(harness)


def test_the_daily_cycle_restarts_the_bot_on_the_new_plan_and_never_touches_the_gateway(harness, supervised):
    orch, sup = supervised
    assert sup.next_cycle == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)  # 08:00 New York
    assert sup.turn() is None and len(harness.bot_calls) == 1  # not yet
    write_plan(harness.config.gameplan_path, position_size_multiplier=0.5)
    harness.now += timedelta(seconds=2)
    assert sup.turn() is None
    assert len(harness.bot_calls) == 2
    cycle = harness.runs[-1]
    assert cycle["kind"] == "daily_cycle" and cycle["outcome"] == "success" and cycle["exit_code"] == 0
    assert cycle["supervisor_run"] == harness.runs[0]["run_id"]
    assert cycle["gameplan"]["sha256"] != harness.runs[0]["gameplan"]["sha256"]
    assert not {"restart", "start", "compose_up", "stop"} & set(harness.docker.calls)
    assert sup.next_cycle == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)  # Wednesday's


def test_the_daily_cycle_waits_for_the_gateway(harness, supervised):
    orch, sup = supervised
    bot_says(harness, "reconnecting")
    harness.now += timedelta(seconds=2)
    sup.turn()
    assert len(harness.bot_calls) == 1 and "daily cycle deferred" in sup.status
    bot_says(harness, "connected")
    sup.turn()
    assert len(harness.bot_calls) == 2 and harness.runs[-1]["kind"] == "daily_cycle"


def test_a_doubtful_plan_at_the_cycle_means_strategy_c_alerted_and_supervision_goes_on(harness, supervised):
    orch, sup = supervised
    harness.config.gameplan_path.write_text("{not json")
    harness.now += timedelta(seconds=2)
    assert sup.turn() is None  # the bot runs again, under Strategy C
    cycle = harness.runs[-1]
    assert cycle["kind"] == "daily_cycle" and cycle["outcome"] == "strategy_c" and cycle["exit_code"] == 2
    orch.services.alerts.flush(5)
    assert any(level == "warning" and "Strategy C deployed" in message for level, message in harness.notifier.alerts)


def test_a_bot_that_cannot_start_at_the_cycle_ends_supervision_with_one_critical_alert(harness, supervised):
    from src.orchestration.machine.bot import BotStart

    orch, sup = supervised
    harness.bot_result = BotStart(False, None, "bot exited with code 3 before it was ready")
    harness.now += timedelta(seconds=2)
    failure = sup.turn()
    assert failure is not None and "daily cycle" in failure and "exited with code 3" in failure
    assert harness.runs[-1]["kind"] == "daily_cycle" and harness.runs[-1]["exit_code"] == 1


def test_the_weekly_heads_up_goes_once_on_sunday_evening(harness):
    harness.now = datetime(2026, 12, 6, 22, 59, tzinfo=UTC)  # Sunday 17:59 New York
    orch, sup = supervisor_of(harness)
    before = len(harness.notifier.alerts)
    sup.turn()
    harness.now += timedelta(minutes=2)
    sup.turn()
    sup.turn()
    orch.services.alerts.flush(5)
    heads_up = [m for level, m in harness.notifier.alerts[before:] if "IBKR ends the week's session" in m]
    assert len(heads_up) == 1 and "WEEKLY_LOGIN_TIME" in heads_up[0]
    assert sup.next_heads_up == datetime(2026, 12, 13, 23, 0, tzinfo=UTC)  # next Sunday 18:00


def test_a_firewall_found_down_is_started_again_with_one_alert_and_one_when_it_is_back(harness, supervised):
    orch, sup = supervised
    harness.docker.firewall_state = EXITED  # `docker kill`: Docker's restart policy does not bring it back
    harness.docker.fail["start_firewall"] = DockerError("failed", "'docker compose up' failed: no such image: x:local")
    sup._on_event("firewall:die")  # pushed by Docker
    sup.turn()
    assert "order firewall DOWN" in sup.status and "cannot start it" in sup.status
    assert harness.docker.calls.count("start_firewall") == 1
    sup.turn()  # not again within RETRY s, and no second alert
    assert harness.docker.calls.count("start_firewall") == 1
    del harness.docker.fail["start_firewall"]
    sup.firewall.started_at -= 10
    sup.firewall_changed.set()
    sup.turn()  # started: running again
    assert harness.docker.calls.count("start_firewall") == 2
    sup.firewall_changed.set()
    sup.turn()
    assert "firewall" not in sup.status
    orch.services.alerts.flush(5)
    said = [(level, m) for level, m in harness.notifier.alerts if "firewall" in m.lower()]
    assert [level for level, _ in said] == ["critical", "critical", "info"], said
    assert "no order can reach the Gateway" in said[0][1] and "no such image" in said[1][1]
    assert said[2][1].startswith("Order firewall back after")
    lines = (harness.config.state_dir / SUPERVISOR_LOG).read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]
    firewall = [e for e in events if e.startswith("firewall")]
    assert firewall == ["firewall_event", "firewall_down", "firewall_start_failed", "firewall_started",
                        "firewall_back"]


def test_a_supervisor_crash_is_a_failure_journalled_and_alerted_never_a_silent_success(harness, supervised):
    orch, sup = supervised

    def broken_turn() -> None:
        raise KeyError("something nobody foresaw")

    sup.turn = broken_turn  # type: ignore[method-assign]
    assert sup.run_until_stopped() == 1
    assert harness.runs[-1]["outcome"] == "supervisor_crashed" and harness.runs[-1]["exit_code"] == 1
    assert "the supervisor crashed (KeyError" in harness.runs[-1]["reason"]
    orch.services.alerts.flush(5)
    assert [level for level, m in harness.notifier.alerts if "supervisor crashed" in m] == ["critical"]
    lines = (harness.config.state_dir / SUPERVISOR_LOG).read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]
    assert "crashed" in events and events[-1] == "supervisor_crashed"


def test_a_plan_delivered_after_the_cycle_is_picked_up_the_same_day(harness, monkeypatch):
    """No plan at start-up: Strategy C. The analyst's plan for today arrives later: the cycle runs for it at
    once (not tomorrow); an unusable rewrite afterwards changes nothing."""
    import src.orchestration.supervisor.supervise as supervise_module

    monkeypatch.setattr(supervise_module, "PLAN_LOOK_EVERY", 0.0)
    harness.now = BEFORE_THE_CYCLE + timedelta(hours=2)  # today's cycle is over
    path = harness.config.gameplan_path
    path.unlink()
    orch, sup = supervisor_of(harness, code=2)
    assert harness.runs[0]["outcome"] == "strategy_c"
    assert sup.turn() is None and len(harness.bot_calls) == 1  # nothing new yet
    write_plan(path)  # the plan for today (the harness's trading date), now
    assert sup.turn() is None
    assert len(harness.bot_calls) == 2
    cycle = harness.runs[-1]
    assert cycle["kind"] == "daily_cycle" and cycle["outcome"] == "success" and cycle["exit_code"] == 0
    path.write_text("{not json")
    assert sup.turn() is None and len(harness.bot_calls) == 2  # the plan in force stays
    lines = (harness.config.state_dir / SUPERVISOR_LOG).read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines]
    assert events.count("late_plan") == 1 and events.count("late_plan_ignored") == 1
    assert not {"restart", "start", "compose_up", "stop"} & set(harness.docker.calls)


def test_the_gateways_memory_above_the_limit_is_one_warning_and_an_all_clear_is_recorded(harness, supervised):
    orch, sup = supervised
    harness.docker.memory = 2500.0  # above the default 2048
    sup.turn()
    sup.memory_looked_at = float("-inf")
    sup.turn()  # still above: no second warning
    harness.docker.memory = 1000.0
    sup.memory_looked_at = float("-inf")
    sup.turn()
    orch.services.alerts.flush(5)
    high = [m for level, m in harness.notifier.alerts if "GATEWAY_MEMORY_ALERT_MB" in m]
    assert len(high) == 1 and "2500 MB" in high[0]
    lines = (harness.config.state_dir / SUPERVISOR_LOG).read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines].count("gateway_memory") == 2


def test_a_damaged_bot_record_is_rewritten_so_status_and_shutdown_keep_finding_the_bot(harness):
    """The soak's finding: state/bot_process.json overwritten, then bot.pid's content too, left `--status` unable to
    find a bot that went on trading (and `shutdown` unable to stop it), silently. The supervisor knows its bot:
    within PLAN_LOOK_EVERY s the record names it again, and the repair is journalled."""
    bot = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        harness.bot_process = bot
        harness.now = BEFORE_THE_CYCLE
        orch = harness.orchestrator()
        assert orch.run() == 0
        ticks = [1000.0]
        orch.services.clock = lambda: ticks[0]
        sup = Supervisor(orch)
        state = harness.config.state_dir
        record_process(state, bot, [sys.executable])  # as the real start-up records it
        assert sup.turn() is None and recorded_bot(state) == bot.pid

        def repairs() -> int:
            lines = (state / SUPERVISOR_LOG).read_text().splitlines()
            return [json.loads(line)["event"] for line in lines].count("bot_record_repaired")

        assert repairs() == 0
        (state / BOT_PROCESS_FILE).write_text('{"pid": "1"}\n')  # damaged under the running bot
        assert recorded_bot(state) is None
        ticks[0] += 5.0
        assert sup.turn() is None
        assert recorded_bot(state) == bot.pid and repairs() == 1
        ticks[0] += 5.0
        assert sup.turn() is None and repairs() == 1  # intact now: nothing more to do
    finally:
        bot.kill()
        bot.wait()
