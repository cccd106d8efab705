"""Stale PID files are not running processes: a PID reused by another process, a bot killed with
SIGKILL, an orchestrator killed with SIGKILL. None is mistaken for a live run, and the next run works.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from src.orchestration.machine.bot import running_bot
from src.orchestration.gateway.bringup import EVENTS_MARGIN
from src.core.journal import read_runs
from src.core.statefiles import BOT_PID_FILE, ORCHESTRATOR_LOCK, READY_FILE
from testkit.docker import free_port
from testkit.stack import Stack, processes_mentioning, wait_until


def status(world: Stack) -> tuple[int, dict]:
    """`--status --json`: exit code and report."""
    result = subprocess.run([sys.executable, "-m", "src.orchestration.startup", "--status", "--json"],
                            cwd=world.tmp, env=world.env(), capture_output=True, text=True, timeout=30)
    return result.returncode, json.loads(result.stdout)


def test_pid_files_naming_live_unrelated_processes_do_not_block_a_run_and_are_left_alone(world):
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        world.state_dir.mkdir(parents=True)
        (world.state_dir / BOT_PID_FILE).write_text(f"{unrelated.pid}\n")  # the PID was reused by another process
        (world.state_dir / ORCHESTRATOR_LOCK).write_text(f"{os.getpid()}\n")
        run = world.orchestrate()
        assert run.code == 0, run.stderr
        bot = running_bot(world.state_dir)
        assert bot not in (None, unrelated.pid) and unrelated.poll() is None  # not taken for the bot, not killed
        assert (world.state_dir / BOT_PID_FILE).read_text().strip() == str(bot)
    finally:
        unrelated.kill()
        unrelated.wait()


def test_a_bot_killed_with_sigkill_is_not_mistaken_for_running_and_the_next_run_works(world):
    first = world.orchestrate()
    assert first.code == 0, first.stderr
    killed = running_bot(world.state_dir)
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: running_bot(world.state_dir) is None, 10, "the kernel to drop the dead bot's lock")
    assert (world.state_dir / BOT_PID_FILE).read_text().strip() == str(killed)  # the stale file is still there
    assert json.loads((world.state_dir / READY_FILE).read_text())["pid"] == killed  # and a stale readiness record

    code, report = status(world)
    assert code == 1 and report["bot"]["pid"] is None and report["bot"]["ready"] is False

    second = world.orchestrate()
    assert second.code == 0, second.stderr
    bot = running_bot(world.state_dir)
    assert bot not in (None, killed) and json.loads((world.state_dir / READY_FILE).read_text())["pid"] == bot
    assert [r["outcome"] for r in read_runs(world.state_dir)] == ["success", "success"]


def test_an_orchestrator_killed_with_sigkill_is_journaled_as_interrupted_and_the_next_run_works(world, fake_docker):
    wait = 2.0  # GATEWAY_HEALTH_TIMEOUT of the run that gets killed
    proc = world.launch(GATEWAY_PORT=str(free_port()), GATEWAY_HEALTH_TIMEOUT=str(wait))  # refused: it waits
    world.wait_for_state("GATEWAY_WAITING")
    waiting_since = time.monotonic()
    wait_until(lambda: fake_docker.count("events"), 5, "the event stream to start")
    proc.kill()
    proc.wait()
    assert (world.state_dir / ORCHESTRATOR_LOCK).read_text().strip() == str(proc.pid)  # a stale lock file

    run = world.orchestrate()
    assert run.code == 0, run.stderr
    interrupted, success = list(read_runs(world.state_dir))
    assert interrupted["pid"] == proc.pid and interrupted["outcome"] == "interrupted"
    assert interrupted["reason"] == "the run ended abruptly in state GATEWAY_WAITING (no exit recorded)"
    assert success["outcome"] == "success" and running_bot(world.state_dir)
    # A SIGKILLed run cannot stop its `docker events` child: the stream must end by itself, a little
    # after the deadline of the wait it served (EVENTS_MARGIN), instead of living on for ever.
    left = wait + EVENTS_MARGIN + 5.0 - (time.monotonic() - waiting_since)  # an hour's sleep otherwise
    wait_until(lambda: not processes_mentioning(f"{fake_docker.spec} events"), max(left, 0.1),
               "the killed run's `docker events` to end after its wait's deadline")
