"""Docker and Compose through the `docker` CLI, every call bounded by a timeout.

The Gateway container is identified exactly (`docker container inspect <name>`,
never `docker ps --filter name=`, which matches substrings), and its state is read
as JSON data, never by looking for "Up" in text. Every failure of the CLI itself
(missing binary, daemon down, socket permission, a hung call) becomes a
`DockerError` whose message tells the operator what to do.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from src.core.settings import FIREWALL_SERVICE, default_float, firewall_container

if TYPE_CHECKING:
    from src.orchestration.config import OrchestrationConfig

log = logging.getLogger(__name__)

# DockerError kinds
MISSING_BINARY = "missing_binary"
DAEMON_DOWN = "daemon_down"
PERMISSION = "permission_denied"
TIMEOUT = "timeout"
NO_COMPOSE = "no_compose"
IBC_COMMAND = "ibc_command"  # IBC's command server did not answer
IBC_COMMAND_PORT = 7462  # CommandServerPort inside the Gateway container (docker/gateway/scripts/ibc-command-server.sh)
IBC_COMMAND_TIMEOUT = 15.0
TIDY_RESTART_WAIT = 60.0  # a restart's tidy STOP: seconds for the Gateway to log out and its container to exit
# bash inside the container (the Gateway image and the simulator's both have it): connect to the command server
# on the loopback, send one line, print IBC's first OK/ERROR answer; exit 3 when nothing listens, 4 when it stays
# silent. $1 port, $2 command, $3 seconds.
_IBC_COMMAND_SCRIPT = (
    'exec 3<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null || { echo "nothing listens on 127.0.0.1:$1" >&2; exit 3; }; '
    'printf "%s\\n" "$2" >&3; '
    'while IFS= read -r -t "$3" line <&3; do case "$line" in OK*|ERROR*) printf "%s\\n" "$line"; exit 0;; esac; '
    'done; echo "no answer within $3 s" >&2; exit 4'
)
FOREIGN = "foreign_container"  # a container has the Gateway's name but is not this project's service
FAILED = "failed"

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# What `container inspect` prints: the state plus what identifies the container (never .Config.Env,
# which holds the IBKR user name).
INSPECT_FORMAT = ('{"State":{{json .State}},"Name":{{json .Name}},'
                  '"Labels":{{json .Config.Labels}},"Image":{{json .Config.Image}},"ImageId":{{json .Image}}}')
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")


class DockerError(Exception):
    """A docker CLI failure, with a kind and one line saying what to do."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class ContainerState:
    """The parts of `.State` the orchestrator acts on."""

    status: str  # created, running, restarting, paused, exited, dead, removing
    exit_code: int
    health: str | None  # starting, healthy, unhealthy; None = no healthcheck
    started_at: str
    running: bool
    name: str = ""  # as Docker names it, without the leading "/"
    project: str | None = None  # Compose labels; None when the container was not made by Compose
    service: str | None = None
    image: str = ""
    image_id: str = ""  # the running image's id (sha256:...): what runs, whatever its tag now names

    @classmethod
    def from_inspect(cls, state: Mapping[str, object], identity: Mapping[str, object] | None = None) -> ContainerState:
        health = state.get("Health")
        ident = identity or {}
        labels = ident.get("Labels")
        labels = labels if isinstance(labels, Mapping) else {}
        return cls(
            status=str(state.get("Status", "unknown")),
            exit_code=int(state.get("ExitCode", 0) or 0),  # type: ignore[call-overload]
            health=str(health.get("Status")) if isinstance(health, Mapping) else None,
            started_at=str(state.get("StartedAt", "")),
            running=bool(state.get("Running", False)),
            name=str(ident.get("Name") or "").lstrip("/"),
            project=str(labels[PROJECT_LABEL]) if PROJECT_LABEL in labels else None,
            service=str(labels[SERVICE_LABEL]) if SERVICE_LABEL in labels else None,
            image=str(ident.get("Image") or ""),
            image_id=str(ident.get("ImageId") or ""),
        )

    @property
    def up(self) -> bool:
        """Running and not being restarted by Docker."""
        return self.running and self.status == "running"

    def describe(self) -> str:
        health = f", health {self.health}" if self.health else ", no healthcheck"
        if self.up:
            return f"running{health}"
        return f"{self.status} (exit code {self.exit_code})"


