"""The production container's healthcheck: the Gateway's own API must answer, a socat-like port is not enough."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from src.orchestration.config import REPO_ROOT, OrchestrationConfig
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
           "TWS_PASSWORD_SECRET_FILE": str(tmp_path / "absent"), "TWS_ACCEPT_INCOMING": "accept",
           "TWS_COLD_RESTART": "17:00"}
    config = json.loads(compose(env, "-f", "docker-compose.yml", "config", "--format", "json").stdout)
    gateway = config["services"]["gateway"]
    # IBC's cold restart stays off whatever the environment says (WEEKLY_LOGIN_TIME is the weekly login), and the
    # Gateway's settings live on a named volume (a re-created container keeps jts.ini and the autorestart state)
    assert gateway["environment"]["TWS_COLD_RESTART"] == ""
    settings_dir = gateway["environment"]["TWS_SETTINGS_PATH"]
    assert {(v["type"], v["target"]) for v in gateway["volumes"]} >= {("volume", settings_dir)}
    assert gateway["healthcheck"]["test"] == ["CMD", "bash", "/usr/local/bin/api-healthcheck.sh"]
    mounts = {v["target"]: v for v in gateway["volumes"]}
    assert mounts["/usr/local/bin/api-healthcheck.sh"].get("read_only")
    # the image's socat relay (the API on every address of the namespace) is replaced by a no-op, and IBC
    # rejects every API connection but 127.0.0.1's, whatever the environment says: only the firewall gets in
    assert mounts["/home/ibgateway/scripts/run_socat.sh"].get("read_only")
    script = (REPO_ROOT / "docker/gateway/scripts/no-socat.sh").read_text().splitlines()
    assert [line.split()[0] for line in script if line.strip() and not line.startswith("#")] == ["echo"]
    assert gateway["environment"]["TWS_ACCEPT_INCOMING"] == "reject"
    assert "ports" not in gateway and gateway["network_mode"] == "service:apinet"
    assert config["services"]["firewall"]["network_mode"] == "service:apinet"
    assert {p["host_ip"] for p in config["services"]["apinet"]["ports"]} == {"127.0.0.1"}


@pytest.mark.docker
@pytest.mark.parametrize("mode", ["paper", "live"])
def test_production_compose_publishes_the_firewall_alone_on_the_api_port(tmp_path, mode):
    require_docker()
    config = OrchestrationConfig.from_env({"TRADING_MODE": mode, "HOME": str(tmp_path), "STATE_DIR": str(tmp_path)},
                                          dotenv=tmp_path / "none")
    env = {**config.child_env, "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path),
           "TWS_PASSWORD_SECRET_FILE": str(tmp_path / "absent")}
    services = json.loads(compose(env, "-f", "docker-compose.yml", "config", "--format", "json").stdout)["services"]
    published = [(s, p["host_ip"], p["published"], p["target"]) for s, spec in services.items()
                 for p in spec.get("ports", []) if p["target"] != 5900]
    assert published == [("apinet", "127.0.0.1", str(config.gateway_port), 4000)]  # the firewall's port, only
    assert config.gateway_port == {"paper": 4002, "live": 4001}[mode]
    firewall = services["firewall"]
    assert firewall["environment"]["TRADING_MODE"] == mode and firewall["user"] == f"{os.getuid()}:{os.getgid()}"
    assert [(v["source"], v["target"]) for v in firewall["volumes"]] == [(str(tmp_path), "/state")]
