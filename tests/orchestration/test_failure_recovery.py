"""Failure recovery: waiting for Docker, the one restart, 2FA-aware login handling, signals, supervision."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from src.orchestration import exitcodes
from src.orchestration.gateway.docker import DAEMON_DOWN, PERMISSION, DockerError
from src.core.sdnotify import NotifyListener
from src.core.statefiles import CHECKPOINT_FILE
from tests.helpers.fakes import RUNNING, ContainerState, probe

TWOFA = "2026-11-25 08:00:01 IBC: Second Factor Authentication initiated"
DONE = "2026-11-25 08:00:09 IBC: Login has completed"


# --- Docker not there yet ---------------------------------------------------------------------

def test_docker_that_comes_up_within_docker_wait_timeout_is_waited_for(harness):
    harness.configure(docker_wait_timeout=10.0)
    answers = iter([DockerError(DAEMON_DOWN, "daemon down"), DockerError(DAEMON_DOWN, "daemon down")])

    def ping(timeout=10.0):
        harness.docker.calls.append("ping")
        error = next(answers, None)
        if error:
            raise error
        return "28.0"

    harness.docker.ping = ping
    assert harness.run() == 0
    assert harness.docker.calls.count("ping") == 3  # asked until it answered: two refusals, then the version
    # two polls a second apart: not at once, and not one long sleep towards the 10 s DOCKER_WAIT_TIMEOUT
    assert 1.5 <= harness.runs[-1]["docker_wait_seconds"] < 2 + 4


def test_docker_that_never_comes_up_fails_at_docker_wait_timeout(harness):
    harness.configure(docker_wait_timeout=1.5)
    harness.docker.ping_error = DockerError(DAEMON_DOWN, "the Docker daemon is not running")
    assert harness.run() == 1
    assert harness.path == ["INITIALIZING", "DOCKER_UNAVAILABLE", "FAILURE"]
    assert harness.docker.calls.count("ping") >= 2  # it kept asking until the deadline
    # the deadline is the behaviour: kept, not cut short, and not overrun by more than a poll (1 s)
    assert 1.5 <= harness.runs[-1]["docker_wait_seconds"] < 1.5 + 1.0


def test_permission_denied_is_not_waited_for(harness):
    harness.configure(docker_wait_timeout=30.0)
    harness.docker.ping_error = DockerError(PERMISSION, "permission denied on the Docker socket")
    assert harness.run() == 1
    assert harness.docker.calls.count("ping") == 1  # asked once: waiting cannot fix a permission
    assert harness.runs[-1]["docker_wait_seconds"] < 10  # not the 30 s DOCKER_WAIT_TIMEOUT
    assert "permission denied" in harness.runs[-1]["reason"]


# --- the Gateway's login, read from IBC's log before any restart -------------------------------

def test_pending_2fa_is_never_restarted_the_operator_is_asked_and_approval_is_awaited(harness):
    harness.configure(gateway_health_timeout=0.3, twofa_wait_timeout=5.0)
    harness.docker.log = TWOFA

    def approved_once_asked(n):  # the operator approves after the alert, however long the run took to send it
        asked = any(level == "critical" for level, _ in harness.notifier.alerts)
        return probe() if asked else probe("closed_before_version")

    harness.health.script = approved_once_asked
    assert harness.run() == 0
    assert "restart" not in harness.docker.calls and "start" not in harness.docker.calls
    critical = [m for level, m in harness.notifier.alerts if level == "critical"]
    assert len(critical) == 1 and "APPROVE THE IBKR LOGIN ON YOUR PHONE" in critical[0]
    assert harness.path.count("GATEWAY_WAITING") == 2 and harness.path[-1] == "SUCCESS"


def test_2fa_never_approved_fails_without_any_restart(harness):
    harness.configure(gateway_health_timeout=0.3, twofa_wait_timeout=0.4)
    harness.docker.log = TWOFA
    harness.health.script = lambda n: probe("closed_before_version")
    assert harness.run() == 1
    assert "restart" not in harness.docker.calls
    assert harness.path[-2:] == ["GATEWAY_LOGIN_FAILED", "FAILURE"]
    assert "second-factor approval never came" in harness.runs[-1]["reason"]


def test_a_completed_login_after_2fa_is_not_pending(harness):
    harness.configure(gateway_health_timeout=0.3)
    harness.docker.log = f"{TWOFA}\n{DONE}\n"
    harness.health.script = lambda n: probe() if harness.docker.calls.count("restart") else probe("no_reply")
    assert harness.run() == 0
    assert harness.docker.calls.count("restart") == 1


@pytest.mark.parametrize(("log", "state", "expected"), [
    ("IBC: Login failed: invalid username or password", None, "IBKR rejected the login"),
    ("IBC: Existing session detected", None, "another session is logged in"),
    ("", ContainerState("exited", 87, None, "", False), "second-factor approval timed out (IBC exit 87)"),
    ("", ContainerState("exited", 88, None, "", False), "login dialog never appeared (IBC exit 88)"),
])
def test_login_problems_no_restart_can_fix_fail_at_once(harness, log, state, expected):
    harness.configure(gateway_health_timeout=0.3)
    harness.docker.log = log

    def script(n):
        if state is not None and n == 2:  # IBC gives up mid-wait: the container exits with its code
            harness.docker.emit("die", state)
        return probe("closed_before_version")

    harness.health.script = script
    assert harness.run() == 1
    assert "restart" not in harness.docker.calls
    assert harness.path[-2:] == ["GATEWAY_LOGIN_FAILED", "FAILURE"]
    assert expected in harness.runs[-1]["reason"] and "NOT restarted" in harness.runs[-1]["reason"]
    assert harness.notifier.alerts[-1][0] == "critical" and expected in harness.notifier.alerts[-1][1]


def test_login_blocked_under_supervise_exits_with_the_no_retry_code(harness):
    harness.configure(gateway_health_timeout=0.3)
    harness.docker.log = "IBC: Login failed"
    harness.health.script = lambda n: probe("closed_before_version")
    orchestrator = harness.orchestrator()
    orchestrator.supervise = True
    assert orchestrator.run() == exitcodes.LOGIN_BLOCKED


def test_the_log_is_read_from_the_containers_current_start_only(harness):
    harness.configure(gateway_health_timeout=0.3)
    harness.docker.state = ContainerState("running", 0, None, "2026-11-25T13:30:00.123456789Z", True)
    harness.health.script = lambda n: probe("no_reply")
    seen = []
    harness.docker.logs_since = lambda since, tail=5000: seen.append(since) or ""
    harness.run()
    # before the restart: since the original start; after it: since the new start, never older lines
    assert seen == ["2026-11-25T13:30:00.123456789Z", RUNNING.started_at]


# --- signals ------------------------------------------------------------------------------------

def test_sigterm_during_the_gateway_wait_ends_with_exit_1_and_says_where(harness):
    harness.configure(gateway_health_timeout=30.0)
    harness.health.script = lambda n: probe("closed_before_version")
    orchestrator = harness.orchestrator()
    orchestrator.services.health.script = lambda n: (
        orchestrator.handle_signal(signal.SIGTERM) if n == 3 else probe("closed_before_version"))
    assert orchestrator.run() == 1
    record = harness.runs[-1]
    assert record["reason"].startswith("interrupted by SIGTERM in state GATEWAY_WAITING")
    assert not (harness.config.state_dir / CHECKPOINT_FILE).exists()
    harness.health.script = lambda n: probe()
    assert harness.run() == 0  # the lock was released: the next run works


# --- supervise mode -----------------------------------------------------------------------------

def supervised(harness, bot_command: list[str], monkeypatch, listener: NotifyListener):
    monkeypatch.setenv("NOTIFY_SOCKET", listener.name)
    proc = subprocess.Popen(bot_command)
    harness.bot_process = proc
    orchestrator = harness.orchestrator()
    orchestrator.supervise = True
    return orchestrator, proc


def test_supervise_says_ready_then_stops_the_bot_gracefully_on_sigterm(harness, monkeypatch):
    harness.configure(supervise_stop_gateway=True)
    with NotifyListener() as listener:
        orchestrator, bot = supervised(harness, [sys.executable, "-c", "import time; time.sleep(60)"],
                                       monkeypatch, listener)
        result: list[int] = []
        thread = threading.Thread(target=lambda: result.append(orchestrator.run()))
        thread.start()
        ready = listener.wait_for("READY", time.monotonic() + 10)
        assert ready is not None and "bot PID" in ready["STATUS"]
        assert bot.poll() is None and thread.is_alive()  # still supervising
        orchestrator.handle_signal(signal.SIGTERM)
        thread.join(15)
        stopping = listener.wait_for("STOPPING", time.monotonic() + 2)
    assert result == [0] and stopping is not None
    assert bot.poll() == -signal.SIGTERM
    assert "stop" in harness.docker.calls  # SUPERVISE_STOP_GATEWAY
    startup_record, supervise_record = harness.runs[-2:]
    assert startup_record["outcome"] == "success"
    assert supervise_record["outcome"] == "stopped" and "stopped by SIGTERM" in supervise_record["reason"]


def test_supervise_exits_1_when_the_bot_dies(harness, monkeypatch):
    with NotifyListener() as listener:
        dies = [sys.executable, "-c", "import time, sys; time.sleep(0.5); sys.exit(3)"]
        orchestrator, bot = supervised(harness, dies, monkeypatch, listener)
        started = time.monotonic()
        assert orchestrator.run() == 1
    assert bot.poll() == 3  # the supervisor ended because its bot did
    assert time.monotonic() - started < 10  # noticed when it exits (0.5 s in), not by a slow poll
    record = harness.runs[-1]
    assert record["outcome"] == "bot_died" and "exited unexpectedly with code 3" in record["reason"]
    assert harness.notifier.alerts[-1][0] == "critical"


# --- under --supervise, a start-up failed inside IBKR's reset window exits after it ----------------

def test_hold_until_waits_past_the_window_and_keeps_systemd_from_timing_out(monkeypatch):
    from datetime import UTC, datetime, timedelta

    from src.orchestration.machine.engine import HOLD_MARGIN, hold_until
    from src.core.sdnotify import NotifyListener

    clock = [datetime(2026, 11, 25, 5, 0, tzinfo=UTC)]  # 00:00 New York
    until = clock[0] + timedelta(minutes=45)
    slept: list[float] = []
    said: list[dict] = []

    with NotifyListener() as listener:
        def sleep(seconds: float) -> None:
            said.append(listener.receive(1))  # what systemd would read before the hold sleeps
            slept.append(seconds)
            clock[0] += timedelta(seconds=seconds)

        monkeypatch.setenv("NOTIFY_SOCKET", listener.name)
        hold_until(until, status="waiting for IBKR's reset window to end", margin=HOLD_MARGIN, now=lambda: clock[0],
                   sleep=sleep, stopped=lambda: False, then=630.0)
        after = listener.receive(1)  # what systemd reads once the hold is over
    assert clock[0] == until + timedelta(seconds=HOLD_MARGIN)  # exits once the window (and the margin) is over
    # what follows the hold has its whole budget (a start-up after a long GATEWAY_LOGIN_HOURS hold once had 60 s)
    assert after is not None and int(after["EXTEND_TIMEOUT_USEC"]) == 630_000_000
    assert len(said) == len(slept) > 1
    pairs = zip(said, slept, strict=True)
    assert all(m is not None and int(m["EXTEND_TIMEOUT_USEC"]) > s * 1_000_000 for m, s in pairs)


def test_a_supervised_start_up_failed_in_a_reset_window_holds_until_it_ends(harness, monkeypatch):
    from datetime import UTC, datetime

    from src.orchestration.machine import engine as machine
    from tests.helpers.fakes import EXITED

    held = []
    monkeypatch.setattr(machine, "hold_until", lambda until, **kwargs: held.append(until))
    harness.now = datetime(2026, 11, 25, 4, 50, tzinfo=UTC)  # 23:50 New York: the daily window
    harness.docker.state = EXITED
    harness.docker.log = "2026-11-24 23:49:00:000 IBC: Login failed"
    orchestrator = harness.orchestrator()
    orchestrator.supervise = True
    assert orchestrator.run() == 1 and harness.docker.calls.count("start") == 0
    assert held == [datetime(2026, 11, 25, 5, 45, tzinfo=UTC)]  # 00:45 New York


def test_the_start_ups_one_recovery_of_a_logged_in_gateway_is_ibcs_own_restart_first(harness):
    """A Gateway that logged in but whose API stopped answering: IBC's RESTART (no login, no 2FA push) before
    the container restart; the run then goes on as usual."""
    from tests.helpers.fakes import probe

    harness.configure(gateway_health_timeout=0.3, gateway_health_retry_interval=0.02)
    harness.docker.log = "2026-12-01 14:59:00:000 IBC: Login has completed\n"
    harness.docker.ibc_answers = ["OK RESTART in progress"]
    harness.health.script = lambda n: probe() if "ibc:RESTART" in harness.docker.calls else probe("refused")
    assert harness.run() == 0
    assert "ibc:RESTART" in harness.docker.calls
    assert not {"restart", "start", "compose_up"} & set(harness.docker.calls)
    assert harness.runs[-1]["soft_restart"]["answer"] == "OK RESTART in progress"
    assert "GATEWAY_UNHEALTHY" in harness.path


def test_a_gateway_that_never_logged_in_gets_no_soft_restart(harness):
    from tests.helpers.fakes import probe

    harness.configure(gateway_health_timeout=0.3, gateway_health_retry_interval=0.02)
    harness.docker.ibc_answers = ["OK RESTART in progress"]
    harness.health.script = lambda n: probe() if "restart" in harness.docker.calls else probe("refused")
    assert harness.run() == 0
    assert "ibc:RESTART" not in harness.docker.calls and "restart" in harness.docker.calls
