"""Real Docker for tests: the 'skip on a laptop, fail in CI' rule, and the simulator Gateway under Compose.

`require_docker()` skips a test on a developer machine without Docker, and fails it when
`CI` is set: in CI a Docker test that cannot run is a failure, never a skip
(scripts/provision-docker.sh is what makes Docker usable there).

`simulator_gateway(...)` brings the simulator up (testkit.gateway.SimGateway: the production
service and container layout) in a Compose project of its own, named `zt-test-...`, and always
takes it down again (`down -v`), whatever the test did. Everything else about Docker is in testkit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from testkit.docker import docker_problem
from testkit.gateway import PROJECT_PREFIX as PROJECT_PREFIX
from testkit.gateway import SimGateway
from testkit.gateway import new_project as new_project
from tests.helpers.ci import skip_or_fail

PROVISION_HINT = "provision it with: bash scripts/provision-docker.sh"


def require_docker() -> None:
    """Skip the calling test without Docker; fail it instead when CI is set."""
    reason = docker_problem()
    if reason is not None:
        skip_or_fail(f"{reason}; {PROVISION_HINT}")


@contextlib.contextmanager
def simulator_gateway(wait_healthy: bool = True, timeout: float = 60.0, **sim: object) -> Iterator[SimGateway]:
    """A started simulator Gateway (healthy within `timeout` s unless not `wait_healthy`); `sim` are
    its settings without the SIM_ prefix (login_delay=2). Removed at the end, whatever happened."""
    require_docker()
    gateway = SimGateway(project=new_project(), sim=sim)
    try:
        gateway.up(timeout if wait_healthy else None)
        yield gateway
    finally:
        gateway.down()