Runner = Callable[..., subprocess.CompletedProcess[str]]


class DockerClient:
    """The docker commands the orchestrator needs, for one Gateway container."""

    def __init__(
        self,
        container: str,
        service: str,
        compose_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = default_float("DOCKER_COMMAND_TIMEOUT"),
        runner: Runner = subprocess.run,
    ) -> None:
        self.container = container
        self.service = service
        self.firewall = firewall_container(container)  # the order firewall's container (service `firewall`)
        self.compose_dir = compose_dir
        self.env = dict(env) if env is not None else None
        self.timeout = timeout
        self._run = runner
        self._compose: list[str] | None = None

    @classmethod
    def from_config(cls, config: OrchestrationConfig, timeout: float | None = None) -> DockerClient:
        """The Gateway container and Compose project the configuration names."""
        return cls(config.gateway_container, config.gateway_service, config.docker_compose_dir,
                   env=config.child_env, timeout=config.docker_command_timeout if timeout is None else timeout)

    # --- primitives -----------------------------------------------------------------

    def run(self, args: Sequence[str], *, timeout: float | None = None, cwd: Path | None = None,
            merge_stderr: bool = False) -> str:
        """Run one CLI command; return stdout (with stderr interleaved if `merge_stderr`) or raise DockerError."""
        limit = self.timeout if timeout is None else timeout
        streams = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT} if merge_stderr \
            else {"capture_output": True}
        try:
            result = self._run(
                list(args), text=True, timeout=limit, env=self.env, cwd=cwd, stdin=subprocess.DEVNULL, **streams,
            )
        except FileNotFoundError:
            raise DockerError(
                MISSING_BINARY,
                f"'{args[0]}' not found on PATH: install Docker Engine (Linux) or start "
                "Docker Desktop with WSL integration enabled (Windows)",
            ) from None
        except subprocess.TimeoutExpired:
            raise DockerError(
                TIMEOUT, f"'{' '.join(args[:3])}' did not answer within {limit:g} s: is the Docker daemon hung?"
            ) from None
        if result.returncode != 0:
            raise classify(result.stderr or result.stdout, " ".join(args[:3]))
        return str(result.stdout)

    def ping(self, timeout: float = 10.0) -> str:
        """Raise DockerError unless the daemon answers; return its version."""
        return self.run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=timeout).strip()

    def compose(self) -> list[str]:
        """`docker compose` (v2) when it works, else `docker-compose` (v1)."""
        if self._compose is None:
            try:
                self.run(["docker", "compose", "version", "--short"], timeout=10)
                self._compose = ["docker", "compose"]
            except DockerError as v2_error:
                if shutil.which("docker-compose") is None:
                    raise DockerError(
                        NO_COMPOSE, "neither 'docker compose' (v2) nor 'docker-compose' (v1) works: "
                        f"install the Compose v2 plugin ({v2_error.message})",
                    ) from None
                self._compose = ["docker-compose"]
        return self._compose

    # --- the Gateway container --------------------------------------------------------

    def inspect(self) -> ContainerState | None:
        """The Gateway container's state; None when no container has exactly that name.

        `docker container inspect X` also resolves ID prefixes, so the returned name is compared
        exactly. A container with the name but not this project's Compose labels is someone
        else's: DockerError(FOREIGN), so no caller ever starts, restarts or stops it.
        """
        return self._inspect(self.container, self.service, "Gateway", "GATEWAY_CONTAINER to another name")

    def inspect_firewall(self) -> ContainerState | None:
        """The order firewall's container state, as `inspect` (None: there is none)."""
        return self._inspect(self.firewall, FIREWALL_SERVICE, "order firewall",
                             "GATEWAY_CONTAINER to another name (the firewall is GATEWAY_CONTAINER-firewall)")

    def start_firewall(self) -> None:
        """Create (if absent) and start the order firewall: no login, no 2FA, the Gateway untouched."""
        self.run([*self.compose(), "up", "-d", "--no-recreate", FIREWALL_SERVICE], cwd=self.compose_dir,
                 timeout=max(self.timeout, 120))

    def _inspect(self, name: str, service: str, what: str, rename: str) -> ContainerState | None:
        try:
            out = self.run(["docker", "container", "inspect", "--format", INSPECT_FORMAT, name])
        except DockerError as exc:
            if exc.kind == "no_such_container":
                return None
            raise
        try:
            data = json.loads(out)
            state = ContainerState.from_inspect(data["State"], data)
        except (ValueError, TypeError, KeyError) as exc:
            raise DockerError(FAILED, f"unreadable state for container {name}: {exc}") from None
        if state.name != name:
            return None  # an ID prefix matched another container: none is named exactly so
        project = self.project()
        if (state.project, state.service) != (project, service):
            owner = f"Compose project {state.project!r}, service {state.service!r}" if state.project \
                else "no Compose project (made by hand)"
            raise DockerError(
                FOREIGN, f"container {name} is not this configuration's {what}: it belongs to "
                f"{owner}, image {state.image or 'unknown'}, not project {project!r} service {service!r}; "
                f"it was left untouched: remove or rename it (docker rename {name} "
                f"{name}-old), or set {rename}")
        return state

    def project(self) -> str:
        """The Compose project name `docker compose` will use here: COMPOSE_PROJECT_NAME, else the
        last top-level `name:` among the Compose files, else the directory's name (Compose's rules)."""
        env = self.env if self.env is not None else os.environ
        if env.get("COMPOSE_PROJECT_NAME"):
            return str(env["COMPOSE_PROJECT_NAME"])
        listed = env.get("COMPOSE_FILE")
        separator = env.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        found = [n for n in COMPOSE_FILES if (self.compose_dir / n).is_file()][:1]
        files = listed.split(separator) if listed else found
        name = None
        for file in files:
            try:
                text = (self.compose_dir / file).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            match = re.search(r"""^name:\s*["']?([A-Za-z0-9_-]+)""", text, re.MULTILINE)
            name = match.group(1) if match else name
        return name or re.sub(r"[^a-z0-9_-]", "", self.compose_dir.resolve().name.lower())

    def compose_up(self) -> None:
        """Create (if absent) and start the Gateway service and the order firewall in front of it (and,
        by depends_on, the holder of the network namespace they share)."""
        self.run([*self.compose(), "up", "-d", self.service, FIREWALL_SERVICE], cwd=self.compose_dir,
                 timeout=max(self.timeout, 120))

    def start(self) -> None:
        self.run(["docker", "start", self.container])

    def stop(self, stop_timeout: int = 30) -> None:
        """A tidy stop: IBC's STOP (the Gateway logs out: no session slot left held for the next login), up to
        `stop_timeout` s for the container to exit by itself, then `docker stop` for whatever is left."""
        if not self._tidy_stop(stop_timeout):
            self.run(["docker", "stop", "-t", str(stop_timeout), self.container],
                     timeout=self.timeout + stop_timeout)

    def _tidy_stop(self, within: float) -> bool:
        """IBC's STOP, then a wait for the container to exit: True once it has, False when IBC did not take the
        command (no command server, not answering) or the container did not exit within `within` s."""
        try:
            tidy = self.ibc_command("STOP", timeout=10).startswith("OK")
        except DockerError as exc:
            log.info("Gateway %s: no tidy STOP through IBC (%s)", self.container, exc.message)
            return False
        if not tidy:
            return False
        try:
            self.run(["docker", "wait", self.container], timeout=within)
        except DockerError as exc:
            if exc.kind != TIMEOUT:
                raise
            return False
        return True

    def restart(self, stop_timeout: int = 10) -> None:
        """A tidy restart: IBC's STOP and the container's own exit, then `docker start` (the next login meets no
        "existing session" left by this one); without IBC's STOP, `docker restart` as before."""
        if self._tidy_stop(TIDY_RESTART_WAIT):
            self.start()
            return
        self.run(["docker", "restart", "-t", str(stop_timeout), self.container], timeout=self.timeout + stop_timeout)

    def ibc_command(self, command: str, timeout: float = IBC_COMMAND_TIMEOUT) -> str:
        """One command to IBC's command server inside the Gateway container, through `docker exec` (its port
        is on the container's loopback and never published): IBC's answer line ("OK ...", "ERROR ..."), or
        DockerError (IBC_COMMAND: the command server does not answer)."""
        try:
            out = self.run(["docker", "exec", self.container, "bash", "-c", _IBC_COMMAND_SCRIPT, "ibc-command",
                            str(IBC_COMMAND_PORT), command, f"{timeout:g}"], timeout=timeout + 10)
        except DockerError as exc:
            if exc.kind == FAILED:
                raise DockerError(IBC_COMMAND, f"IBC's command server did not answer {command} "
                                  f"(CommandServerPort {IBC_COMMAND_PORT} in the container): {exc.message}") from None
            raise
        return out.strip().splitlines()[-1] if out.strip() else ""

    def memory_mb(self) -> float | None:
        """The Gateway container's memory use in MB (`docker stats`), None when Docker does not say (the JVM
        is known to grow: --status shows it, the supervisor alerts above GATEWAY_MEMORY_ALERT_MB)."""
        out = self.run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", self.container]).strip()
        return parse_memory(out.split("/")[0]) if out else None

    def repo_digests(self, image_id: str) -> list[str]:
        """The registry digests (`repository@sha256:...`) Docker holds for an image; [] for one that never came
        from a registry (built here, or loaded from a file)."""
        out = self.run(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image_id]).strip()
        try:
            digests = json.loads(out) if out else []
        except ValueError:
            raise DockerError(FAILED, f"docker image inspect gave no digest list: {out[:80]!r}") from None
        return [d for d in digests if isinstance(d, str)] if isinstance(digests, list) else []

    def logs_since(self, since: str, tail: int = 5000) -> str:
        """Container output since an RFC 3339 instant (its current start): stdout and stderr in the
        order the container wrote them (IBC logs to stdout; the JVM and scripts to stderr)."""
        return self.run(["docker", "logs", "--since", since, "--tail", str(tail), self.container],
                        merge_stderr=True)

    def watch(self, on_event: Callable[[str], None], until: float | None = None, *,
              firewall: bool = False) -> EventWatcher:
        """Stream the container's lifecycle events to `on_event` (push, not poll) until the Unix time
        `until`: the stream of a killed orchestrator then still ends by itself. With `firewall`, the
        order firewall's too, each as ``firewall:<action>``."""
        return EventWatcher(self.container, on_event, self.env, until,
                            also={self.firewall: "firewall:"} if firewall else None)


