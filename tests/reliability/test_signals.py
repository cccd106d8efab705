"""SIGTERM and SIGINT in every state: exit 1, the journal says where, the lock is released, no bot left.

Through the real CLI for every state a run can be caught in from outside (slow fakes hold it
there); in this process, with a real signal delivered at the entry of each state's handler, for
every state of the transition table, including the ones that last microseconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from src.orchestration.machine.bot import AdoptedProcess, BotStart
from src.orchestration.gateway.docker import DAEMON_DOWN, DockerError
from src.orchestration.health import OK, HandshakeResult
from src.core.locks import PidLock
from src.orchestration.gateway.logins import LoginBudget
from src.orchestration.startup import TRANSITIONS, StartupOrchestrator, StartupState
from src.core.statefiles import CHECKPOINT_FILE, ORCHESTRATOR_LOCK, READY_FILE
from testkit.docker import free_port
from testkit.stack import Stack, wait_until
from tests.helpers.fake_docker import CANNOT_CONNECT, FakeDockerCLI, healthy_daemon, rule
from tests.helpers.fakes import probe
from tests.helpers.harness import Harness

SIGNALS = [signal.SIGTERM, signal.SIGINT]
FAKE_BOT = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(3600)"


def assert_interrupted(record: dict[str, Any], state_dir: Path, signum: int, state: str,
                       supervise: bool = False) -> None:
    """The journal says which signal and where (a stop, not a failure: exit 1, or 128+N under --supervise,
    which the unit counts as clean); nothing is held or half-written."""
    name = signal.Signals(signum).name
    assert record["outcome"] == "stopped" and record["exit_code"] == (128 + signum if supervise else 1)
    assert record["reason"].startswith(f"interrupted by {name} in state {state}"), record["reason"]
    assert PidLock(state_dir / ORCHESTRATOR_LOCK).holder() is None
    assert not (state_dir / CHECKPOINT_FILE).exists() and not (state_dir / READY_FILE).exists()


def dead(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


# --- the real CLI, caught in each state it can be caught in --------------------------------------

def _initializing(world: Stack, docker: FakeDockerCLI) -> Callable[[], object]:
    docker.rules([rule("*", stderr=CANNOT_CONNECT + "\n", code=1)])  # a daemon not up yet: waited for
    world.extra["DOCKER_WAIT_TIMEOUT"] = "60"
    return lambda: docker.count("version")


def _gateway_starting(world: Stack, docker: FakeDockerCLI) -> Callable[[], object]:
    absent = rule("container inspect", stderr="Error: No such container: x\n", code=1)
    docker.rules([absent, rule("compose up", sleep=3600), *healthy_daemon()])  # a `compose up` that hangs
    return lambda: docker.count("compose up")


def _gateway_waiting(world: Stack, docker: FakeDockerCLI) -> Callable[[], object]:
    world.extra.update(GATEWAY_PORT=str(free_port()), GATEWAY_HEALTH_TIMEOUT="60")  # refused until the deadline
    return lambda: world.in_state("GATEWAY_WAITING")


def _gateway_unhealthy(world: Stack, docker: FakeDockerCLI) -> Callable[[], object]:
    docker.rules([rule("logs", sleep=3600), *healthy_daemon()])  # reading IBC's log hangs
    world.extra.update(GATEWAY_PORT=str(free_port()), GATEWAY_HEALTH_TIMEOUT="0.5", DOCKER_COMMAND_TIMEOUT="60")
    return lambda: docker.count("logs")


def _bot_starting(world: Stack, docker: FakeDockerCLI) -> Callable[[], object]:
    pid_file = world.tmp / "fake-bot.pid"
    world.extra["BOT_COMMAND"] = f"{sys.executable} -c \"{FAKE_BOT}\" {pid_file}"  # never says READY=1
    return lambda: pid_file.exists() and pid_file.read_text()


CAUGHT_IN = {"INITIALIZING": _initializing, "GATEWAY_STARTING": _gateway_starting,
             "GATEWAY_WAITING": _gateway_waiting, "GATEWAY_UNHEALTHY": _gateway_unhealthy,
             "BOT_STARTING": _bot_starting}


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("state", list(CAUGHT_IN))
def test_cli_signal_in_each_state_it_can_be_caught_in(world, fake_docker, state, signum):
    there = CAUGHT_IN[state](world, fake_docker)
    proc = world.launch()
    started = time.monotonic()
    wait_until(there, 20, f"the run to be in {state}")
    time.sleep(0.2)
    proc.send_signal(signum)
    signalled = time.monotonic()
    run = world.finish(proc, started)
    assert run.code == 1, run.stderr
    # honoured at once, not when the state would have ended by itself (the bot's 15 s BOT_READY_TIMEOUT):
    # the reason below says it was the signal; this says it did not wait
    assert time.monotonic() - signalled < 10
    assert_interrupted(run.record, world.state_dir, signum, state)
    assert "Traceback" not in run.stderr and "Startup stopped before it finished: interrupted by" in run.alerts[-1]
    assert not any("failed" in alert.lower() for alert in run.alerts)  # asked for: nobody is paged
    bot_pid = world.tmp / "fake-bot.pid"
    if bot_pid.exists():  # the half-started bot was stopped, not left behind
        assert dead(int(bot_pid.read_text()))
    # the world fixture then proves no docker call and no bot is still running


# --- in this process: a real signal at the entry of every state's handler --------------------------

def _reach(harness: Harness, state: StartupState) -> None:
    """Configure the fakes so that the run passes through `state`."""
    quick = {"gateway_health_timeout": 0.1, "gateway_health_retry_interval": 0.02}
    if state in (StartupState.GATEWAY_UNHEALTHY, StartupState.GATEWAY_TIMEOUT, StartupState.GATEWAY_LOGIN_FAILED):
        harness.configure(**quick)
        harness.health.script = lambda n: probe("refused")
        if state is StartupState.GATEWAY_LOGIN_FAILED:
            harness.docker.log = "IBC: Login failed"
    elif state is StartupState.GAMEPLAN_INVALID:
        harness.config.gameplan_path.write_text("{")
    elif state is StartupState.GAMEPLAN_MISSING:
        harness.configure(gameplan_path=None)
    elif state is StartupState.BOT_START_FAILED:
        harness.bot_result = BotStart(False, None, "bot exited with code 1 before it was ready")
    elif state in (StartupState.LOGIN_BUDGET_SPENT, StartupState.LOGIN_BUDGET_STILL_SPENT):
        harness.configure(gateway_login_budget=0)
        harness.docker.state = None  # creating it would be a login
        if state is StartupState.LOGIN_BUDGET_STILL_SPENT:  # this exhaustion was alerted already
            budget = LoginBudget(harness.config.state_dir, 0)
            budget.mark_alerted(budget.view())
    elif state is StartupState.ALREADY_RUNNING:
        harness.running_bot_pid = 4242
    elif state in (StartupState.ADOPTING, StartupState.NOT_ADOPTED):  # a relaunched supervisor finds its bot
        harness.supervise = True
        harness.running_bot_pid = harness.bot_process.pid
        harness.adoptable = AdoptedProcess(harness.bot_process.pid)
        if state is StartupState.NOT_ADOPTED:
            harness.health.script = lambda n: probe("refused")
    elif state is StartupState.CONFIG_INVALID:
        harness.configure(bot_strategy="no_such_module_anywhere:Strategy")
    elif state is StartupState.WRONG_ACCOUNT:  # a live account while TRADING_MODE is paper
        harness.health.script = lambda n: HandshakeResult(OK, "logged in", 0.001, 178, ("U1234567",))
    elif state is StartupState.DOCKER_UNAVAILABLE:
        harness.docker.ping_error = DockerError(DAEMON_DOWN, "the Docker daemon is not running")


@pytest.fixture
def real_bot(harness: Harness) -> Iterator[subprocess.Popen[bytes]]:
    """A real process stands in for the bot the fake launcher reports as ready."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    harness.bot_process = proc
    yield proc
    proc.kill()
    proc.wait()


