"""python -m src.orchestration.ops.shutdown: a real bot against the simulator, a bot that ignores
SIGTERM, the orchestrator lock, the journal, the alert, and the Gateway (fake and real Docker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from src.orchestration.machine.bot import running_bot
from src.orchestration.config import REPO_ROOT, OrchestrationConfig
from src.orchestration.gateway.docker import DockerError
from src.core.journal import read_runs
from src.core.locks import PidLock
from src.core.sdnotify import NotifyListener
from src.orchestration.machine.bot import record_process
from src.orchestration.ops.shutdown import shutdown, stop_gateway
from src.core.statefiles import BOT_PID_FILE, ORCHESTRATOR_LOCK, READY_FILE
from testkit.docker import container_state
from testkit.gateway import COMPOSE_DIR
from testkit.plans import write_plan
from testkit.repo_env import hide_repo_dotenv
from tests.bot.test_bot_runtime import start_bot, wait_ready
from tests.helpers.fakes import EXITED, RUNNING, RecordingNotifier
from tests.helpers.simulator import running_simulator
from tests.integration.docker_env import require_docker, simulator_gateway


def cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_WEBHOOK_URL"}
    return subprocess.run([sys.executable, "-m", "src.orchestration.ops.shutdown", *args], cwd=REPO_ROOT,
                          env=hide_repo_dotenv({**env, "STATE_DIR": str(state)}), capture_output=True, text=True,
                          timeout=60, check=False)


def config(tmp_path: Path, **changes: object) -> OrchestrationConfig:
    changes.setdefault("child_env", {})
    return OrchestrationConfig(state_dir=tmp_path / "state", log_dir=tmp_path / "logs", **changes)


def stubborn_bot(state: Path) -> subprocess.Popen[str]:
    """A stand-in bot: holds state/bot.pid, writes its readiness record, ignores SIGTERM."""
    code = textwrap.dedent(f"""
        import json, os, signal, sys, time
        from pathlib import Path
        from src.core.locks import PidLock
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        state = Path({str(state)!r})
        PidLock(state / {BOT_PID_FILE!r}).acquire()
        (state / {READY_FILE!r}).write_text(json.dumps({{"pid": os.getpid()}}))
        print("holding the lock", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "holding the lock\n"
    record_process(state, proc, [sys.executable])  # as the orchestrator records the bot it starts
    return proc


class FakeDocker:
    """The Gateway container as `inspect` and `run` see it."""

    def __init__(self, state=RUNNING, fail: DockerError | None = None) -> None:
        self.container = "ibkr-gateway"
        self.state, self.fail = state, fail
        self.commands: list[list[str]] = []

    def inspect(self):
        return self.state

    def stop(self, stop_timeout=30):
        self.commands.append(["stop", str(stop_timeout)])
        if self.fail:
            raise self.fail
        self.state = EXITED


# --- the bot ------------------------------------------------------------------------------------------


def test_real_bot_is_stopped_gracefully_and_a_second_run_finds_nothing(tmp_path):
    state = tmp_path / "state"
    with running_simulator() as sim, NotifyListener() as listener:
        bot = start_bot(sim.port, write_plan(tmp_path / "plan.json"), state, notify=listener.name)
        try:
            wait_ready(listener)
            first = cli(state, "--timeout", "10")
            bot_out, _ = bot.communicate(timeout=10)
        finally:
            bot.kill()
    assert first.returncode == 0, first.stdout + first.stderr
    assert bot.returncode == 0 and "Bot stopped cleanly" in bot_out
    assert f"shutdown: OK: bot (PID {bot.pid}) stopped cleanly in" in first.stdout
    assert running_bot(state) is None and not (state / READY_FILE).exists()

    second = cli(state)
    assert second.returncode == 0, second.stderr
    assert "shutdown: OK: nothing to stop: bot not running" in second.stdout

    runs = list(read_runs(state))
    assert [(r["outcome"], r["exit_code"]) for r in runs] == [("shutdown", 0), ("shutdown", 0)]
    assert runs[0]["bot_pid"] == bot.pid and runs[0]["steps"][0]["acted"] is True
    assert runs[1]["reason"] == "nothing to stop: bot not running" and runs[1]["alerts"] == []


def test_bot_ignoring_sigterm_is_killed_after_the_timeout(tmp_path):
    cfg = config(tmp_path)
    stubborn = stubborn_bot(cfg.state_dir)
    notifier = RecordingNotifier()
    try:
        started = time.monotonic()
        report = shutdown(cfg, gateway=False, timeout=0.5, notifier=notifier)
        elapsed = time.monotonic() - started
        assert stubborn.wait(timeout=5) == -signal.SIGKILL
    finally:
        stubborn.kill()
        stubborn.wait()
    assert report.exit_code == 0 and elapsed >= 0.5
    assert report.steps[0].detail == f"bot (PID {stubborn.pid}) ignored SIGTERM for 0.5 s: killed (SIGKILL)"
    assert not (cfg.state_dir / READY_FILE).exists()  # the killed bot's record would look live
    assert notifier.levels() == ["info"]
    assert list(read_runs(cfg.state_dir))[-1]["bot_pid"] == stubborn.pid


def test_nothing_running_is_success_without_an_alert(tmp_path):
    notifier = RecordingNotifier()
    report = shutdown(config(tmp_path), gateway=False, notifier=notifier)
    assert report.exit_code == 0 and report.nothing_to_stop and notifier.alerts == []


def test_a_running_orchestrator_is_never_raced(tmp_path):
    cfg = config(tmp_path)
    notifier = RecordingNotifier()
    stubborn = stubborn_bot(cfg.state_dir)
    try:
        with PidLock(cfg.state_dir / ORCHESTRATOR_LOCK):
            report = shutdown(cfg, gateway=True, notifier=notifier, docker=FakeDocker())
            done = cli(cfg.state_dir)
        assert running_bot(cfg.state_dir) == stubborn.pid  # untouched
    finally:
        stubborn.kill()
        stubborn.wait()
    assert report.exit_code == 1 and [s.name for s in report.steps] == ["orchestrator"]
    assert f"an orchestrator is running (PID {os.getpid()})" in report.summary()
    assert notifier.levels() == ["error"]
    assert done.returncode == 1 and f"(PID {os.getpid()})" in done.stdout
    assert [r["exit_code"] for r in read_runs(cfg.state_dir)] == [1, 1]


def test_configuration_error_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "src.orchestration.ops.shutdown"], cwd=REPO_ROOT,
                          env=hide_repo_dotenv({**os.environ, "STATE_DIR": str(tmp_path), "GATEWAY_PORT": "99999"}),
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1
    assert done.stderr == "shutdown: configuration error: GATEWAY_PORT='99999' is invalid: " \
                          "expected an integer from 1 to 65535\n"


