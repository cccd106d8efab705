"""Zero-touch startup end to end against a real Docker Engine, real Compose v2 and the simulator container.

Every scenario runs the real CLI (`python -m src.orchestration.startup`) and asserts what an
operator sees: the exit code, the container's state, the `state/runs.jsonl` entry, the alerts a
local webhook received, the bot process and its readiness record. Numbers refer to spec §15.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from src.orchestration.bot import READY_FILE, running_bot
from src.orchestration.journal import read_runs
from tests.helpers.gameplans import write_plan
from tests.helpers.webhook_receiver import CANARY_TOKEN, HANG, WebhookReceiver, rate_limited, server_error
from tests.integration.conftest import stop_bot
from tests.integration.docker_env import (
    compose, container_for, container_state, docker, free_port, project_containers,
    require_docker, sim_compose_env, unique_project, wait_for_health,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.docker


@dataclass
class Run:
    code: int
    elapsed: float
    stderr: str
    record: dict
    alerts: list[str]

    @property
    def path(self) -> list[str]:
        transitions = self.record["transitions"]
        return ([transitions[0]["from"]] if transitions else []) + [t["to"] for t in transitions]

    def seconds_in(self, state: str) -> list[float]:
        return [t["seconds"] for t in self.record["transitions"] if t["from"] == state]


@dataclass
class Stack:
    """One test's world: a Compose project for the simulator Gateway, state/, logs/, a webhook."""

    tmp: Path
    hook: WebhookReceiver
    project: str = field(default_factory=unique_project)
    port: int = field(default_factory=free_port)
    sim: dict[str, object] = field(default_factory=lambda: {"login_delay": 1})

    @property
    def container(self) -> str:
        return container_for(self.project)

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    def compose_env(self) -> dict[str, str]:
        return sim_compose_env(self.project, self.port, **self.sim)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            **self.compose_env(),
            "PYTHONPATH": str(REPO_ROOT), "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(self.port),
            "GATEWAY_CONTAINER": self.container,
            "STATE_DIR": str(self.state_dir), "LOG_DIR": str(self.tmp / "logs"),
            "EMERGENCY_GAMEPLAN_PATH": str(self.state_dir / "emergency.json"),
            "GAMEPLAN_PATH": str(write_plan(self.tmp / "plans" / "today.json")),
            "GATEWAY_HEALTH_TIMEOUT": "20", "BOT_READY_TIMEOUT": "20",
            "DISCORD_WEBHOOK_URL": self.hook.url,
        }
        env.update(overrides)
        return {k: v for k, v in env.items() if v is not None}

    def orchestrate(self, timeout: float = 120, **overrides: str) -> Run:
        before = len(self.hook.received)
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "src.orchestration.startup"], cwd=self.tmp,
                                env=self.env(**overrides), capture_output=True, text=True, timeout=timeout)
        elapsed = time.monotonic() - started
        runs = list(read_runs(self.state_dir))
        alerts = [r.json["embeds"][0]["description"] for r in self.hook.received[before:] if r.json]
        return Run(result.returncode, elapsed, result.stderr, runs[-1] if runs else {}, alerts)

    def up(self, wait: bool = True) -> None:
        compose(self.compose_env(), "up", "-d", "--no-build", "--pull", "never")
        if wait:
            wait_for_health(self.container, 30)

    def down(self) -> None:
        compose(self.compose_env(), "down", "-v", "--remove-orphans", "-t", "3", check=False)
        left = project_containers(self.project)
        if left:
            docker("rm", "-f", *left, check=False)


@pytest.fixture
def stack(tmp_path):
    require_docker()
    with WebhookReceiver() as hook:
        world = Stack(tmp_path, hook)
        try:
            yield world
        finally:
            stop_bot(world.state_dir)
            world.down()
    assert project_containers(world.project) == [], "a test left a container behind"


def assert_bot_ready(stack: Stack, strategy: str) -> dict:
    record = json.loads((stack.state_dir / READY_FILE).read_text())
    pid = running_bot(stack.state_dir)
    assert pid == record["pid"] and psutil.Process(pid).is_running()
    assert record["strategy"] == strategy and record["accounts"] == ["DU123456", "DU234567"]
    return record


def started_at(stack: Stack) -> str:
    state = container_state(stack.container)
    assert state is not None
    return state["StartedAt"]


# --- §15.1 Gateway --------------------------------------------------------------------------

