"""The startup state machine: transitions, exit codes, journal and alerts, with faked side effects."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from src.orchestration import startup
from src.orchestration.config import REPO_ROOT
from src.orchestration.gateway.docker import DAEMON_DOWN, FAILED, DockerError
from src.core.locks import PidLock
from src.orchestration.machine.engine import DefinitionError, Row, check_definition
from src.orchestration.startup import TRANSITIONS, StartupState
from src.core.statefiles import CHECKPOINT_FILE, ORCHESTRATOR_LOCK, RUNS_FILE
from testkit.plans import write_plan
from tests.helpers.fakes import EXITED, probe

HAPPY_PATH = ["INITIALIZING", "GATEWAY_STARTING", "GATEWAY_WAITING", "GATEWAY_VALIDATED",
              "GAMEPLAN_LOADING", "BOT_STARTING", "BOT_RUNNING", "SUCCESS"]


def test_the_real_table_passes_its_definition_check_and_every_state_is_in_it_or_final():
    check_definition(TRANSITIONS, StartupState.INITIALIZING, startup.FINAL, startup.StartupOrchestrator)
    assert set(TRANSITIONS) | set(startup.FINAL) == set(StartupState)


@pytest.mark.parametrize(("breakage", "complaint"), [
    (lambda t: t.update({StartupState.BOT_RUNNING: Row("_finalize", frozenset({"NOWHERE"}))}), "unknown target"),
    (lambda t: t.update({StartupState.BOT_RUNNING: Row("_finalize", frozenset())}), "dead end"),
    (lambda t: t.update({StartupState.BOT_RUNNING: Row("_no_such_handler", frozenset({StartupState.SUCCESS}))}),
     "no handler _no_such_handler"),
    (lambda t: t.update({StartupState.GAMEPLAN_LOADING: Row("_load_gameplan",
                                                             frozenset({StartupState.GAMEPLAN_MISSING}))}),
     "GAMEPLAN_INVALID is unreachable"),
    (lambda t: t.update({StartupState.SUCCESS: Row(None, frozenset({StartupState.FAILURE}))}), "is final"),
])
def test_a_broken_table_is_refused_when_it_is_built(breakage, complaint):
    table = dict(TRANSITIONS)
    breakage(table)
    with pytest.raises(DefinitionError, match=complaint):
        check_definition(table, StartupState.INITIALIZING, startup.FINAL, startup.StartupOrchestrator)


def test_print_transitions_renders_the_table_and_the_readme_shows_that_output(capsys):
    assert startup.main(["--print-transitions"], environ={}) == 0
    printed = capsys.readouterr().out
    for state, row in TRANSITIONS.items():
        line = next(line for line in printed.splitlines() if line.startswith(state.name + " "))
        assert all(target.name in line for target in row.targets) and (row.handler or "(passes on)") in line
    doc = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    shown = doc.split("<!-- transitions:start -->")[1].split("<!-- transitions:end -->")[0]
    assert shown.strip().strip("`").strip() == printed.strip(), \
        "docs/ARCHITECTURE.md's state machine differs: paste the output of --print-transitions"


def test_happy_path_with_gateway_already_running_exits_0(harness):
    assert harness.run() == 0
    assert harness.path == HAPPY_PATH
    assert "compose_up" not in harness.docker.calls and "start" not in harness.docker.calls
    record = harness.runs[-1]
    assert record["outcome"] == "success" and record["exit_code"] == 0 and record["bot_pid"] == 4242
    assert record["gameplan"]["verdict"] == "ok"
    assert harness.bot_gameplan() == harness.config.gameplan_path
    assert harness.notifier.levels() == ["info"]  # one success summary, nothing else
    assert not (harness.config.state_dir / CHECKPOINT_FILE).exists()


def test_absent_container_is_created_with_compose(harness):
    harness.docker.state = None
    assert harness.run() == 0
    assert harness.docker.calls.count("compose_up") == 1
    assert any("created and started" in m for _, m in harness.notifier.alerts)


def test_stopped_container_is_started(harness):
    harness.docker.state = EXITED
    assert harness.run() == 0
    assert harness.docker.calls.count("start") == 1 and "compose_up" not in harness.docker.calls


def test_docker_unavailable_fails_with_its_reason(harness):
    harness.docker.ping_error = DockerError(DAEMON_DOWN, "the Docker daemon is not running")
    assert harness.run() == 1
    assert harness.path == ["INITIALIZING", "DOCKER_UNAVAILABLE", "FAILURE"]
    assert harness.runs[-1]["reason"] == "Docker unavailable: the Docker daemon is not running"
    assert harness.notifier.alerts[-1][0] == "critical"
    assert "Docker daemon is not running" in harness.notifier.alerts[-1][1]


def test_compose_failure_is_a_failure_with_the_docker_message(harness):
    harness.docker.state = None
    harness.docker.fail["compose_up"] = DockerError(FAILED, "'docker compose up' failed: pull access denied")
    assert harness.run() == 1
    assert "pull access denied" in harness.runs[-1]["reason"]


def test_never_healthy_restarts_once_then_times_out_on_time(harness):
    timeout = 1.0
    harness.configure(gateway_health_timeout=timeout)
    harness.health.script = lambda n: probe("closed_before_version")
    assert harness.run() == 1
    assert harness.docker.calls.count("restart") == 1
    assert harness.path[-5:] == ["GATEWAY_UNHEALTHY", "GATEWAY_WAITING", "GATEWAY_UNHEALTHY", "GATEWAY_TIMEOUT",
                                 "FAILURE"]
    assert harness.path.count("GATEWAY_WAITING") == 2 and harness.path[-2:] == ["GATEWAY_TIMEOUT", "FAILURE"]
    waits = [t["seconds"] for t in harness.runs[-1]["transitions"] if t["from"] == "GATEWAY_WAITING"]
    # each wait ends on its deadline: not before, and not a second budget (or the next retry) after it
    assert len(waits) == 2 and all(timeout <= w < timeout + 0.9 for w in waits), waits
    assert "closed_before_version" in harness.runs[-1]["reason"] and "after one restart" in harness.runs[-1]["reason"]
    assert harness.notifier.levels() == ["warning", "critical"]
    assert harness.bot_calls == []


def test_healthy_after_the_restart_succeeds(harness):
    harness.configure(gateway_health_timeout=0.3)
    harness.health.script = lambda n: probe() if harness.docker.calls.count("restart") else probe("no_reply")
    assert harness.run() == 0
    assert harness.docker.calls.count("restart") == 1
    assert "GATEWAY_UNHEALTHY" in harness.path and harness.path[-1] == "SUCCESS"


def test_healthy_exactly_at_the_deadline_is_success(harness):
    harness.configure(gateway_health_timeout=0.5, gateway_health_retry_interval=0.2, health_check_timeout=5.0)

    def script(n):  # healthy only for the probe made with no time left: its timeout is the 0.5 s grace alone
        return probe() if harness.health.timeouts[-1] <= 0.5 else probe("no_reply")

    harness.health.script = script
    assert harness.run() == 0
    assert "restart" not in harness.docker.calls and "GATEWAY_UNHEALTHY" not in harness.path
    assert len(harness.health.calls) >= 3 and harness.health.timeouts[-2] > 0.5  # it did wait to the deadline


def test_container_dying_mid_wait_is_noticed_at_once_and_restarted(harness):
    harness.configure(gateway_health_timeout=60.0, gateway_health_retry_interval=20.0)
    harness.health.script = lambda n: probe() if harness.docker.calls.count("restart") + \
        harness.docker.calls.count("start") else probe("closed_before_version")
    threading.Timer(0.3, harness.docker.emit, args=("die", EXITED)).start()
    started = time.monotonic()
    assert harness.run() == 0
    assert time.monotonic() - started < 10  # woken by the event: not at the 20 s poll, not at the 60 s timeout
    assert harness.docker.calls.count("start") == 1  # an exited container is started, once
    assert "GATEWAY_UNHEALTHY" in harness.path
    assert any("exited (exit code 137)" in m for _, m in harness.notifier.alerts)


def test_probes_follow_the_retry_interval_and_never_outlive_the_deadline(harness):
    harness.configure(gateway_health_timeout=1.0, gateway_health_retry_interval=0.25, health_check_timeout=5.0)
    harness.health.script = lambda n: probe("refused")
    harness.run()
    calls = harness.health.calls
    per_wait = len(calls) / 2
    # every 0.25 s over a 1 s budget: 5 a wait on an idle machine; fewer when the machine is busy (each
    # sleep overruns), never more than the interval allows
    assert 3 <= per_wait <= 7, calls
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    # never sooner than the interval, except the last sleep of each wait, cut to its deadline (and the
    # gap across the restart): the load can only lengthen a gap
    assert sum(gap < 0.25 - 0.01 for gap in gaps) <= 3, gaps
    assert max(harness.health.timeouts) <= 1.0 + 0.5


@pytest.mark.parametrize(("setup", "state", "kind"), [
    ("unset", "GAMEPLAN_MISSING", "not_configured"),
    ("missing", "GAMEPLAN_MISSING", "missing"),
    ("corrupt", "GAMEPLAN_INVALID", "invalid"),
    ("quarantined", "GAMEPLAN_INVALID", "quarantined"),
    ("stale", "GAMEPLAN_INVALID", "stale"),
])
def test_doubtful_gameplan_deploys_strategy_c_and_exits_2(harness, setup, state, kind):
    plan = harness.config.gameplan_path
    if setup == "unset":
        harness.configure(gameplan_path=None)
    elif setup == "missing":
        plan.unlink()
    elif setup == "corrupt":
        plan.write_text('{"date": ')
    elif setup == "quarantined":
        write_plan(plan, data_quality={"quarantine_active": True, "stale_fields": [],
                                       "last_verified": "2026-01-01T00:00:00Z"})
    elif setup == "stale":
        write_plan(plan, date="2020-01-02")
    assert harness.run() == 2
    assert state in harness.path and harness.path[-1] == "SUCCESS"
    record = harness.runs[-1]
    assert record["outcome"] == "strategy_c" and record["gameplan"]["verdict"] == kind
    emergency = harness.config.emergency_gameplan_path
    assert harness.bot_gameplan() == emergency
    assert json.loads(emergency.read_text())["strategy"] == "C"
    assert record["reason"].startswith(f"gameplan {kind}")
    warnings = [m for level, m in harness.notifier.alerts if level == "warning"]
    assert any("Strategy C deployed" in m and kind in m for m in warnings)


def test_strategy_c_that_cannot_be_written_is_a_failure(harness):
    harness.configure(gameplan_path=None)

    def broken(path):
        raise PermissionError(13, "Permission denied", str(path))

    orchestrator = harness.orchestrator()
    orchestrator.services.generate_strategy_c = broken
    assert orchestrator.run() == 1
    assert "Strategy C could not be written" in harness.runs[-1]["reason"]


def test_bot_that_fails_to_start_is_a_failure_with_its_log(harness, tmp_path):
    from src.orchestration.machine.bot import BotStart

    def crashing(command, args, *, log_path, **kw):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("Traceback (most recent call last):\nSyntaxError: invalid syntax\n")
        return BotStart(False, 777, "bot exited with code 1 before it was ready")

    orchestrator = harness.orchestrator()
    orchestrator.services.start_bot = crashing
    assert orchestrator.run() == 1
    assert harness.path[-2:] == ["BOT_START_FAILED", "FAILURE"]
    assert "SyntaxError: invalid syntax" in harness.runs[-1]["reason"]
    assert "SyntaxError" in harness.notifier.alerts[-1][1] and harness.notifier.alerts[-1][0] == "critical"


def test_bot_already_running_touches_nothing_and_alerts_nobody(harness):
    harness.running_bot_pid = 31337
    assert harness.run() == 1
    assert harness.docker.calls == [] and harness.bot_calls == []
    assert "already running (PID 31337)" in harness.runs[-1]["reason"]
    assert harness.notifier.alerts == []


def test_second_orchestrator_is_refused_at_once_naming_the_holder(harness):
    lock = PidLock(harness.config.state_dir / ORCHESTRATOR_LOCK)
    lock.acquire()
    try:
        started = time.monotonic()
        assert harness.run() == 1
        assert time.monotonic() - started < 5  # at once: no wait for the holder (this process, for ever)
    finally:
        lock.release()
    assert harness.docker.calls == []
    assert harness.runs[-1]["outcome"] == "refused"
    assert f"PID {os.getpid()}" in harness.runs[-1]["reason"]


def test_a_transition_missing_from_the_table_ends_in_failure(harness, monkeypatch):
    monkeypatch.setattr(startup.StartupOrchestrator, "_validate_gateway", lambda self: StartupState.BOT_RUNNING)
    assert harness.run() == 1
    assert "transition GATEWAY_VALIDATED -> StartupState.BOT_RUNNING is not in the table" in harness.runs[-1]["reason"]
    assert harness.bot_calls == []


def test_unexpected_exception_becomes_exit_1_with_a_critical_alert(harness, monkeypatch):
    def boom(self):
        raise KeyError("surprise")

    monkeypatch.setattr(startup.StartupOrchestrator, "_load_gameplan", boom)
    assert harness.run() == 1
    record = harness.runs[-1]
    assert record["outcome"] == "failure" and "crashed in GAMEPLAN_LOADING: KeyError" in record["reason"]
    assert harness.notifier.alerts[-1][0] == "critical"


def test_an_interrupted_previous_run_is_recorded_not_lost(harness):
    state = harness.config.state_dir
    state.mkdir(parents=True, exist_ok=True)
    (state / CHECKPOINT_FILE).write_text(json.dumps(
        {"run_id": "dead1", "transitions": [{"from": "GATEWAY_STARTING", "to": "GATEWAY_WAITING"}]}))
    assert harness.run() == 0
    first, second = harness.runs
    assert first["run_id"] == "dead1" and first["outcome"] == "interrupted"
    assert "GATEWAY_WAITING" in first["reason"]
    assert second["outcome"] == "success"


def test_every_transition_is_journaled_with_time_spent(harness):
    harness.run()
    transitions = harness.runs[-1]["transitions"]
    assert len(transitions) == len(HAPPY_PATH) - 1
    assert all(t["seconds"] >= 0 and t["at"].endswith("+00:00") for t in transitions)


def test_secrets_never_reach_the_journal_or_alerts(harness):
    token = "CANARYtoken-abcdef123456"
    harness.configure(discord_webhook_url=f"https://discord.com/api/webhooks/1234/{token}",
                      child_env={"TWS_PASSWORD": "CANARYpassw0rd"})
    harness.docker.ping_error = DockerError(DAEMON_DOWN, f"cannot reach {token} with CANARYpassw0rd")
    assert harness.run() == 1
    text = (harness.config.state_dir / RUNS_FILE).read_text() + repr(harness.notifier.alerts)
    assert token not in text and "CANARYpassw0rd" not in text and "***" in text


def test_a_deliberate_strategy_c_plan_is_used_as_written_and_exits_2(harness):
    write_plan(harness.config.gameplan_path, strategy="C", symbols=[], position_size_multiplier=0.0)
    assert harness.run() == 2
    assert "GAMEPLAN_INVALID" not in harness.path and "GAMEPLAN_MISSING" not in harness.path
    assert harness.bot_gameplan() == harness.config.gameplan_path  # the analyst's plan, not the emergency one
    assert not harness.config.emergency_gameplan_path.exists()
    assert not any("Strategy C deployed" in m for _, m in harness.notifier.alerts)
