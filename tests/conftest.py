"""The suite's shared fixtures, in one place.

* `harness`: the orchestrator in this process with fake side effects (tests/helpers/harness.py).
* `stack`: the real CLI against the simulator Gateway on real Docker (testkit/stack.py).
* `world`: the real CLI with a fake `docker` first on PATH (`fake_docker`, tests/helpers/fake_docker.py)
  and a logged-in simulator Gateway in this process (`gateway`); nothing it started survives the test.
* `bot_reaper`: collects state dirs; every bot started there is stopped when the test ends.
* `ib`: an ib_async client on its own event loop; `run_cli`: `python -m src.simulator` processes.

Hypothesis profiles, chosen by HYPOTHESIS_PROFILE: "ci" (the default, ~150 examples) and "long"
(10 000 examples): HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest --timeout 0
tests/reliability/test_gameplan_properties.py

And for every test: the configuration's default `.env` (the repository's, the developer's own
settings) is a file that does not exist, so no test in this process reads it (`_no_repo_dotenv`).
A CLI run as a subprocess gets an environment that hides it instead (testkit.repo_env).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from ib_async import IB

from src.orchestration import config
from src.simulator import GatewaySimulator
from testkit.docker import project_containers
from testkit.repo_env import REPO_DOTENV
from testkit.stack import Stack, assert_nothing_left_running, stop_bot
from testkit.webhook import WebhookReceiver
from tests.helpers.fake_docker import FakeDockerCLI
from tests.helpers.harness import Harness
from tests.helpers.simulator import SimulatorProcess, running_simulator
from tests.integration.docker_env import require_docker

settings.register_profile("ci", max_examples=150, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=10_000, deadline=None, print_blob=True,  # failures kept in .hypothesis/
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Short deadlines through configuration, so every fault a `world` meets ends in seconds.
FAST = {"GATEWAY_HEALTH_TIMEOUT": "2", "HEALTH_CHECK_TIMEOUT": "1", "DOCKER_COMMAND_TIMEOUT": "5",
        "BOT_READY_TIMEOUT": "15", "TWOFA_WAIT_TIMEOUT": "0"}


@pytest.fixture(autouse=True, scope="session")
def _no_repo_dotenv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """OrchestrationConfig.from_env() and the CLIs' main() read the repository's `.env` when no other
    file is named; in this process that default is a file that does not exist."""
    missing = tmp_path_factory.mktemp("no-dotenv") / ".env"
    read = config.read_dotenv
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "read_dotenv", lambda path: read(missing if Path(path) == REPO_DOTENV else path))
        yield


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A Stack on real Docker; its bot is stopped and its containers removed whatever the test did."""
    require_docker()
    with WebhookReceiver() as hook:
        world = Stack(tmp_path, hook)
        try:
            yield world
        finally:
            stop_bot(world.state_dir)
            world.down()
    assert project_containers(world.project) == [], "a test left a container behind"


@pytest.fixture
def fake_docker(tmp_path: Path) -> FakeDockerCLI:
    """A `docker` that answers as a healthy daemon with the Gateway container running."""
    return FakeDockerCLI(tmp_path / "fake-docker")


@pytest.fixture
def gateway() -> Iterator[GatewaySimulator]:
    """A logged-in simulator Gateway in this process."""
    with running_simulator() as simulator:
        yield simulator


@pytest.fixture
def world(tmp_path: Path, fake_docker: FakeDockerCLI, gateway: GatewaySimulator) -> Iterator[Stack]:
    """The real CLI against `fake_docker` and `gateway`; proves afterwards that nothing was left running."""
    with WebhookReceiver() as hook:
        cli = Stack(tmp_path, hook, port=gateway.port, extra={"PATH": fake_docker.path_with(), **FAST})
        try:
            yield cli
        finally:
            stop_bot(cli.state_dir)
    assert_nothing_left_running(str(tmp_path))


@pytest.fixture
def bot_reaper() -> Iterator[Callable[[Path], None]]:
    """Collects state dirs; every bot started there is stopped when the test ends."""
    dirs: list[Path] = []
    yield dirs.append
    for state_dir in dirs:
        stop_bot(state_dir)


@pytest.fixture
def ib() -> Iterator[IB]:
    """An ib_async client on its own event loop, disconnected and closed afterwards.

    ib_async's blocking calls run the thread's current loop (util.getLoop), so
    each test gets a fresh one and no loop or socket outlives the test.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    client = IB()
    try:
        yield client
    finally:
        client.disconnect()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, asyncio.sleep(0.01), return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def run_cli() -> Iterator[Callable[..., SimulatorProcess]]:
    """Start ``python -m src.simulator`` processes; each is killed when the test ends."""
    processes: list[SimulatorProcess] = []

    def run(*args: str, env: dict[str, str] | None = None) -> SimulatorProcess:
        processes.append(SimulatorProcess(*args, env=env))
        return processes[-1]

    yield run
    for process in processes:
        process.close()
