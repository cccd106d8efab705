"""Scenario 7's contenders as processes: the bot (this project's, or a candidate's from another tree) and the
Watchdog baseline (`Client`), and how one outage is followed through each of them (`Watcher`): when it
noticed, when it was connected and synced again, how many connect attempts failed."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.env import RunDir, base_env, stop_pid
from src.core.statefiles import READY_FILE, read_ready_record

READY_REASON = "connected and synced"
BOT_HEARTBEAT = 1.0


@dataclass
class Client:
    """One contender process: a bot (project or candidate) or the Watchdog baseline."""

    contender: str
    root: Path  # the tree it runs from
    client_id: int
    run: RunDir
    pid: int | None = None
    log_path: Path = field(init=False)
    events: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.run.logs / f"{self.kind}.log"
        self.events = self.run.root / "watchdog-events.jsonl"

    @property
    def kind(self) -> str:
        return "watchdog" if self.contender == "watchdog" else "bot"

    def start(self, port: int) -> None:
        env = base_env()
        env["PYTHONPATH"] = str(self.root)
        if self.kind == "watchdog":
            cmd = [sys.executable, "-m", "bench.baselines.watchdog", "--port", str(port),
                   "--client-id", str(self.client_id), "--events", str(self.events)]
        else:
            cmd = [sys.executable, "-m", "src.main", "--gateway-host", "127.0.0.1", "--gateway-port", str(port),
                   "--gameplan", str(self.run.plan), "--log-level", "INFO", "--client-id", str(self.client_id),
                   "--health-client-id", str(900 + self.client_id), "--state-dir", str(self.run.state),
                   "--heartbeat", f"{BOT_HEARTBEAT:g}"]
        with open(self.log_path, "ab") as out:
            proc = subprocess.Popen(cmd, env=env, cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = proc.pid
        self._proc = proc

    def stop(self) -> None:
        stop_pid(self.pid)
        with contextlib.suppress(Exception):
            self._proc.wait(1)  # reap it (stop_pid waited for it to end)

    def alive(self) -> bool:
        return self.pid is not None and self._proc.poll() is None

    # --- what it says -----------------------------------------------------------------------

    def watchdog_events(self, offset: int = 0) -> list[dict[str, Any]]:
        """Its events from byte `offset` on (whole lines only: it writes one line at a time)."""
        try:
            with open(self.events, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return []
        out = []
        for line in data.split(b"\n")[:-1]:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def events_size(self) -> int:
        try:
            return self.events.stat().st_size
        except OSError:
            return 0

    def connected(self) -> bool:
        if self.kind == "watchdog":
            last = [e["event"] for e in self.watchdog_events() if e["event"] in ("started", "stopped")]
            return bool(last) and last[-1] == "started"
        record = read_ready_record(self.run.state) or {}
        return record.get("connection") == "connected"

    def record(self) -> tuple[dict[str, Any], float | None]:
        """The bot's readiness record and when it was written (its mtime), of the same file: the bot replaces it
        atomically, and a replacement between the look at the time and the read would pair the new record with
        the old time (seen under load: "recovered" at the time the outage was noticed)."""
        path = self.run.state / READY_FILE
        for _ in range(5):
            try:
                before = path.stat()
                record = read_ready_record(self.run.state) or {}
                after = path.stat()
            except OSError:
                return {}, None
            if (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns):
                return record, after.st_mtime
        return {}, None  # replaced again and again: looked at on the next poll

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""


class Watcher:
    """Follows one client through one outage: when it noticed, when it was connected and synced again."""

    def __init__(self, client: Client, began_at: float) -> None:
        self.client, self.began_at = client, began_at
        self.noticed_at: float | None = None
        self.recovered_at: float | None = None
        self.log_offset = client.log_size()
        self.events_offset = client.events_size()

    def poll(self) -> None:
        if self.recovered_at is not None:
            return
        c = self.client
        if c.kind == "watchdog":
            for e in c.watchdog_events(self.events_offset):
                if e["at"] <= self.began_at:
                    continue
                if e["event"] in ("stopped", "disconnected", "error") and self.noticed_at is None:
                    self.noticed_at = e["at"]
                if e["event"] == "started" and self.noticed_at is not None:
                    self.recovered_at = e["at"]
                    return
            return
        record, mtime = c.record()
        if mtime is None or mtime <= self.began_at:
            return
        if record.get("connection") != "connected":
            self.noticed_at = self.noticed_at or mtime
        elif record.get("connection_reason") == READY_REASON and self.noticed_at is not None:
            self.recovered_at = mtime

    def sample(self, opened_at: float) -> dict[str, Any]:
        c = self.client
        text = c.log_since(self.log_offset)
        if c.kind == "watchdog":
            after = [e for e in c.watchdog_events(self.events_offset)
                     if self.began_at < e["at"] <= (self.recovered_at or 1e18)]
            attempts = sum(1 for e in after if e["event"] == "stopped")  # each ended cycle; 1 = the outage itself
            failed = max(attempts - 1, 0)
        else:
            failed = text.count("Gateway connection attempt ")
        return {
            "contender": c.contender, "pid": c.pid, "recovered": self.recovered_at is not None,
            "noticed_at": self.noticed_at, "recovered_at": self.recovered_at,
            "notice_latency": self.noticed_at - self.began_at if self.noticed_at else None,
            "latency": self.recovered_at - opened_at if self.recovered_at else None,
            "failed_attempts": failed,
        }
