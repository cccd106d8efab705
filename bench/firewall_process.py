"""The order firewall for its benchmark: `python -m src.firewall`, a real subprocess with default settings, and
what the bench reads of it from outside (CPU time, peak RSS, the filesystem its state dir is on)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from testkit.docker import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
BOT_CLIENT_ID, FIREWALL_OWN_CLIENT_ID = 1, 998


class FirewallProcess:
    """`python -m src.firewall` in front of 127.0.0.1:`gateway_port`, its output in `log_path`."""

    def __init__(self, gateway_port: int, state_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.state_dir, self.log_path = state_dir, log_path
        self.command = [sys.executable, "-m", "src.firewall", "--listen", f"127.0.0.1:{self.port}",
                        "--gateway", f"127.0.0.1:{gateway_port}", "--state-dir", str(state_dir),
                        "--bot-client-id", str(BOT_CLIENT_ID), "--client-id", str(FIREWALL_OWN_CLIENT_ID),
                        "--expected-accounts", "", "--log-level", "INFO"]
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self, timeout: float = 30.0) -> float:
        """Start it and wait until its own session is synced (orders are judged); the seconds it took."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TRADING_MODE": "paper"}  # as in its image
        self.started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command, cwd=REPO_ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = self.started + timeout
        while "Firewall session synced" not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(f"the firewall exited with {self.process.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the firewall was not synced within {timeout:g} s: {self.tail()}")
            time.sleep(0.02)  # its log file is the only signal it gives
        return time.monotonic() - self.started

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 8) -> str:
        return " | ".join(self.output().splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, as Docker stops it; its exit code (killed after `timeout`)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def counts(self) -> dict[str, int] | None:
        """Its own closing line: orders allowed and refused, connections."""
        match = re.search(r"Firewall stopped: (\d+) orders allowed, (\d+) refused, (\d+) connections", self.output())
        if not match:
            return None
        return dict(zip(("allowed", "refused", "connections"), map(int, match.groups()), strict=True))


def cpu_seconds(proc: psutil.Process) -> tuple[float, str]:
    """CPU time of the process so far and the clock read: the scheduler's nanoseconds summed over its
    threads (/proc/PID/task/*/schedstat) when readable, else psutil's user + system (10 ms ticks)."""
    try:
        total = sum(int((task / "schedstat").read_text().split()[0])
                    for task in Path(f"/proc/{proc.pid}/task").iterdir())
        return total / 1e9, "schedstat"
    except (OSError, ValueError, IndexError):
        times = proc.cpu_times()
        return times.user + times.system, "psutil"


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (the state dir's journal and sessions file)."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount, where = parts[1] if len(parts) > 2 else "", str(path.resolve())
            inside = where == mount or where.startswith(mount.rstrip("/") + "/")
            if mount and inside and len(mount) > len(best):
                best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind
