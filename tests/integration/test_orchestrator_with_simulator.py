"""The whole orchestrator for real against the in-process gateway simulator: real TWS handshake,
real bot process (ib_async), real gameplan files and journal; only Docker is faked here
(real containers are tests/integration/test_zero_touch_startup.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil

from src.gameplan.generator import generate_strategy_c
from src.gameplan.loader import evaluate_gameplan
from src.notifications.dispatch import AlertQueue
from src.orchestration.machine import bot as botproc
from src.orchestration.machine.bot import running_bot
from src.orchestration.config import REPO_ROOT, OrchestrationConfig
from src.orchestration.health import GatewayHealthChecker
from src.core.journal import RunJournal, read_runs
from src.orchestration.startup import Services, StartupOrchestrator
from src.core.statefiles import PLAN_FILE, READY_FILE
from testkit.plans import write_plan
from testkit.repo_env import hide_repo_dotenv
from tests.helpers.ci import skip_or_fail
from tests.helpers.fakes import RUNNING, FakeDocker, RecordingNotifier
from tests.helpers.simulator import running_simulator


def orchestrate(tmp_path: Path, port: int, **changes) -> tuple[int, OrchestrationConfig, RecordingNotifier]:
    settings = dict(
        gateway_host="127.0.0.1", gateway_port=port, state_dir=tmp_path / "state", log_dir=tmp_path / "logs",
        emergency_gameplan_path=tmp_path / "state" / "emergency.json", gateway_health_timeout=10,
        bot_ready_timeout=20, child_env={"PATH": os.environ["PATH"]})
    config = OrchestrationConfig(**{**settings, **changes})
    notifier = RecordingNotifier()
    services = Services(
        docker=FakeDocker(state=RUNNING),  # type: ignore[arg-type]
        health=GatewayHealthChecker("127.0.0.1", port, 2.0, client_id=config.gateway_health_client_id),
        alerts=AlertQueue(notifier), evaluate_gameplan=evaluate_gameplan,
        generate_strategy_c=generate_strategy_c, start_bot=botproc.start_bot, running_bot=botproc.running_bot)
    code = StartupOrchestrator(config, services, RunJournal(config.state_dir)).run()
    return code, config, notifier


def test_valid_gameplan_bot_connects_through_ib_async_and_exit_0(tmp_path, bot_reaper):
    bot_reaper(tmp_path / "state")
    plan = write_plan(tmp_path / "today.json")
    with running_simulator(login_delay=0.5) as sim:
        code, config, notifier = orchestrate(tmp_path, sim.port, gameplan_path=plan)
        assert code == 0
        ready = json.loads((config.state_dir / READY_FILE).read_text())
        pid = running_bot(config.state_dir)
        assert pid == ready["pid"] and psutil.Process(pid).is_running()
        assert ready["strategy"] == "A" and ready["trading_authorized"] is True
        assert ready["accounts"] == ["DU123456", "DU234567"]
        run = list(read_runs(config.state_dir))[-1]
        assert run["outcome"] == "success" and run["bot_pid"] == pid
        assert "Bot READY" in Path(run["bot_log"]).read_text()


def test_no_gameplan_runs_the_bot_under_strategy_c_and_exit_2(tmp_path, bot_reaper):
    bot_reaper(tmp_path / "state")
    with running_simulator() as sim:
        code, config, notifier = orchestrate(tmp_path, sim.port, gameplan_path=None)
        assert code == 2
        ready = json.loads((config.state_dir / READY_FILE).read_text())
    assert ready["strategy"] == "C" and ready["trading_authorized"] is False
    snapshot = config.state_dir / PLAN_FILE  # the bot runs the exact bytes of the Strategy C plan written
    assert ready["gameplan"] == str(snapshot) and snapshot.read_bytes() == config.emergency_gameplan_path.read_bytes()
    assert any("Strategy C deployed" in message for _, message in notifier.alerts)


def test_bot_that_crashes_at_start_fails_with_its_last_lines(tmp_path):
    crash = (sys.executable, "-c", "import sys; print('bot: SyntaxError in strategy.py line 3'); sys.exit(3)")
    with running_simulator() as sim:
        code, config, notifier = orchestrate(tmp_path, sim.port, bot_command=crash)
    assert code == 1
    run = list(read_runs(config.state_dir))[-1]
    assert "exited with code 3" in run["reason"] and "SyntaxError in strategy.py line 3" in run["reason"]
    assert notifier.alerts[-1][0] == "critical" and "SyntaxError in strategy.py" in notifier.alerts[-1][1]


def test_bot_that_never_gets_ready_is_stopped_not_left_behind(tmp_path):
    hang = (sys.executable, "-c", "import time; print('stuck', flush=True); time.sleep(60)")
    with running_simulator() as sim:
        code, config, _ = orchestrate(tmp_path, sim.port, bot_command=hang, bot_ready_timeout=1.0)
    assert code == 1
    run = list(read_runs(config.state_dir))[-1]
    assert "not ready within BOT_READY_TIMEOUT=1 s" in run["reason"]
    assert not psutil.pid_exists(run["bot_pid"]) or psutil.Process(run["bot_pid"]).status() == psutil.STATUS_ZOMBIE


def test_second_run_finds_the_bot_running_and_changes_nothing(tmp_path, bot_reaper):
    bot_reaper(tmp_path / "state")
    with running_simulator() as sim:
        first, config, _ = orchestrate(tmp_path, sim.port, gameplan_path=None)
        pid = running_bot(config.state_dir)
        second, _, notifier = orchestrate(tmp_path, sim.port, gameplan_path=None)
        assert (first, second) == (2, 1)
        assert running_bot(config.state_dir) == pid
    run = list(read_runs(config.state_dir))[-1]
    assert f"already running (PID {pid})" in run["reason"] and notifier.alerts == []


def run_cli(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"STATE_DIR": str(tmp_path / "state"), "LOG_DIR": str(tmp_path / "logs"), "HOME": str(tmp_path),
            "DOCKER_WAIT_TIMEOUT": "0"}
    return subprocess.run([sys.executable, "-m", "src.orchestration.startup"], cwd=tmp_path,
                          env=hide_repo_dotenv({**base, "PYTHONPATH": str(REPO_ROOT), **env}), capture_output=True,
                          text=True, timeout=60)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "[ERROR]" in line]


def test_cli_without_docker_on_path_exits_1_with_one_line(tmp_path):
    result = run_cli(tmp_path, {"PATH": str(tmp_path / "empty-bin")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = error_lines(result.stderr)
    assert "Startup failed: Docker unavailable: 'docker' not found on PATH" in line
    assert list(read_runs(tmp_path / "state"))[-1]["outcome"] == "failure"


def test_cli_with_a_docker_daemon_that_is_not_running_exits_1_with_one_line(tmp_path):
    if shutil.which("docker") is None:
        skip_or_fail("needs a docker CLI binary (no daemon): bash scripts/provision-docker.sh")
    result = run_cli(tmp_path, {"PATH": os.environ["PATH"], "DOCKER_HOST": f"unix://{tmp_path}/dead.sock"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = error_lines(result.stderr)
    assert "Docker unavailable: the Docker daemon is not running or not reachable" in line