def test_1_absent_container_is_created_and_the_bot_connects_through_ib_async(stack):
    assert container_state(stack.container) is None
    run = stack.orchestrate()
    assert run.code == 0, run.stderr
    state = container_state(stack.container)
    assert state["Status"] == "running" and state["Health"]["Status"] == "healthy"
    assert run.record["outcome"] == "success" and run.record["gameplan"]["verdict"] == "ok"
    record = assert_bot_ready(stack, "A")
    assert record["trading_authorized"] is True and run.record["bot_pid"] == record["pid"]
    assert any("created and started" in a for a in run.alerts)
    assert any("Trading system up" in a for a in run.alerts)


def test_2_stopped_container_is_started(stack):
    stack.up()
    docker("stop", "-t", "2", stack.container)
    assert container_state(stack.container)["Status"] == "exited"
    run = stack.orchestrate()
    assert run.code == 0, run.stderr
    assert container_state(stack.container)["Status"] == "running"
    assert any("started (was exited)" in a for a in run.alerts)


def test_3_never_healthy_restarts_once_then_fails_within_the_deadlines(stack):
    stack.sim = {"login_delay": 3600}  # socat-like: the port accepts, then closes; never logged in
    timeout = 4.0
    run = stack.orchestrate(GATEWAY_HEALTH_TIMEOUT=str(timeout))
    assert run.code == 1
    assert run.path[-2:] == ["GATEWAY_TIMEOUT", "FAILURE"] and run.path.count("GATEWAY_WAITING") == 2
    waits = run.seconds_in("GATEWAY_WAITING")
    assert all(timeout - 0.1 <= w <= timeout + 1.0 for w in waits), waits
    assert "closed_before_version" in run.record["reason"] and "after one restart" in run.record["reason"]
    assert running_bot(stack.state_dir) is None and not (stack.state_dir / READY_FILE).exists()
    assert any("restarted the Gateway container" in a for a in run.alerts)
    assert "Startup failed" in run.alerts[-1]


def test_5_docker_daemon_unreachable_fails_with_its_message(stack, tmp_path):
    run = stack.orchestrate(DOCKER_HOST=f"unix://{tmp_path}/no-daemon.sock")
    assert run.code == 1
    assert run.path == ["INITIALIZING", "DOCKER_UNAVAILABLE", "FAILURE"]
    assert "the Docker daemon is not running or not reachable" in run.record["reason"]
    assert "Traceback" not in run.stderr and "Docker unavailable" in run.alerts[-1]


def test_16_healthy_just_before_the_deadline_is_success(stack):
    stack.sim = {"login_delay": 5}
    run = stack.orchestrate(GATEWAY_HEALTH_TIMEOUT="6")
    assert run.code == 0, run.stderr
    assert "GATEWAY_UNHEALTHY" not in run.path


def test_17_container_killed_mid_wait_is_noticed_within_seconds_and_restarted_once(stack):
    stack.sim = {"login_delay": 4}
    stack.up(wait=False)
    killed = threading.Event()

    def kill_soon() -> None:
        time.sleep(1.5)
        docker("kill", stack.container)
        killed.set()

    threading.Thread(target=kill_soon, daemon=True).start()
    run = stack.orchestrate(GATEWAY_HEALTH_TIMEOUT="60")
    assert killed.is_set() and run.code == 0, run.stderr
    assert run.path.count("GATEWAY_UNHEALTHY") == 1
    first_wait = run.seconds_in("GATEWAY_WAITING")[0]
    assert first_wait < 1.5 + 2.0, first_wait  # noticed at once, not at the 60 s deadline
    assert any("is exited" in a and "restarted the Gateway container" in a for a in run.alerts)


def test_a_container_whose_name_merely_contains_the_gateways_is_not_the_gateway(stack):
    decoy = f"{stack.container}-old"
    docker("create", "--name", decoy, "--label", f"com.docker.compose.project={stack.project}",
           "ibkr-gateway-simulator:local")
    try:
        run = stack.orchestrate()
        assert run.code == 0, run.stderr
        assert any("created and started" in a for a in run.alerts)  # the decoy was not taken for it
        assert container_state(decoy)["Status"] == "created"  # and was left alone
    finally:
        docker("rm", "-f", decoy, check=False)


# --- §15.2 gameplan: one Gateway, many runs ---------------------------------------------------

