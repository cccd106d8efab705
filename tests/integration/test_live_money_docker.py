"""Live-money rules against real Docker, real Compose v2 and the simulator container.

The simulator listens where the real Gateway's API does for TRADING_MODE (4002 paper, 4001 live),
behind the order firewall and the production Compose file's own port mapping, so these runs
exercise the path an operator's live Gateway gets.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from src.orchestration.machine.bot import running_bot
from src.core.statefiles import LOGINS_FILE, READY_FILE
from testkit.docker import container_state, docker, project_containers
from testkit.stack import REPO_ROOT, Stack

pytestmark = pytest.mark.docker

LIVE = "U1234567"


def published(container: str) -> dict[str, list[str]]:
    """Container port -> the host addresses it is published on."""
    ports = json.loads(docker("inspect", "--format", "{{json .NetworkSettings.Ports}}", container).stdout)
    return {port: sorted(f"{b['HostIp']}:{b['HostPort']}" for b in bindings)
            for port, bindings in ports.items() if bindings}  # an EXPOSEd port that is not published: none


@pytest.mark.parametrize(("mode", "accounts"), [("paper", "DU123456"), ("live", LIVE)])
def test_one_api_mapping_to_the_firewall_and_the_bot_connects_in_either_mode(stack, mode, accounts):
    stack.mode, stack.sim = mode, {"login_delay": 1, "accounts": accounts}
    run = stack.orchestrate()
    assert run.code == 0, run.stderr
    assert published(stack.container) == {}  # the Gateway publishes nothing of its own
    ports = published(stack.gateway.network)
    api_ports = {port: hosts for port, hosts in ports.items() if port != "5900/tcp"}
    assert api_ports == {"4000/tcp": [f"127.0.0.1:{stack.port}"]}  # one API mapping, the firewall, loopback only
    record = json.loads((stack.state_dir / READY_FILE).read_text())
    assert record["accounts"] == [accounts] and running_bot(stack.state_dir) == record["pid"]


def test_a_live_account_under_paper_mode_gets_no_bot_and_no_restart(stack):
    stack.sim = {"login_delay": 0, "accounts": LIVE}
    run = stack.orchestrate()
    assert run.code == 1
    assert f"Gateway is logged in to LIVE account {LIVE} but TRADING_MODE=paper" in run.record["reason"]
    assert running_bot(stack.state_dir) is None
    actions = [json.loads(line)["action"] for line in (stack.state_dir / LOGINS_FILE).read_text().splitlines()]
    assert actions == ["create"]  # the one login that made the container; no restart stacked on it
    assert container_state(stack.container)["Status"] == "running"  # left as it is, for the operator
    assert any("LIVE account" in alert for alert in run.alerts)


def test_a_foreign_container_with_the_gateways_name_is_left_untouched(stack):
    # a hand-made container (no Compose labels) holding the name this configuration's Gateway uses
    docker("run", "-d", "--name", stack.container, "--entrypoint", "python3", "ibkr-gateway-simulator:local",
           "-c", "import time; time.sleep(600)")
    try:
        docker("stop", "-t", "1", stack.container)
        before = container_state(stack.container)
        run = stack.orchestrate()
        assert run.code == 1
        assert "is not this configuration's Gateway" in run.record["reason"]
        assert "no Compose project (made by hand)" in run.record["reason"]
        assert "ibkr-gateway-simulator:local" in run.record["reason"]
        after = container_state(stack.container)
        assert after["Status"] == "exited" and after["StartedAt"] == before["StartedAt"]  # never started
        assert project_containers(stack.project) == []  # and no second Gateway was created beside it
        assert not (stack.state_dir / LOGINS_FILE).exists()

        docker("start", stack.container)
        running = container_state(stack.container)
        shutdown = shutdown_gateway(stack)
        assert shutdown.returncode == 1 and "is not this configuration's Gateway" in shutdown.stdout
        after = container_state(stack.container)
        assert after["Status"] == "running" and after["StartedAt"] == running["StartedAt"]  # not stopped either
    finally:
        docker("rm", "-f", stack.container, check=False)


def shutdown_gateway(stack: Stack) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "src.orchestration.ops.shutdown", "--gateway"], cwd=REPO_ROOT,
                          env=stack.env(), capture_output=True, text=True, timeout=60)


def test_the_login_budget_holds_across_consecutive_runs(stack):
    stack.sim = {"login_delay": 3600}  # never logs in: every run would restart it
    env = {"GATEWAY_HEALTH_TIMEOUT": "2", "GATEWAY_LOGIN_BUDGET": "3", "TWOFA_WAIT_TIMEOUT": "0"}
    first = stack.orchestrate(**env)  # create + the one restart: 2 logins
    assert first.code == 1 and first.path[-2:] == ["GATEWAY_TIMEOUT", "FAILURE"]
    second = stack.orchestrate(**env)  # the container is up: no login to start; the restart is the 3rd
    assert second.code == 1
    started = container_state(stack.container)["StartedAt"]
    third = stack.orchestrate("--supervise", **env)
    assert third.code == 76, third.stderr  # do-not-restart under --supervise
    assert third.path[-2:] == ["LOGIN_BUDGET_SPENT", "FAILURE"]
    assert "Gateway login budget spent" in third.record["reason"]
    assert container_state(stack.container)["StartedAt"] == started  # not restarted
    fourth = stack.orchestrate(**env)
    assert fourth.code == 1 and fourth.path[-2:] == ["LOGIN_BUDGET_STILL_SPENT", "FAILURE"]  # told once already
    lines = (stack.state_dir / LOGINS_FILE).read_text().splitlines()
    assert [json.loads(line)["action"] for line in lines if "alerted" not in line] == ["create", "restart", "restart"]
    budget_alerts = [a for a in third.alerts + fourth.alerts if "login budget spent" in a]
    assert len(budget_alerts) == 1  # alerted once, not once per relaunch


def test_a_logged_in_gateway_is_validated_while_docker_still_says_starting(stack):
    # a 30 s healthcheck interval: Docker says "starting" for the whole run, as the production
    # file's 5 s interval does for the first seconds after a login; the old rule restarted here
    stack.sim = {"login_delay": 1, "health_interval": "30s"}
    run = stack.orchestrate(GATEWAY_HEALTH_TIMEOUT="10")
    assert run.code == 0, run.stderr
    assert run.path.count("GATEWAY_WAITING") == 1 and "GATEWAY_UNHEALTHY" not in run.path
    assert run.record["gateway"]["docker_health"] == "starting"
    assert container_state(stack.container)["Health"]["Status"] == "starting"


def test_a_read_only_api_under_a_plan_that_grants_authority_is_one_critical_alert_and_shown_by_status(stack):
    """READ_ONLY_API=yes with today's plan granting authority: the system is up (exit 0), yet nothing can trade;
    one critical alert says so, and --status shows it. The Gateway itself is read-only (the simulator reads the
    same variable as the image, and answers every order with 321)."""
    run = stack.orchestrate(READ_ONLY_API="yes")
    assert run.code == 0, run.stderr
    assert sum("READ-ONLY" in a for a in run.alerts) == 1, run.alerts
    assert docker("exec", stack.container, "printenv", "SIM_READ_ONLY").stdout.strip() == "yes"
    status = subprocess.run([sys.executable, "-m", "src.orchestration.ops.status"], cwd=stack.tmp,
                            env=stack.env(READ_ONLY_API="yes"), capture_output=True, text=True, timeout=60)
    assert "READ-ONLY (READ_ONLY_API=yes)" in status.stdout, status.stdout
