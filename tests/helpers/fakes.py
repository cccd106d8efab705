"""Fakes for the orchestrator's side effects: Docker, the health probe, the notifier."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from collections.abc import Callable
from dataclasses import dataclass, field

from src.orchestration.machine.bot import record_process
from src.orchestration.gateway.docker import ContainerState, DockerError
from src.core.statefiles import BOT_PROCESS_FILE
from src.orchestration.health import OK, HandshakeResult

RUNNING = ContainerState("running", 0, None, "2026-11-25T08:00:00Z", True)
EXITED = ContainerState("exited", 137, None, "2026-11-25T08:00:00Z", False)


def probe(reason: str = OK) -> HandshakeResult:
    if reason == OK:
        return HandshakeResult(OK, "logged in", 0.001, 178, ("DU123456",))
    return HandshakeResult(reason, f"simulated {reason}", 0.001)


class _Watch:
    def close(self) -> None:
        pass


@dataclass
class FakeDocker:
    """A Gateway container in memory; records every command it is given."""

    state: ContainerState | None = None
    ping_error: DockerError | None = None
    fail: dict[str, DockerError] = field(default_factory=dict)  # command -> error it raises
    container: str = "ibkr-gateway"
    calls: list[str] = field(default_factory=list)
    on_event: Callable[[str], None] | None = None
    log: str = ""  # what `docker logs --since <start>` shows
    firewall_state: ContainerState | None = RUNNING  # the order firewall's container
    ibc_answers: list[str] | None = None  # IBC's command server's answers, in order (None: it does not answer)
    memory: float | None = 900.0  # MB the container uses (docker stats)
    digests: dict[str, list[str]] = field(default_factory=dict)  # image id -> its registry digests
    firewall: str = "ibkr-gateway-firewall"

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    def ping(self, timeout: float = 10.0) -> str:
        self._call("ping")
        if self.ping_error:
            raise self.ping_error
        return "fake-28.0"

    def inspect(self) -> ContainerState | None:
        self._call("inspect")
        return self.state

    def compose_up(self) -> None:
        self._call("compose_up")
        self.state = RUNNING

    def start(self) -> None:
        self._call("start")
        self.state = RUNNING

    def restart(self, stop_timeout: int = 10) -> None:
        self._call("restart")
        self.state = RUNNING

    def stop(self, stop_timeout: int = 30) -> None:
        self._call("stop")
        self.state = EXITED

    def logs_since(self, since: str, tail: int = 5000) -> str:
        self._call("logs")
        return self.log

    def ibc_command(self, command: str, timeout: float = 15.0) -> str:
        self._call(f"ibc:{command}")
        if not self.ibc_answers:
            raise DockerError("ibc_command", f"IBC's command server did not answer {command}")
        return self.ibc_answers.pop(0)

    def memory_mb(self) -> float | None:
        return self.memory

    def repo_digests(self, image_id: str) -> list[str]:
        return list(self.digests.get(image_id, []))

    def inspect_firewall(self) -> ContainerState | None:
        return self.firewall_state

    def start_firewall(self) -> None:
        self._call("start_firewall")
        self.firewall_state = RUNNING

    def watch(self, on_event: Callable[[str], None], until: float | None = None, *, firewall: bool = False) -> _Watch:
        self.on_event = on_event
        return _Watch()

    def emit(self, action: str, state: ContainerState | None) -> None:
        """The container changes state and Docker pushes the event."""
        self.state = state
        if self.on_event:
            self.on_event(action)


class FakeHealth:
    """Answers handshake probes from a script: a function of the probe number."""

    def __init__(self, script: Callable[[int], HandshakeResult] = lambda n: probe()) -> None:
        self.script = script
        self.calls: list[float] = []
        self.timeouts: list[float | None] = []

    def check_handshake(self, timeout: float | None = None) -> HandshakeResult:
        self.calls.append(time.monotonic())
        self.timeouts.append(timeout)
        return self.script(len(self.calls))


class RecordingNotifier:
    """Collects alerts instead of sending them."""

    def __init__(self, delay: float = 0.0) -> None:
        self.alerts: list[tuple[str, str]] = []
        self.delay = delay
        self.lock = threading.Lock()

    def send(self, level: str, message: str, *, title: str | None = None,
             fields: dict[str, str] | None = None) -> bool:
        time.sleep(self.delay)
        with self.lock:
            self.alerts.append((level, message))
        return True

    def levels(self) -> list[str]:
        return [level for level, _ in self.alerts]


@contextlib.contextmanager
def playing_the_bot(state_dir: Path) -> Iterator[None]:
    """This process is the bot, recorded as the orchestrator records the process it starts."""
    state_dir.mkdir(parents=True, exist_ok=True)
    record_process(state_dir, SimpleNamespace(pid=os.getpid()), [sys.executable])  # type: ignore[arg-type]
    try:
        yield
    finally:
        (state_dir / BOT_PROCESS_FILE).unlink(missing_ok=True)
