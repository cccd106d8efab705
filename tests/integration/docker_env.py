"""Real Docker for integration tests: is it usable, and the simulator Gateway under Compose.

`require_docker()` skips a test on a developer machine without Docker, and fails it when
`CI` is set: in CI a Docker test that cannot run is a failure, never a skip
(scripts/provision-docker.sh is what makes Docker usable there).

`simulator_gateway(...)` brings the simulator up under the production service and
container names (docker/gateway/docker-compose.yml + docker-compose.sim.yml), in a Compose
project of its own, and always takes it down again (`down -v`), whatever the test did.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from src.orchestration.config import RELAY_PORTS
from tests.helpers.ci import skip_or_fail

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO_ROOT / "docker" / "gateway"
SIM_COMPOSE_FILE = os.pathsep.join(["docker-compose.yml", "docker-compose.sim.yml"])
SIMULATOR_IMAGE = "ibkr-gateway-simulator:local"
CONTAINER = "ibkr-gateway"
SERVICE = "gateway"
PROJECT_PREFIX = "zt-test-"  # every Compose project a test makes; anything else is not ours
PROVISION_HINT = "provision it with: bash scripts/provision-docker.sh"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def docker(*args: str, timeout: float = 60, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS...` and capture its output; raise on failure when `check`."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result


def docker_available() -> str | None:
    """None when the Docker daemon answers and `docker compose` is v2; else why not."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "the Docker daemon did not answer 'docker info' within 20 s"
    if info.returncode != 0 or not info.stdout.strip():
        return f"the Docker daemon is not reachable: {_last_line(info.stderr)}"
    try:
        compose = docker("compose", "version", "--short", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "'docker compose version' did not answer within 20 s"
    version = compose.stdout.strip().lstrip("v")
    if compose.returncode != 0 or not version.startswith("2."):
        said = _last_line(compose.stderr or compose.stdout)
        return f"Docker Compose v2 is not installed ('docker compose version': {said})"
    return None


def require_docker() -> None:
    """Skip the calling test without Docker; fail it instead when CI is set."""
    reason = docker_available()
    if reason is None:
        return
    skip_or_fail(f"{reason}; {PROVISION_HINT}")


@pytest.fixture
def docker_required() -> None:
    """Fixture form of require_docker()."""
    require_docker()


def unique_project() -> str:
    return f"{PROJECT_PREFIX}{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sim_compose_env(project: str, gateway_port: int, base: Mapping[str, str] | None = None,
                    mode: str = "paper", vnc_port: int | None = None, **sim: object) -> dict[str, str]:
    """The environment for `docker compose` (cwd COMPOSE_DIR) running the simulator override.

    `mode` is TRADING_MODE: it picks the container's relay port, as the orchestrator does. VNC is
    published as in production, on `vnc_port` (a free one by default: tests run side by side).
    `sim` keys are the simulator's settings without the prefix: login_delay=2 -> SIM_LOGIN_DELAY=2.
    SIM_* variables of the calling environment are dropped so a test states all it relies on.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("SIM_")}
    env.update(COMPOSE_FILE=SIM_COMPOSE_FILE, COMPOSE_PROJECT_NAME=project, GATEWAY_PORT=str(gateway_port),
               GATEWAY_CONTAINER=container_for(project), TRADING_MODE=mode,
               GATEWAY_RELAY_PORT=str(RELAY_PORTS[mode]), VNC_PORT=str(vnc_port or free_port()))
    env.update({f"SIM_{key.upper()}": str(value) for key, value in sim.items()})
    return env


def compose(env: Mapping[str, str], *args: str, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    return docker("compose", *args, timeout=timeout, check=check, cwd=COMPOSE_DIR, env=dict(env))


def container_state(name: str = CONTAINER) -> dict | None:
    """`docker inspect NAME` .State as data, or None when no container has exactly that name."""
    result = docker("inspect", "--type", "container", "--format", "{{json .State}}", name, check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)


def container_labels(name: str = CONTAINER) -> dict[str, str]:
    result = docker("inspect", "--type", "container", "--format", "{{json .Config.Labels}}", name)
    return json.loads(result.stdout) or {}


def health_status(name: str = CONTAINER) -> str | None:
    state = container_state(name)
    return None if state is None else (state.get("Health") or {}).get("Status")


def wait_for_health(name: str = CONTAINER, timeout: float = 30.0, want: str = "healthy") -> float:
    """Seconds until the container's health is `want`; AssertionError with its state if not in time."""
    start = time.monotonic()
    while True:
        state = container_state(name)
        if state and (state.get("Health") or {}).get("Status") == want:
            return time.monotonic() - start
        if state and state.get("Status") in ("exited", "dead"):
            status, code = state.get("Status"), state.get("ExitCode")
            raise AssertionError(f"{name} {status} (exit code {code}) before {want}: {state}")
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{name} not {want} within {timeout:g} s: {state}")
        time.sleep(0.2)


