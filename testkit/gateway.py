"""The simulator Gateway under Compose, for tests and the benchmark.

`SimGateway` is one Compose project of docker/gateway/docker-compose.yml with the simulator
override (docker-compose.sim.yml): the production service (`gateway`) and container layout, the
API published on 127.0.0.1 only, a container name of its own (`ibkr-gateway-<project>`, never an
operator's `ibkr-gateway`) and free host ports, so runs can stand side by side. Nothing exists
until `up()`; `down()` removes all the project made, whatever state it is in, and may run twice.
It never builds or pulls: the image must exist (scripts/provision-docker.sh builds it).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.orchestration.config import OrchestrationConfig
from src.orchestration.settings import RELAY_PORTS
from testkit.docker import (
    DockerFailed, container_state, docker, free_port, project_containers, wait_for_health,
)

COMPOSE_DIR = OrchestrationConfig.docker_compose_dir  # the production Compose directory (the default)
SIM_FILES = ("docker-compose.yml", "docker-compose.sim.yml")
SIM_COMPOSE_FILE = os.pathsep.join(SIM_FILES)  # COMPOSE_FILE for the simulator, relative to COMPOSE_DIR
SIMULATOR_IMAGE = "ibkr-gateway-simulator:local"
CONTAINER = "ibkr-gateway"  # the production container name (GATEWAY_CONTAINER's default)
SERVICE = "gateway"


def unique_project(prefix: str) -> str:
    """A fresh Compose project name: `prefix` says whose it is (tests, the bench)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def container_for(project: str) -> str:
    """Each project's own Gateway container name (Compose reads GATEWAY_CONTAINER)."""
    return f"{CONTAINER}-{project}"


def compose(env: Mapping[str, str], *args: str, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """`docker compose ARGS...` in COMPOSE_DIR with exactly `env`."""
    return docker("compose", *args, timeout=timeout, check=check, cwd=COMPOSE_DIR, env=env)


@dataclass(kw_only=True)
class SimGateway:
    """One simulator Gateway in its own Compose project (see the module's docstring)."""

    project: str
    port: int = field(default_factory=free_port)  # the API, published on 127.0.0.1
    mode: str = "paper"  # TRADING_MODE: picks the container's relay port, as the orchestrator does
    vnc_port: int = field(default_factory=free_port)  # published as in production
    sim: Mapping[str, object] = field(default_factory=dict)  # login_delay=2 -> SIM_LOGIN_DELAY=2
    files: Sequence[str | Path] = ()  # more Compose files on top of the simulator's

    @property
    def container(self) -> str:
        return container_for(self.project)

    def compose_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for `docker compose` (cwd COMPOSE_DIR), and the base of an orchestrator's
        under test: `base` (this process's environment by default) without its SIM_* and COMPOSE_*
        variables, so a run states all it relies on."""
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if not k.startswith(("SIM_", "COMPOSE_"))}
        env.update(COMPOSE_FILE=os.pathsep.join([*SIM_FILES, *map(str, self.files)]),
                   COMPOSE_PROJECT_NAME=self.project, GATEWAY_CONTAINER=self.container,
                   GATEWAY_PORT=str(self.port), TRADING_MODE=self.mode,
                   GATEWAY_RELAY_PORT=str(RELAY_PORTS[self.mode]), VNC_PORT=str(self.vnc_port))
        env.update({f"SIM_{key.upper()}": str(value) for key, value in self.sim.items()})
        return env

    def compose(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return compose(self.compose_env(), *args, timeout=timeout, check=check)

    def up(self, healthy_within: float | None = 60.0, timeout: float = 120) -> None:
        """Create and start it; then, unless `healthy_within` is None, wait that long for Docker to
        call it healthy (AssertionError otherwise)."""
        self.compose("up", "-d", "--no-build", "--pull", "never", timeout=timeout)
        if healthy_within is not None:
            wait_for_health(self.container, healthy_within)

    def down(self) -> None:
        """Remove its containers, network and volumes; best effort, never raises (a tear-down)."""
        with contextlib.suppress(DockerFailed):
            self.compose("down", "-v", "--remove-orphans", "-t", "3", check=False, timeout=60)
        with contextlib.suppress(DockerFailed):  # what Compose did not remove (a container it lost track of)
            left = project_containers(self.project)
            if left:
                docker("rm", "-f", *left, check=False, timeout=30)

    def state(self) -> dict[str, Any] | None:
        """Its container's `docker inspect` .State, or None when there is no such container."""
        return container_state(self.container)

    def logs(self) -> str:
        return docker("logs", self.container, check=False, timeout=30).stdout
