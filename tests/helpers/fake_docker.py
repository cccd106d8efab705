"""A scriptable stand-in for the `docker` CLI, put first on PATH of a real orchestrator process.

For Docker faults a real daemon cannot be made to show on demand (a call that never returns,
a daemon that stops in the middle of a run, which the shared dockerd must not do) and for
fast CLI tests that need no container. Every call appends its arguments and parent PID to
``calls.jsonl``; the answer is the first rule whose ``match`` starts the argument line
("container inspect", "compose up", "*" for anything). Rewrite the rules at any moment
(`FakeDockerCLI.rules`): the next call obeys the new ones.

A rule may also ``exec`` the real docker binary (a spy: the call is logged, then Docker
answers) or ``as_user`` a UID, so the real CLI meets the kernel's own permission checks.

The script runs with ``python -I -S`` (standard library only) to keep each call ~20 ms.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CANNOT_CONNECT = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                  "Is the docker daemon running?")


PROJECT, CONTAINER = "@@project@@", "@@container@@"  # filled in by the fake from its caller's environment


def container_state(status: str = "running", *, health: str | None = None, exit_code: int = 0,
                    name: str = CONTAINER, project: str | None = PROJECT, service: str | None = "gateway",
                    image: str = "ibkr-gateway-simulator:local") -> str:
    """`docker container inspect --format INSPECT_FORMAT` output for a container in `status`.

    By default the container is the caller's own Gateway: its name and Compose project are the
    orchestrator's GATEWAY_CONTAINER and COMPOSE_PROJECT_NAME, filled in when the fake answers.
    """
    state: dict[str, Any] = {"Status": status, "Running": status == "running", "ExitCode": exit_code,
                             "StartedAt": "2026-11-25T08:00:00.000000000Z"}
    if health:
        state["Health"] = {"Status": health}
    labels = {k: v for k, v in (("com.docker.compose.project", project),
                                ("com.docker.compose.service", service)) if v is not None}
    return json.dumps({"State": state, "Name": f"/{name}", "Labels": labels, "Image": image}) + "\n"


def rule(match: str, *, stdout: str = "", stderr: str = "", code: int = 0, sleep: float = 0.0,
         follow: bool = False, exec_real: bool = False, as_user: int | None = None) -> dict[str, Any]:
    """One answer: print `stdout`/`stderr` after `sleep` s and exit with `code`, or hand over to real docker.

    `follow`: while sleeping, obey new rules as soon as they are written (a `docker events`
    stream ends when its daemon dies).
    """
    return {"match": match, "stdout": stdout, "stderr": stderr, "code": code, "sleep": sleep,
            "follow": follow, "exec_real": exec_real, "as_user": as_user}


def healthy_daemon(state: str | None = None) -> list[dict[str, Any]]:
    """A daemon that answers, with the Gateway container running (no healthcheck) unless `state` says else."""
    return [
        rule("version", stdout="20.10.24-fake\n"),
        rule("compose version", stdout="v2.40.3\n"),
        rule("container inspect", stdout=state or container_state()),
        rule("events", sleep=3600, follow=True),  # a quiet event stream, closed by the orchestrator
        rule("*"),
    ]


@dataclass
class Call:
    args: list[str]
    ppid: int
    at: float

    @property
    def line(self) -> str:
        return " ".join(self.args)


class FakeDockerCLI:
    """`docker` in `directory`/bin, answering from rules; `.path_with(PATH)` puts it first."""

    def __init__(self, directory: Path, rules: list[dict[str, Any]] | None = None) -> None:
        self.directory = directory
        self.bin = directory / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.spec = directory / "rules.json"
        self.log = directory / "calls.jsonl"
        self.rules(rules if rules is not None else healthy_daemon())
        shim = self.bin / "docker"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "{__file__}" "{self.spec}" "$@"\n')
        shim.chmod(0o755)

    def rules(self, rules: list[dict[str, Any]]) -> None:
        """Replace the rules atomically: a call in flight sees the old or the new set, never half."""
        temp = self.spec.with_suffix(".tmp")
        temp.write_text(json.dumps({"rules": rules, "log": str(self.log), "real": _real_docker(self.bin)}))
        temp.replace(self.spec)

    def path_with(self, path: str | None = None) -> str:
        return f"{self.bin}{os.pathsep}{path if path is not None else os.environ.get('PATH', '')}"

    @property
    def calls(self) -> list[Call]:
        try:
            lines = self.log.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [Call(**json.loads(line)) for line in lines if line.strip()]

    def count(self, prefix: str) -> int:
        return sum(call.line.startswith(prefix) for call in self.calls)


def _real_docker(exclude: Path) -> str | None:
    """The real docker binary on PATH, skipping the fake's own directory."""
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != exclude)
    return shutil.which("docker", path=path)


def _main(spec_path: str, args: list[str]) -> int:
    spec_file = Path(spec_path)
    spec = json.loads(spec_file.read_text())
    with open(spec["log"], "a") as log:
        log.write(json.dumps({"args": args, "ppid": os.getppid(), "at": time.time()}) + "\n")
    line = " ".join(args)
    chosen = _match(spec, line)
    if chosen["exec_real"] or chosen["as_user"] is not None:
        real = spec["real"]
        if chosen["as_user"] is not None:  # the real CLI as an unprivileged user: the kernel decides
            os.environ.update(HOME="/tmp", DOCKER_CONFIG=str(spec_file.parent / "docker-config"))
            os.setgroups([])
            os.setgid(chosen["as_user"])
            os.setuid(chosen["as_user"])
        os.execv(real, [real, *args])  # noqa: S606 - become the real docker CLI, arguments as given
    deadline = time.monotonic() + chosen["sleep"]
    if "--until" in args:  # `docker events --until <unix time>` ends its stream then, as Docker's does
        deadline = min(deadline, time.monotonic() + float(args[args.index("--until") + 1]) - time.time())
    if chosen["follow"]:
        version = _version(spec_file)
        while time.monotonic() < deadline:
            if _version(spec_file) != version:
                return _answer(_match(json.loads(spec_file.read_text()), line))
            time.sleep(0.05)
    time.sleep(max(0.0, deadline - time.monotonic()))
    return _answer(chosen)


def _version(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def _match(spec: dict[str, Any], line: str) -> dict[str, Any]:
    return next(r for r in spec["rules"] if r["match"] == "*" or line.startswith(r["match"]))


def _answer(chosen: dict[str, Any]) -> int:
    own = {PROJECT: os.environ.get("COMPOSE_PROJECT_NAME", "ibkr-gateway"),
           CONTAINER: os.environ.get("GATEWAY_CONTAINER", "ibkr-gateway")}
    stdout = chosen["stdout"]
    for placeholder, value in own.items():
        stdout = stdout.replace(placeholder, value)
    sys.stdout.write(stdout)
    sys.stderr.write(chosen["stderr"])
    return int(chosen["code"])


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], sys.argv[2:]))
