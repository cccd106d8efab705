"""Any bot, no code of ours: a plain ib_async script (docs/examples/ib_async_bot.py) as BOT_COMMAND.

Real Docker, the production layout with the simulator behind the order firewall. Its readiness is its
client id completing the API handshake through the firewall; the orchestrator records the process it
started, so ALREADY_RUNNING, --status and shutdown treat it as they treat the project's own runtime;
what reaches the simulator (its own log of every order it received) is exactly what the plan allows.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import psutil
import pytest

from src.orchestration.machine.bot import running_bot
from src.core.statefiles import BOT_PID_FILE, FIREWALL_DECISIONS_FILE, READY_FILE
from testkit.stack import REPO_ROOT, STARTUP, Stack, wait_until

pytestmark = pytest.mark.docker

EXAMPLE = REPO_ROOT / "docs" / "examples" / "ib_async_bot.py"


def bot_command(*orders: str) -> str:
    return " ".join([sys.executable, str(EXAMPLE), *orders])


def received(stack: Stack) -> list[tuple[str, str, str, str]]:
    """(client id, action, quantity, symbol) of each order the simulator received."""
    return re.findall(r"API: ORDER received: client (\d+) order \d+ (\w+) (\S+) (\S+)", stack.gateway.logs())


def decisions(stack: Stack) -> list[str]:
    path = stack.state_dir / FIREWALL_DECISIONS_FILE
    return [json.loads(line)["decision"] for line in path.read_text().splitlines()] if path.exists() else []


def reasons(stack: Stack) -> list[str]:
    path = stack.state_dir / FIREWALL_DECISIONS_FILE
    return [json.loads(line)["reason"] for line in path.read_text().splitlines()] if path.exists() else []


def test_a_plain_bot_is_ready_by_its_handshake_and_only_what_the_plan_allows_reaches_the_gateway(stack):
    run = stack.orchestrate(BOT_COMMAND=bot_command("BUY", "1", "SPY", "BUY", "1", "TSLA", "BUY", "1", "ſpy"))
    assert run.code == 0, run.stderr
    pid = running_bot(stack.state_dir)
    assert pid is not None and psutil.Process(pid).cmdline()[1] == str(EXAMPLE)
    assert not (stack.state_dir / BOT_PID_FILE).exists() and not (stack.state_dir / READY_FILE).exists()
    wait_until(lambda: len(decisions(stack)) == 3, 15, "the bot's three orders judged")
    assert decisions(stack) == ["allowed", "refused", "refused"], reasons(stack)
    wait_until(lambda: received(stack), 10, "the allowed order at the simulator")
    assert received(stack) == [("1", "BUY", "1", "SPY")]

    again = stack.orchestrate(BOT_COMMAND=bot_command())
    assert again.code == 1 and f"already running (PID {pid})" in again.record["reason"]

    env = stack.env(BOT_COMMAND=bot_command())
    status = subprocess.run([*STARTUP, "--status", "--json"], cwd=stack.tmp, env=env, capture_output=True,
                            text=True, timeout=60)
    shown = json.loads(status.stdout)  # the bot as --status sees it (the Gateway's own rows are other tests')
    assert shown["bot"]["pid"] == pid and shown["bot"]["ready"] is True, status.stdout
    assert shown["bot"]["connection"] == "connected", status.stdout

    done = subprocess.run([sys.executable, "-m", "src.orchestration.ops.shutdown"], cwd=stack.tmp, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert running_bot(stack.state_dir) is None and not psutil.pid_exists(pid) or \
        psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_under_strategy_c_a_plain_bot_gets_no_order_through(stack):
    """The issue's first reproduction: exit 2 and "Strategy C deployed (NO trading)", and it is so at the wire."""
    run = stack.orchestrate(GAMEPLAN_PATH="", BOT_COMMAND=bot_command("BUY", "1", "SPY"))
    assert run.code == 2, run.stderr
    assert any("Strategy C deployed" in alert for alert in run.alerts)
    wait_until(lambda: decisions(stack), 15, "the bot's order judged")
    assert decisions(stack) == ["refused"] and received(stack) == []


def test_a_bot_that_never_connects_fails_the_run_and_is_stopped(stack):
    run = stack.orchestrate(BOT_COMMAND=f"{sys.executable} -c 'import time; time.sleep(120)'", BOT_READY_TIMEOUT="3")
    assert run.code == 1
    assert "client id 1 did not complete the API handshake through the order firewall" in run.record["reason"]
    assert running_bot(stack.state_dir) is None
