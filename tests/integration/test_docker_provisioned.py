"""Docker is provisioned (scripts/provision-docker.sh): Engine, Compose v2, the simulator image,
and the simulator override of the production Compose file yields a healthy `ibkr-gateway`
whose published port serves the TWS API on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import time

import pytest

from src.orchestration.config import REPO_ROOT
from src.orchestration.gateway.docker import DockerClient
from src.orchestration.health import GatewayHealthChecker
from testkit.docker import container_labels, container_state, docker, project_containers, wait_for_health
from testkit.gateway import SERVICE, SIMULATOR_IMAGE, SimGateway, compose
from tests.integration.docker_env import new_project, require_docker, simulator_gateway

ACCOUNTS = ("DU123456", "DU234567")  # the simulator's managed accounts


def handshake(port: int) -> tuple[int | None, tuple[str, ...]]:
    """The product's own TWS API probe from the host: (server version, managed accounts)."""
    probe = GatewayHealthChecker("127.0.0.1", port, timeout=5.0, client_id=99).check_handshake()
    assert probe.ok, probe.describe()
    return probe.server_version, probe.accounts


pytestmark = pytest.mark.docker


def test_docker_daemon_answers():
    require_docker()
    version = docker("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}").stdout.split()
    assert len(version) == 2, version


def test_docker_compose_is_v2():
    require_docker()
    assert docker("compose", "version", "--short").stdout.strip().lstrip("v").startswith("2.")


def test_simulator_image_exists():
    require_docker()
    result = docker("image", "inspect", "--format", "{{json .Config.Cmd}} {{.Config.User}}", SIMULATOR_IMAGE,
                    check=False)
    assert result.returncode == 0, (
        f"{SIMULATOR_IMAGE} missing: run bash scripts/provision-docker.sh ({result.stderr.strip()})")
    cmd, user = result.stdout.rsplit(" ", 1)
    assert "src.simulator" in cmd
    assert user.strip() not in ("", "0", "root", "0:0"), "the simulator must not run as root"
    # built here, never pulled: Docker holds no registry digest for it, and --status says so
    assert DockerClient("absent", SERVICE, REPO_ROOT).repo_digests(SIMULATOR_IMAGE) == []


def test_compose_files_validate_without_credentials(tmp_path):
    require_docker()
    env = SimGateway(project=new_project(), port=4002).compose_env()
    env.pop("COMPOSE_FILE")
    env.update(TWS_USERID="placeholder", TWS_PASSWORD_SECRET_FILE=str(tmp_path / "absent"))
    production = compose(env, "-f", "docker-compose.yml", "config", "--format", "json").stdout
    assert re.search(r'"image": "ghcr.io/gnzsnz/ib-gateway:[^"@]+@sha256:[0-9a-f]{64}"', production), production
    assert "127.0.0.1" in production
    upgrade = "ghcr.io/gnzsnz/ib-gateway:10.46.1a@sha256:" + "0f" * 32  # GATEWAY_IMAGE names the Gateway's image
    assert f'"image": "{upgrade}"' in compose({**env, "GATEWAY_IMAGE": upgrade}, "-f", "docker-compose.yml", "config",
                                               "--format", "json").stdout
    assert "placeholder" in production and "TWS_PASSWORD_FILE" in production
    simulated = compose({**env, "COMPOSE_FILE": "docker-compose.yml:docker-compose.sim.yml"},
                        "config", "--format", "json").stdout
    assert SIMULATOR_IMAGE in simulated and "TWS_" not in simulated and "tws_password" not in simulated


def test_simulator_gateway_becomes_healthy_and_serves_on_loopback():
    with simulator_gateway(timeout=30) as gateway:
        state = container_state(gateway.container)
        assert state["Status"] == "running" and state["Health"]["Status"] == "healthy", state
        labels = container_labels(gateway.container)
        assert labels["com.docker.compose.project"] == gateway.project
        assert labels["com.docker.compose.service"] == SERVICE
        published = docker("port", gateway.network, "4000/tcp").stdout.split()
        assert published == [f"127.0.0.1:{gateway.port}"], published
        version, accounts = handshake(gateway.port)
        assert version is not None and version >= 100 and accounts == ACCOUNTS
    assert container_state(gateway.container) is None
    assert project_containers(gateway.project) == []


def test_socat_like_gateway_is_not_healthy_before_login():
    """Port open but not logged in (accept, then close): the healthcheck must not say healthy."""
    # logged in 10 s after its start: the 2.5 s look ends well before, however slow the docker calls are
    with simulator_gateway(wait_healthy=False, login_delay=10, before_login="close") as gateway:
        deadline = time.monotonic() + 2.5
        saw_port_open = False
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                sock.settimeout(1)
                saw_port_open |= sock.connect_ex(("127.0.0.1", gateway.port)) == 0
            assert container_state(gateway.container)["Health"]["Status"] == "starting"
            time.sleep(0.2)
        assert saw_port_open, "the published port should accept like socat does before login"
        wait_for_health(gateway.container, timeout=60)  # then healthy, once logged in
        assert handshake(gateway.port)[1] == ACCOUNTS



def test_the_simulators_ibc_lines_are_stamped_in_new_york_time_as_ibcs_are():
    """ibc.py reads IBC's timestamps as New York time (the production file's TZ); a simulator stamping UTC
    once made a rejection inside a reset window look outside it."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    with simulator_gateway(timeout=30) as gateway:
        line = next(line for line in gateway.logs().splitlines() if "IBC: " in line)
    stamped = datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("America/New_York"))
    assert abs((datetime.now(ZoneInfo("America/New_York")) - stamped).total_seconds()) < 120, line