def project_containers(project: str) -> list[str]:
    """IDs of every container (running or not) Compose labelled with `project`."""
    result = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}")
    return result.stdout.split()


def container_for(project: str) -> str:
    """Each test project's own Gateway container name (compose reads GATEWAY_CONTAINER), so tests
    never touch an operator's real `ibkr-gateway` and never collide with each other."""
    return f"{CONTAINER}-{project}"


@dataclass(frozen=True)
class SimulatorGateway:
    project: str
    container: str
    port: int  # published on 127.0.0.1
    env: dict[str, str]  # for `docker compose` (cwd COMPOSE_DIR) and for an orchestrator under test


@contextlib.contextmanager
def simulator_gateway(wait_healthy: bool = True, timeout: float = 60.0, **sim: object) -> Iterator[SimulatorGateway]:
    """`docker compose up -d` the simulator as `ibkr-gateway` in a fresh project; `down -v` at the end.

    Never builds or pulls: the image must exist (scripts/provision-docker.sh builds it).
    """
    require_docker()
    project, port = unique_project(), free_port()
    env = sim_compose_env(project, port, **sim)
    try:
        compose(env, "up", "-d", "--no-build", "--pull", "never")
        if wait_healthy:
            wait_for_health(container_for(project), timeout)
        yield SimulatorGateway(project, container_for(project), port, env)
    finally:
        compose(env, "down", "-v", "--remove-orphans", "-t", "5", check=False)
        left = project_containers(project)
        if left:
            docker("rm", "-f", *left, check=False)


def tws_handshake(port: int, host: str = "127.0.0.1", client_id: int = 99,
                  timeout: float = 5.0) -> tuple[int, list[str]]:
    """A minimal TWS API start-up from the host: (server version, managed accounts)."""
    deadline = time.monotonic() + timeout

    def frame(payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + payload

    with socket.create_connection((host, port), timeout=timeout) as sock:
        buffer = b""

        def read_message() -> list[str]:
            nonlocal buffer
            while len(buffer) < 4 or len(buffer) < 4 + struct.unpack(">I", buffer[:4])[0]:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed during the TWS handshake")
                buffer += chunk
            size = struct.unpack(">I", buffer[:4])[0]
            payload, buffer = buffer[4:4 + size], buffer[4 + size:]
            return payload.decode("latin-1").split("\0")[:-1]

        sock.sendall(b"API\0" + frame(b"v157..178"))
        version = int(read_message()[0])
        sock.sendall(frame(b"".join(f"{v}".encode() + b"\0" for v in (71, 2, client_id, ""))))
        accounts: list[str] | None = None
        next_id = None
        while accounts is None or next_id is None:
            message = read_message()
            if message[:1] == ["15"]:
                accounts = [a for a in message[2].split(",") if a]
            elif message[:1] == ["9"]:
                next_id = message[2]
        return version, accounts