def test_a_signal_while_a_transition_is_written_names_the_state_the_record_shows(harness, monkeypatch):
    """The checkpoint's fsync takes time; a signal during it is "in" the state just entered, the one
    the record's transitions end with (not the one before it)."""
    from src.core.journal import RunJournal

    checkpoint = RunJournal.checkpoint
    delivered: list[str] = []

    def signalled_mid_write(self: RunJournal) -> None:
        if self.record["transitions"] and self.record["transitions"][-1]["to"] == "GATEWAY_WAITING" and not delivered:
            delivered.append("GATEWAY_WAITING")
            os.kill(os.getpid(), signal.SIGTERM)  # the real signal, while the transition is being written
        checkpoint(self)

    monkeypatch.setattr(RunJournal, "checkpoint", signalled_mid_write)
    orchestrator = harness.orchestrator()
    previous = signal.signal(signal.SIGTERM, orchestrator.handle_signal)
    try:
        assert orchestrator.run() == 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    record = harness.runs[-1]
    assert delivered == ["GATEWAY_WAITING"] and record["transitions"][-1]["to"] == "GATEWAY_WAITING"
    assert_interrupted(record, harness.config.state_dir, signal.SIGTERM, "GATEWAY_WAITING")


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("state", list(TRANSITIONS), ids=lambda s: s.name)
def test_signal_at_the_entry_of_every_state(harness, real_bot, monkeypatch, state, signum):
    _reach(harness, state)
    step = StartupOrchestrator.step
    delivered: list[str] = []

    def signalled_on_entry(self: StartupOrchestrator) -> None:
        if self.context.state is state and not delivered:
            delivered.append(state.name)
            os.kill(os.getpid(), signum)  # the real signal; Python runs the handler right here
        step(self)

    monkeypatch.setattr(StartupOrchestrator, "step", signalled_on_entry)
    orchestrator = harness.orchestrator()
    previous = {s: signal.signal(s, orchestrator.handle_signal) for s in SIGNALS}
    try:
        code = orchestrator.run()
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
    assert delivered == [state.name]
    assert code == (128 + signum if harness.supervise else 1)
    assert_interrupted(harness.runs[-1], harness.config.state_dir, signum, state.name, harness.supervise)
    if harness.bot_calls and harness.bot_result is None:  # real_bot was started: exit 1 means nothing trades
        assert real_bot.poll() is not None, "the run exited 1, yet the bot it started is still running"