@pytest.mark.parametrize("case", ["missing", "invalid", "quarantined", "not_configured", "stale"])
def test_6_to_9_doubtful_gameplan_runs_strategy_c_and_exits_2(stack, case):
    stack.up()
    plan = stack.tmp / "plans" / "doubtful.json"
    if case == "invalid":
        plan.parent.mkdir(parents=True, exist_ok=True)
        plan.write_text('{"strategy": "A", "symbols": [')
    elif case == "quarantined":
        write_plan(plan, data_quality={"quarantine_active": True, "stale_fields": ["vix"],
                                       "last_verified": "2026-01-01T00:00:00Z"})
    elif case == "stale":
        write_plan(plan, date="2024-05-06")
    run = stack.orchestrate(GAMEPLAN_PATH="" if case == "not_configured" else str(plan))
    assert run.code == 2, run.stderr
    assert run.record["outcome"] == "strategy_c" and run.record["gameplan"]["verdict"] == case
    assert_bot_ready(stack, "C")
    emergency = json.loads((stack.state_dir / "emergency.json").read_text())
    assert emergency["strategy"] == "C" and emergency["position_size_multiplier"] == 0
    assert any("Strategy C deployed" in a and case in a for a in run.alerts)


# --- §15.3 / §15.5 bot ---------------------------------------------------------------------------

def test_10_bot_crashing_at_start_fails_with_its_last_log_lines(stack):
    stack.up()
    crash = f"{sys.executable} -c \"import sys; print('strategy.py line 7: SyntaxError'); sys.exit(1)\""
    run = stack.orchestrate(BOT_COMMAND=crash)
    assert run.code == 1
    assert run.path[-2:] == ["BOT_START_FAILED", "FAILURE"]
    assert "strategy.py line 7: SyntaxError" in run.record["reason"]
    assert "strategy.py line 7: SyntaxError" in run.alerts[-1]


def test_11_14_15_second_run_finds_everything_up_and_touches_nothing(stack):
    first = stack.orchestrate()
    assert first.code == 0, first.stderr
    pid, gateway_started = running_bot(stack.state_dir), started_at(stack)
    second = stack.orchestrate()
    assert second.code == 1 and second.elapsed < 5
    assert f"already running (PID {pid})" in second.record["reason"]
    assert running_bot(stack.state_dir) == pid and started_at(stack) == gateway_started
    assert second.alerts == []  # nobody needs to act


def test_two_orchestrators_started_at_once_one_runs_the_other_exits_1(stack):
    stack.sim = {"login_delay": 2}
    env = stack.env()
    procs = [subprocess.Popen([sys.executable, "-m", "src.orchestration.startup"], cwd=stack.tmp, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    started = time.monotonic()
    refused_at = None
    while any(p.poll() is None for p in procs):
        if refused_at is None and any(p.poll() == 1 for p in procs):
            refused_at = time.monotonic() - started
        time.sleep(0.05)
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], [p.stderr.read() for p in procs]
    assert refused_at is not None and refused_at < 3.0  # at once, not after the other's run
    outcomes = sorted(r["outcome"] for r in read_runs(stack.state_dir))
    assert outcomes == ["refused", "success"]


# --- §15.4 alerts ----------------------------------------------------------------------------------

def test_12_no_webhook_means_log_only_and_the_run_proceeds(stack):
    run = stack.orchestrate(DISCORD_WEBHOOK_URL="")
    assert run.code == 0 and run.alerts == []
    assert "DISCORD_WEBHOOK_URL not set: alerts go to the log only" in run.stderr


@pytest.mark.parametrize("reply", ["hang", "500", "429"])
def test_13_a_failing_webhook_never_delays_the_run_and_never_leaks_its_token(stack, reply):
    stack.up()
    script = {"hang": HANG, "500": server_error(500), "429": rate_limited(30)}[reply]
    stack.hook.default = script
    run = stack.orchestrate()
    assert run.code == 0, run.stderr
    assert run.elapsed < 15, run.elapsed  # the alert budget is bounded; the bot start is not delayed
    logs = "".join(p.read_text() for p in (stack.tmp / "logs").glob("orchestrator_*.log"))
    journal = (stack.state_dir / "runs.jsonl").read_text()
    for text in (run.stderr, logs, journal):
        assert CANARY_TOKEN not in text
    assert any(not a["delivered"] for a in run.record["alerts"])


def test_no_container_or_bot_outlives_the_stack(stack):
    run = stack.orchestrate()
    assert run.code == 0
    pid = running_bot(stack.state_dir)
    stop_bot(stack.state_dir)
    stack.down()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert container_state(stack.container) is None and project_containers(stack.project) == []
