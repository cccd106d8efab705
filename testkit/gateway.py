"""The simulator Gateway under Compose, for tests and the benchmark.

`SimGateway` is one Compose project of docker/gateway/docker-compose.yml with the simulator
override (docker-compose.sim.yml): the production service (`gateway`) and container layout, the
API published on 127.0.0.1 only, a container name of its own (`ibkr-gateway-<project>`, never an
operator's `ibkr-gateway`) and free host ports, so runs can stand side by side. Nothing exists
until `up()`; `down()` removes all the project made, whatever state it is in, and may run twice.
It never builds or pulls: the images must exist (scripts/provision-docker.sh builds them).

The project has the production layout: `apinet` publishes `port`, which is the order firewall
(container `<container>-firewall`), and the simulator listens behind it on the namespace's loopback
only. The firewall reads the plan in force in `state_dir` (a fresh empty one unless given: no plan,
no order authority) and runs as this process's uid:gid, as under the orchestrator.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.orchestration.config import OrchestrationConfig
from src.orchestration.health import GatewayHealthChecker
from testkit.docker import (
    DockerFailed,
    container_state,
    docker,
    free_port,
    project_containers,
    wait_for_health,
)

COMPOSE_DIR = OrchestrationConfig.docker_compose_dir  # the production Compose directory (the default)
SIM_FILES = ("docker-compose.yml", "docker-compose.sim.yml")
SIM_COMPOSE_FILE = os.pathsep.join(SIM_FILES)  # COMPOSE_FILE for the simulator, relative to COMPOSE_DIR
SIMULATOR_IMAGE = "ibkr-gateway-simulator:local"
FIREWALL_IMAGE = "ibkr-firewall:local"
CONTAINER = "ibkr-gateway"  # the production container name (GATEWAY_CONTAINER's default)
SERVICE = "gateway"


def unique_project(prefix: str) -> str:
    """A fresh Compose project name: `prefix` says whose it is (tests, the bench)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


PROJECT_PREFIX = "zt-test-"  # every Compose project a test (or the bench) makes; anything else is not ours


def new_project() -> str:
    """A fresh Compose project name for a test or a benchmark run."""
    return unique_project(PROJECT_PREFIX)


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
    mode: str = "paper"  # TRADING_MODE: picks the simulator's API port, as for the real Gateway
    state_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="zt-state-")))
    bot_client_id: int = 1  # BOT_CLIENT_ID, the client id the firewall gives the plan's authority
    vnc_port: int = field(default_factory=free_port)  # published as in production
    sim: Mapping[str, object] = field(default_factory=dict)  # login_delay=2 -> SIM_LOGIN_DELAY=2
    files: Sequence[str | Path] = ()  # more Compose files on top of the simulator's

    @property
    def container(self) -> str:
        return container_for(self.project)

    @property
    def firewall(self) -> str:
        """The order firewall's container."""
        return f"{self.container}-firewall"

    @property
    def network(self) -> str:
        """The container holding the network namespace the simulator and the firewall share."""
        return f"{self.container}-net"

    def compose_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for `docker compose` (cwd COMPOSE_DIR), and the base of an orchestrator's
        under test: `base` (this process's environment by default) without its SIM_* and COMPOSE_*
        variables, so a run states all it relies on."""
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if not k.startswith(("SIM_", "COMPOSE_"))}
        env.update(COMPOSE_FILE=os.pathsep.join([*SIM_FILES, *map(str, self.files)]),
                   COMPOSE_PROJECT_NAME=self.project, GATEWAY_CONTAINER=self.container,
                   GATEWAY_PORT=str(self.port), TRADING_MODE=self.mode, VNC_PORT=str(self.vnc_port),
                   STATE_DIR=str(self.state_dir), BOT_CLIENT_ID=str(self.bot_client_id), EXPECTED_ACCOUNTS="",
                   FIREWALL_USER=f"{os.getuid()}:{os.getgid()}")
        env.update({f"SIM_{key.upper()}": str(value) for key, value in self.sim.items()})
        return env

    def compose(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return compose(self.compose_env(), *args, timeout=timeout, check=check)

    def up(self, healthy_within: float | None = 60.0, timeout: float = 120) -> None:
        """Create and start it; then, unless `healthy_within` is None, wait that long for Docker to
        call the simulator healthy and for the API handshake to pass through the firewall on `port`
        (AssertionError otherwise)."""
        self.compose("up", "-d", "--no-build", "--pull", "never", timeout=timeout)
        if healthy_within is not None:
            deadline = time.monotonic() + healthy_within
            wait_for_health(self.container, healthy_within)
            self.wait_serving(max(1.0, deadline - time.monotonic()))

    def wait_serving(self, within: float) -> None:
        """Until the API handshake passes on `port` (the firewall, then the simulator)."""
        deadline = time.monotonic() + within
        while True:
            result = GatewayHealthChecker("127.0.0.1", self.port, timeout=2.0, client_id=0).check_handshake()
            if result.ok:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.project}: no API handshake through the firewall on "
                                     f"127.0.0.1:{self.port} within {within:.0f} s: {result.describe()}")
            time.sleep(0.1)

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