@pytest.mark.parametrize(("args", "complaint"), [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--timeout", "0"], "argument --timeout: '0' is not a number of seconds > 0 and <= 3600"),
])
def test_a_usage_error_is_one_line_and_exit_1_never_2(args, complaint):
    """Exit 2 means Strategy C across the project; shutdown's usage errors are failures like any other."""
    done = subprocess.run([sys.executable, "-m", "src.orchestration.ops.shutdown", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"python -m src.orchestration.ops.shutdown: error: {complaint} (see --help)\n"


# --- the Gateway ----------------------------------------------------------------------------------------


def test_gateway_is_stopped_with_docker_stop(tmp_path):
    docker, notifier = FakeDocker(), RecordingNotifier()
    report = shutdown(config(tmp_path), gateway=True, notifier=notifier, docker=docker)
    assert report.exit_code == 0
    assert docker.commands == [["stop", "90"]]  # tidy (IBC's STOP first: DockerClient.stop), 90 s at most
    assert report.summary() == "bot not running; Gateway container ibkr-gateway stopped"
    assert notifier.levels() == ["info"]


@pytest.mark.parametrize(("state", "detail"), [
    (None, "no Gateway container named ibkr-gateway"),
    (EXITED, "Gateway container ibkr-gateway already stopped (exited (exit code 137))"),
])
def test_absent_or_stopped_gateway_is_left_alone(state, detail):
    docker = FakeDocker(state=state)
    step = stop_gateway(docker, 5)
    assert (step.stopped, step.acted, step.detail) == (True, False, detail)
    assert docker.commands == []


def test_gateway_that_cannot_be_stopped_fails_with_an_error_alert(tmp_path):
    docker = FakeDocker(fail=DockerError("timeout", "'docker stop -t' did not answer within 30 s"))
    notifier = RecordingNotifier()
    report = shutdown(config(tmp_path), gateway=True, notifier=notifier, docker=docker)
    assert report.exit_code == 1
    assert report.steps[-1].detail == ("Gateway container ibkr-gateway not stopped: "
                                       "'docker stop -t' did not answer within 30 s")
    assert notifier.levels() == ["error"]
    record = list(read_runs(config(tmp_path).state_dir))[-1]
    assert record["exit_code"] == 1 and record["gateway_requested"] is True


@pytest.mark.docker
def test_real_gateway_container_is_stopped(tmp_path):
    require_docker()
    with simulator_gateway() as gw:
        cfg = config(tmp_path, gateway_container=gw.container, docker_compose_dir=COMPOSE_DIR,
                     child_env=gw.compose_env())
        first = shutdown(cfg, gateway=True, notifier=RecordingNotifier())
        assert first.exit_code == 0, first.summary()
        assert container_state(gw.container)["Status"] == "exited"
        second = shutdown(cfg, gateway=True, notifier=RecordingNotifier())
    assert first.steps[-1].detail == f"Gateway container {gw.container} stopped"
    assert second.exit_code == 0 and second.nothing_to_stop
    assert second.steps[-1].detail.startswith(f"Gateway container {gw.container} already stopped (exited")

