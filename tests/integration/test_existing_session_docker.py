"""A session slot left held: a Gateway killed without IBC's STOP leaves its IBKR session, and the next cold login
meets "Existing session detected"; a tidy stop (`shutdown --gateway`: IBC's STOP, a logout) leaves none.

Real Docker and the simulator, whose IBKR side of the session outlives a kill and a `docker start` of the
same container (SIM_SESSION_FILE). EXISTING_SESSION_DETECTED_ACTION=manual, so the dialog waits for a human,
as IBC's default does: the orchestrator must stop there and say what to do, never restart into it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from testkit.docker import docker
from testkit.stack import REPO_ROOT, Stack, stop_bot

pytestmark = pytest.mark.docker

MANUAL = {"EXISTING_SESSION_DETECTED_ACTION": "manual"}


def shutdown_gateway(stack: Stack) -> None:
    done = subprocess.run([sys.executable, "-m", "src.orchestration.ops.shutdown", "--gateway"], cwd=REPO_ROOT,
                          env=stack.env(**MANUAL), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_after_a_tidy_stop_the_next_login_meets_no_existing_session(stack: Stack) -> None:
    stack.extra.update(MANUAL)
    assert stack.orchestrate().code == 0
    shutdown_gateway(stack)  # IBC's STOP: a logout
    run = stack.orchestrate()
    assert run.code == 0, run.stderr
    assert "Existing session detected" not in stack.gateway.logs()


def test_after_a_kill_the_next_login_meets_the_existing_session_and_the_alert_says_what_to_do(stack: Stack) -> None:
    stack.extra.update(MANUAL)
    assert stack.orchestrate().code == 0
    stop_bot(stack.state_dir)
    docker("kill", stack.container)  # no logout: IBKR still holds the session
    run = stack.orchestrate()
    assert run.code == 1, run.stderr
    assert "Existing session detected" in stack.gateway.logs(), (run.record.get("reason"), run.path)
    assert "existing" in run.record["reason"].lower()
    said = " ".join(run.alerts)
    assert "EXISTING_SESSION_DETECTED_ACTION" in said, run.alerts  # what to do, not just what happened
