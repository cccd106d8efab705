"""The production container's healthcheck: the Gateway's own API must answer, a socat-like port is not enough."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from src.orchestration.config import REPO_ROOT, RELAY_PORTS, OrchestrationConfig
from testkit.docker import free_port
from testkit.gateway import compose
from tests.helpers.simulator import running_simulator
from tests.integration.docker_env import require_docker

SCRIPT = REPO_ROOT / "docker" / "gateway" / "scripts" / "api-healthcheck.sh"


def check(port: int) -> tuple[int, float]:
    started = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT)], env={"API_PORT": str(port), "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=10)
    return result.returncode, time.monotonic() - started


@pytest.mark.parametrize(("simulator", "healthy"), [
    ({}, True),
    ({"login_delay": 60, "before_login": "close"}, False),  # accepts then closes, like socat
    ({"login_delay": 60, "before_login": "refuse"}, False),
    ({"login_delay": 60, "before_login": "silent"}, False),
])
def test_healthy_only_when_the_api_answers_the_handshake(simulator, healthy):
    with running_simulator(**simulator) as sim:
        code, seconds = check(sim.port)
    # the deadline is the behaviour: the script's own 3 s wait keeps it inside Docker's 5 s healthcheck
    # timeout (docker/gateway/docker-compose.yml), past which Docker kills it and counts a failure
    assert (code == 0) is healthy and seconds < 5.0, seconds


def test_nothing_listening_is_unhealthy():
    assert check(free_port())[0] == 1


@pytest.mark.docker
def test_production_compose_runs_it_inside_the_container_on_loopback_only(tmp_path):
    require_docker()
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path), "TWS_USERID": "placeholder",
           "TWS_PASSWORD_SECRET_FILE": str(tmp_path / "absent"), "GATEWAY_RELAY_PORT": "4004"}
    config = json.loads(compose(env, "-f", "docker-compose.yml", "config", "--format", "json").stdout)
    gateway = config["services"]["gateway"]
    assert gateway["healthcheck"]["test"] == ["CMD", "bash", "/usr/local/bin/api-healthcheck.sh"]
    assert any(v["target"] == "/usr/local/bin/api-healthcheck.sh" and v.get("read_only") for v in gateway["volumes"])
    assert {p["host_ip"] for p in gateway["ports"]} == {"127.0.0.1"}


@pytest.mark.docker
@pytest.mark.parametrize("mode", ["paper", "live"])
def test_production_compose_publishes_one_api_port_to_the_relay_of_the_mode(tmp_path, mode):
    require_docker()
    config = OrchestrationConfig.from_env({"TRADING_MODE": mode, "HOME": str(tmp_path)}, dotenv=tmp_path / "none")
    env = {**config.child_env, "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path),
           "TWS_PASSWORD_SECRET_FILE": str(tmp_path / "absent")}
    ports = json.loads(compose(env, "-f", "docker-compose.yml", "config", "--format", "json").stdout
                       )["services"]["gateway"]["ports"]
    api = [(p["host_ip"], p["published"], p["target"]) for p in ports if p["target"] != 5900]
    assert api == [("127.0.0.1", str(config.gateway_port), RELAY_PORTS[mode])]
    assert config.gateway_port == {"paper": 4002, "live": 4001}[mode]


@pytest.mark.docker
def test_production_compose_without_the_relay_port_refuses_to_guess(tmp_path):
    require_docker()
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path), "TWS_PASSWORD_SECRET_FILE": "x"}
    result = compose(env, "-f", "docker-compose.yml", "config", check=False)
    assert result.returncode != 0 and "GATEWAY_RELAY_PORT" in result.stderr