_UNITS = {"b": 1e-6, "kb": 1e-3, "kib": 1.024e-3, "mb": 1.0, "mib": 1.048576, "gb": 1e3, "gib": 1073.741824}


def pinned_digest(reference: str) -> str | None:
    """The digest an image reference is pinned to (`name[:tag]@sha256:...` -> `sha256:...`), or None."""
    _, at, digest = reference.partition("@")
    return digest if at and digest.startswith("sha256:") else None


def running_digest(reference: str, digests: Sequence[str]) -> str | None:
    """Of an image's registry digests, the one for the repository it was started as (None: none)."""
    repository = reference.partition("@")[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:  # a tag, not a registry's port
        repository = repository[: len(repository) - len(last)] + last.partition(":")[0]
    found = [item.partition("@") for item in digests]
    for name, _, digest in found:
        if name == repository:
            return digest
    return found[0][2] if len(found) == 1 else None  # one registry's name for it (docker.io/library/x as x)


def parse_memory(text: str) -> float | None:
    """'512.3MiB' -> MB; None for anything else."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*", text)
    if match is None or match[2].lower() not in _UNITS:
        return None
    return float(match[1]) * _UNITS[match[2].lower()]


def wait_for_daemon(docker: DockerClient, timeout: float, *, clock: Callable[[], float],
                    sleep: Callable[[float], object], poll: float = 1.0) -> str:
    """Ask the daemon until it answers or `timeout` s pass (Docker Desktop starts after logon).

    Returns its version; raises the last DockerError at the deadline, and at once for a
    permission problem (waiting cannot fix that).
    """
    started = clock()
    deadline = started + timeout
    while True:
        try:
            return docker.ping(timeout=max(1.0, min(10.0, deadline - clock())))
        except DockerError as exc:
            left = deadline - clock()
            if exc.kind == PERMISSION or left <= 0:
                raise
            if clock() - started < poll:
                log.warning("Docker not available yet (%s): waiting up to %.0f s (DOCKER_WAIT_TIMEOUT)",
                            exc.message, left)
            sleep(min(poll, left))


def classify(stderr: str, what: str) -> DockerError:
    """Turn a docker CLI error text into a DockerError with advice."""
    text = (stderr or "").strip()
    low = text.lower()
    if "no such container" in low or "no such object" in low:
        return DockerError("no_such_container", text.splitlines()[0] if text else "no such container")
    if "permission denied" in low and ("docker.sock" in low or "docker daemon socket" in low):
        return DockerError(
            PERMISSION, "permission denied on the Docker socket: add this user to the 'docker' group "
            "(then log in again) or run as a user that may use Docker",
        )
    if "cannot connect to the docker daemon" in low or "is the docker daemon running" in low \
            or "error during connect" in low:
        return DockerError(
            DAEMON_DOWN, "the Docker daemon is not running or not reachable (DOCKER_HOST): start Docker "
            "Engine (systemctl start docker) or Docker Desktop",
        )
    first = text.splitlines()[-1] if text else "no error output"
    return DockerError(FAILED, f"'{what}' failed: {first[:300]}")


LIFECYCLE_EVENTS = ("start", "restart", "die", "stop", "kill", "oom", "destroy", "health_status")


class EventWatcher:
    """Runs `docker events` for a container (and `also` others) in a thread; calls back with each action."""

    def __init__(self, container: str, on_event: Callable[[str], None], env: Mapping[str, str] | None,
                 until: float | None = None, also: Mapping[str, str] | None = None) -> None:
        self._on_event = on_event
        self._prefixes = {container: "", **(also or {})}  # container name -> the prefix of its actions
        command = ["docker", "events", "--format", "{{.Actor.Attributes.name}} {{.Action}}",
                   "--filter", "type=container"]
        for name in self._prefixes:
            command += ["--filter", f"container={name}"]
        for event in LIFECYCLE_EVENTS:  # not exec_*: a healthcheck execs every second
            command += ["--filter", f"event={event}"]
        if until is not None:
            command += ["--until", f"{until:.3f}"]
        try:
            self._proc: subprocess.Popen[str] | None = subprocess.Popen(
                command,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                text=True, env=dict(env) if env is not None else None,
            )
        except OSError:
            self._proc = None
            return
        self._thread = threading.Thread(target=self._pump, name="docker-events", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        if self._proc is None or self._proc.stdout is None:
            return
        for line in self._proc.stdout:
            name, _, action = line.strip().partition(" ")
            if action and name in self._prefixes:
                self._on_event(self._prefixes[name] + action)
        self._on_event("stream-ended")  # the daemon went away (or the stream was closed): look now

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
