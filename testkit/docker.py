"""The docker CLI for tests and the benchmark: every call bounded in time, containers as data."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class DockerFailed(Exception):
    """A docker command timed out, or exited non-zero where success was required."""


def docker(*args: str, timeout: float = 60, check: bool = True, env: Mapping[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`docker ARGS...` with its output captured and stdin closed; DockerFailed when it does not
    answer within `timeout` s, or (with `check`) when it exits non-zero."""
    try:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False,
                                env=dict(env) if env is not None else None, cwd=cwd, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DockerFailed(f"docker {' '.join(args[:3])} did not answer within {timeout:g} s") from None
    if check and result.returncode != 0:
        raise DockerFailed(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return result


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def docker_problem(image: str | None = None) -> str | None:
    """None when the docker client, its daemon and Compose v2 answer (and `image` exists, when one is
    named); else why not, in one line."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
        if info.returncode != 0 or not info.stdout.strip():
            return f"the Docker daemon is not reachable: {_last_line(info.stderr)}"
        compose = docker("compose", "version", "--short", timeout=20, check=False)
        if compose.returncode != 0 or not compose.stdout.strip().lstrip("v").startswith("2."):
            said = _last_line(compose.stderr or compose.stdout)
            return f"Docker Compose v2 is not installed ('docker compose version': {said})"
        if image and docker("image", "inspect", "--format", "{{.Id}}", image, timeout=20, check=False).returncode:
            return f"the image {image} is missing"
    except DockerFailed as exc:
        return str(exc)
    return None


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def container_state(name: str) -> dict[str, Any] | None:
    """`docker inspect NAME` .State as data, or None when no container has exactly that name."""
    result = docker("inspect", "--type", "container", "--format", "{{json .State}}", name, check=False, timeout=20)
    if result.returncode != 0:
        return None
    state: dict[str, Any] = json.loads(result.stdout)
    return state


def container_labels(name: str) -> dict[str, str]:
    result = docker("inspect", "--type", "container", "--format", "{{json .Config.Labels}}", name, timeout=20)
    return json.loads(result.stdout) or {}


def wait_for_health(name: str, timeout: float = 30.0, want: str = "healthy") -> float:
    """Seconds until the container's Docker health is `want`; AssertionError, with its state, when it
    exits first or is not `want` within `timeout` s."""
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
    result = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}", timeout=30)
    return result.stdout.split()
