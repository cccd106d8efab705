"""The reliability suite's worlds, and the hypothesis profiles.

`world`: the real CLI with a fake `docker` first on PATH (tests/helpers/fake_docker.py), an
in-process simulator Gateway serving the real TWS protocol, a local webhook and the real bot.
`stack`: the same on real Docker with the simulator container (tests/helpers/stack.py).
After each test nothing a test started may still run: no fake docker call, no bot.

Hypothesis profiles, chosen by HYPOTHESIS_PROFILE: "ci" (the default, ~150 examples) and
"long" (10 000 examples): HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest --timeout 0
tests/reliability/test_gameplan_properties.py
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, settings

from src.simulator import GatewaySimulator
from tests.helpers.fake_docker import FakeDockerCLI
from tests.helpers.simulator import running_simulator
from tests.helpers.stack import Stack, stack, stop_bot, wait_until
from tests.helpers.webhook_receiver import WebhookReceiver
from tests.orchestration.conftest import Harness

__all__ = ["fake_docker", "gateway", "harness", "stack", "world"]  # fixtures for this package

settings.register_profile("ci", max_examples=150, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=10_000, deadline=None, print_blob=True,  # failures kept in .hypothesis/
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Short deadlines through configuration, so every fault ends in seconds.
FAST = {"GATEWAY_HEALTH_TIMEOUT": "2", "HEALTH_CHECK_TIMEOUT": "1", "DOCKER_COMMAND_TIMEOUT": "5",
        "BOT_READY_TIMEOUT": "15", "TWOFA_WAIT_TIMEOUT": "0"}


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain `text` (zombies are dead)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if proc.info["status"] != psutil.STATUS_ZOMBIE and text in cmdline:
            found.append(cmdline)
    return found


def assert_nothing_left_running(text: str, grace: float = 2.0) -> None:
    """No process mentioning `text` survives `grace` seconds (a process that is exiting gets that long)."""
    with contextlib.suppress(AssertionError):
        wait_until(lambda: not processes_mentioning(text), grace)
    left = processes_mentioning(text)
    for proc in psutil.process_iter(["cmdline"]):
        if " ".join(proc.info["cmdline"] or ()) in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
    assert not left, f"left running: {left}"


def secret_hits(world: Stack, secrets: Iterable[str], **outputs: str) -> list[str]:
    """Where a secret shows: every file under logs/ and state/, every alert payload the webhook got
    (its body and headers; the URL path is where the token belongs), and `outputs` (stderr...)."""
    places = dict(outputs)
    for path in [*world.log_dir.rglob("*"), *world.state_dir.rglob("*")]:
        if path.is_file():
            places[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for number, request in enumerate(world.hook.received):
        places[f"alert payload {number}"] = request.body.decode("utf-8", "replace") + repr(request.headers)
    return [f"{secret!r} in {where}" for where, text in places.items() for secret in secrets if secret in text]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    """The orchestrator in this process with fake side effects (tests/orchestration/conftest.py)."""
    return Harness(tmp_path)


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
