"""Scenario 8's world: one orchestrator run (`--supervise` or the plain start-up) with its own simulator Gateway,
run directory and local webhook, what the operator sees of it, and the scenario's options."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.contenders import project_env, stop_bots
from bench.env import BenchError, Gateway, RunDir, parse_utc, stop_pid
from src.core.statefiles import SUPERVISOR_LOG, read_ready_record
from testkit.webhook import WebhookReceiver

STARTUP = [sys.executable, "-m", "src.orchestration.startup"]
# the daily cycle every day (not only on NYSE's), the API-down alert far away: as the integration tests
QUIET = {"TRADING_CALENDAR": "ALWAYS", "GATEWAY_DOWN_ALERT_AFTER": "300"}
POLL = 0.02


@dataclass
class SupervisorOptions:
    kills: int = 19  # at most 19: each restart is a login, GATEWAY_LOGIN_BUDGET is at most 20
    outages: int = 10
    baseline_outages: int = 5  # the same outage under the plain start-up (0: none)
    outage_after: float = 12.0  # s after the simulator's login: the supervisor has taken over by then
    outage_for: float = 5.0
    idle_seconds: float = 600.0  # 0: no idle part
    sample_every: float = 3.0
    no_watch_wait: float = 20.0  # after killing a plain start-up's container: how long to wait for an alert
    cron_every: float = 60.0
    workdir: Path = field(default_factory=Path.cwd)

    def as_meta(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "workdir"}


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """`condition()`'s first truthy value, polled every POLL s; BenchError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"waited {timeout:g} s for {what}")
        time.sleep(POLL)


class Supervised:
    """One orchestrator run (supervised or not) with its own Gateway, run directory and webhook."""

    def __init__(self, opts: SupervisorOptions, name: str, *, sim: dict[str, object] | None = None,
                 settings: dict[str, str] | None = None, supervise: bool = True) -> None:
        self.gw = Gateway(0.5, sim=dict(sim or {}))
        self.run = RunDir.make(opts.workdir, name)
        self.hook = WebhookReceiver()
        self.settings = {**QUIET, **(settings or {})}
        self.supervise = supervise
        self.proc: subprocess.Popen[bytes] | None = None
        self.t0 = 0.0

    def __enter__(self) -> Supervised:
        self.hook.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            stop_bots(self.run, (read_ready_record(self.run.state) or {}).get("pid"))
            self.gw.down()
            self.hook.stop()

    def start(self, timeout: float = 90) -> None:
        """Launch the orchestrator; return once the supervisor took over (or, not supervised, once the
        start-up ended with exit 0 and its bot is ready)."""
        env = project_env(self.gw, self.run, {**self.settings, "DISCORD_WEBHOOK_URL": self.hook.url})
        self.t0 = time.time()
        with open(self.run.root / "orchestrator.out", "ab") as out:
            self.proc = subprocess.Popen([*STARTUP, *(["--supervise"] if self.supervise else [])], env=env,
                                         cwd=self.run.root, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        proc = self.proc
        if self.supervise:
            wait_for(lambda: proc.poll() is not None or self.decisions("supervising"), timeout,
                     "the supervisor to take over")
            if proc.poll() is not None:
                raise BenchError(f"the supervised orchestrator exited {proc.returncode}: {self.tail()}")
        else:
            wait_for(lambda: proc.poll() is not None, timeout, "the start-up to end")
            if proc.returncode != 0:
                raise BenchError(f"the start-up exited {proc.returncode}: {self.tail()}")
        wait_for(lambda: self.connection() == "connected", 30, "the bot connected")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(40)
        except subprocess.TimeoutExpired:
            stop_pid(self.proc.pid)

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.run.root / "orchestrator.out").read_text(errors="replace")[-1500:]
        return ""

    # --- what the operator sees ---------------------------------------------------------------

    def decisions(self, event: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = (self.run.state / SUPERVISOR_LOG).read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):
                d = json.loads(line)
                if event is None or d.get("event") == event:
                    out.append(d)
        return out

    def record(self) -> dict[str, Any]:
        return read_ready_record(self.run.state) or {}

    def connection(self) -> str | None:
        return self.record().get("connection")

    def connected_since(self, after: float) -> float | None:
        """When the bot's record says it became connected, if that was after `after` (POSIX time)."""
        r = self.record()
        if r.get("connection") != "connected" or not r.get("connection_since"):
            return None
        since = parse_utc(r["connection_since"])
        return since if since > after else None

    def alerts(self, before: int = 0) -> list[tuple[float, str]]:
        """(monotonic arrival, text) of each alert the webhook received from index `before` on."""
        out = []
        for r in self.hook.received[before:]:
            text = ""
            with contextlib.suppress(KeyError, IndexError, TypeError):
                text = r.json["embeds"][0]["description"]
            out.append((r.at, text))
        return out

    def bot_pid(self) -> int | None:
        pid = self.record().get("pid")
        return pid if isinstance(pid, int) else None
