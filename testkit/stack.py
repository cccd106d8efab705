"""One test's world for the real CLI: state/, logs/, a local webhook and a simulator Gateway under Compose.

`Stack.orchestrate()` runs `python -m src.orchestration.startup` as a subprocess and returns
what an operator sees (`Run`: exit code, time, stderr, the runs.jsonl record, the alerts the
webhook received); `Stack.launch()` starts it without waiting, for signals and races.
`extra` environment (e.g. a fake `docker` first on PATH) is added to every run, and `prefix`
(e.g. `setpriv ...`) runs the CLI through a wrapper.

Shared by tests/integration (real Docker), tests/reliability (real Docker or a fake CLI), the soak
(scripts/soak.py) and the recovery benchmark (bench/recovery.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from src.core.journal import read_runs
from src.core.statefiles import CHECKPOINT_FILE, SUPERVISOR_LOG, read_ready_record
from src.orchestration.machine.bot import running_bot
from testkit.docker import docker, free_port
from testkit.gateway import SimGateway, new_project
from testkit.plans import write_plan
from testkit.repo_env import hide_repo_dotenv
from testkit.rundir import RunDir
from testkit.schedule import off_calendar
from testkit.webhook import WebhookReceiver

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP = [sys.executable, "-m", "src.orchestration.startup"]
SIM_COMMAND_PORT = 7462  # docker/gateway/docker-compose.sim.yml


@dataclass
class Run:
    """One finished orchestrator run as the operator sees it."""

    code: int
    elapsed: float
    stderr: str
    record: dict[str, Any]
    alerts: list[str]

    @property
    def path(self) -> list[str]:
        transitions = self.record["transitions"]
        return ([transitions[0]["from"]] if transitions else []) + [t["to"] for t in transitions]

    def seconds_in(self, state: str) -> list[float]:
        return [t["seconds"] for t in self.record["transitions"] if t["from"] == state]


@dataclass
class Stack:
    """One test's world: a Compose project for the simulator Gateway, state/, logs/, a webhook."""

    tmp: Path
    hook: WebhookReceiver
    project: str = field(default_factory=new_project)
    port: int = field(default_factory=free_port)
    mode: str = "paper"  # TRADING_MODE, for Compose and the orchestrator alike
    vnc_port: int = field(default_factory=free_port)
    sim: dict[str, object] = field(default_factory=lambda: {"login_delay": 1})
    extra: dict[str, str] = field(default_factory=dict)
    prefix: list[str] = field(default_factory=list)  # a wrapper for the CLI, e.g. setpriv

    @property
    def gateway(self) -> SimGateway:
        """The simulator Gateway of this stack's Compose project (a description: `up` starts it)."""
        return SimGateway(project=self.project, port=self.port, mode=self.mode, vnc_port=self.vnc_port, sim=self.sim,
                          state_dir=self.state_dir)

    @property
    def container(self) -> str:
        return self.gateway.container

    @property
    def dirs(self) -> RunDir:
        """state/, logs/ and plans/today.json under tmp (testkit.rundir)."""
        return RunDir(self.tmp)

    @property
    def state_dir(self) -> Path:
        return self.dirs.state

    @property
    def log_dir(self) -> Path:
        return self.dirs.logs

    def compose_env(self) -> dict[str, str]:
        return self.gateway.compose_env()

    def env(self, **overrides: str | None) -> dict[str, str]:
        """The orchestrator's environment, which the repository's `.env` cannot steer
        (testkit.repo_env); an override of None removes the variable."""
        env: dict[str, str | None] = {
            **self.compose_env(),
            "PYTHONPATH": str(REPO_ROOT), "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(self.port),
            "TRADING_MODE": self.mode,
            "GATEWAY_CONTAINER": self.container,
            "STATE_DIR": str(self.state_dir), "LOG_DIR": str(self.log_dir),
            "EMERGENCY_GAMEPLAN_PATH": str(self.state_dir / "emergency.json"),
            "GAMEPLAN_PATH": str(write_plan(self.dirs.plan)),
            "GATEWAY_HEALTH_TIMEOUT": "20", "BOT_READY_TIMEOUT": "20", "DOCKER_WAIT_TIMEOUT": "0",
            "DISCORD_WEBHOOK_URL": self.hook.url,
            **off_calendar(),  # the outcome must not depend on the hour: a test of the windows sets its own
            **self.extra,
        }
        env.update(overrides)
        return hide_repo_dotenv({k: v for k, v in env.items() if v is not None})

    def orchestrate(self, *args: str, timeout: float = 120, **overrides: str | None) -> Run:
        """Run the CLI to its end."""
        before, started = len(self.hook.received), time.monotonic()
        result = subprocess.run([*self.prefix, *STARTUP, *args], cwd=self.tmp, env=self.env(**overrides),
                                capture_output=True, text=True, timeout=timeout)
        return self.outcome(result.returncode, time.monotonic() - started, result.stderr, before)

    def launch(self, *args: str, **overrides: str | None) -> subprocess.Popen[str]:
        """Start the CLI and return at once (stderr piped, for `finish`)."""
        return subprocess.Popen([*self.prefix, *STARTUP, *args], cwd=self.tmp, env=self.env(**overrides),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def finish(self, proc: subprocess.Popen[str], started: float, before: int = 0, timeout: float = 30) -> Run:
        """Wait for a launched CLI and read what it left."""
        _, stderr = proc.communicate(timeout=timeout)
        return self.outcome(proc.returncode, time.monotonic() - started, stderr, before)

    def outcome(self, code: int, elapsed: float, stderr: str, before: int) -> Run:
        runs = list(read_runs(self.state_dir))
        return Run(code, elapsed, stderr, runs[-1] if runs else {}, self.alerts(before))

    def alerts(self, before: int = 0) -> list[str]:
        """What the webhook was told, from its `before`-th request on (each alert's description)."""
        return [r.json["embeds"][0]["description"] for r in self.hook.received[before:] if r.json]

    def decisions(self) -> list[dict[str, Any]]:
        """The supervisor's decision record (state/SUPERVISOR_LOG), oldest first."""
        path = self.state_dir / SUPERVISOR_LOG
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

    def freeze_api(self, seconds: int = 3600) -> None:
        """Freeze the Gateway's API from now on (the simulator's SIMOUTAGE, through the command server it shares
        with IBC's commands): connections stay open, nothing is answered. Unlike SIM_OUTAGE_AFTER it is not
        repeated by a restarted container."""
        script = f"exec 3<>/dev/tcp/127.0.0.1/{SIM_COMMAND_PORT}; echo 'SIMOUTAGE freeze {seconds}' >&3; head -n1 <&3"
        said = docker("exec", self.container, "bash", "-c", script).stdout
        if "OK outage" not in said:
            raise RuntimeError(f"the simulator did not take the freeze: {said.strip()!r}")

    def bot_connected_since(self, after: datetime) -> bool:
        """The bot is trading-ready again: connected, with its readiness record written after `after`."""
        record = read_ready_record(self.state_dir) or {}
        since = record.get("connection_since")
        return record.get("connection") == "connected" and since is not None and datetime.fromisoformat(since) > after

    def checkpoint(self) -> dict[str, Any]:
        """The in-progress run's record (state/current_run.json), or {} when there is none."""
        try:
            record = json.loads((self.state_dir / CHECKPOINT_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def in_state(self, state: str) -> bool:
        """Whether the run in progress is in `state` (its last checkpointed transition led there)."""
        transitions = self.checkpoint().get("transitions") or [{}]
        return bool(transitions[-1].get("to") == state)

    def wait_for_state(self, state: str, timeout: float = 20) -> None:
        """Return once the run in progress has entered `state`."""
        wait_until(lambda: self.in_state(state), timeout, f"the run entering {state}")

    def up(self, wait: bool = True) -> None:
        self.gateway.up(30 if wait else None)

    def down(self) -> None:
        self.gateway.down()


def wait_until(condition: Callable[[], object], timeout: float = 20, what: str = "the condition") -> None:
    """Poll `condition` every 20 ms until it is true; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(0.02)


def stop_bot(state_dir: Path, timeout: float = 10.0) -> None:
    """SIGTERM the bot holding state_dir's PID lock (SIGKILL after `timeout`) until the lock is free.

    The lock, not the PID, says when it is gone: a dead bot may stay a zombie until init reaps it.
    """
    pid = running_bot(state_dir)
    if not pid or pid < 0:
        return
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        with contextlib.suppress(AssertionError):
            wait_until(lambda: running_bot(state_dir) is None, timeout, f"bot {pid} to exit")
            return


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
    if left:
        raise AssertionError(f"left running: {left}")
