"""Reusable test helpers: a GatewaySimulator in a background thread, or its CLI as a subprocess."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from src.simulator import GatewaySimulator

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running_simulator(**kwargs: object) -> Iterator[GatewaySimulator]:
    """Yield a started simulator; ``.port`` is its real port. Stops it on exit.

    Keyword arguments go to ``GatewaySimulator``; ``port`` defaults to 0 (a free
    port, known even with ``before_login="refuse"``, which listens only after login).
    """
    kwargs.setdefault("port", 0)
    with GatewaySimulator(**kwargs) as simulator:
        yield simulator


class SimulatorProcess:
    """``python -m src.simulator`` on a free port, its stdout collected line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None):
        self.started_at = time.time()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "src.simulator", *args],
            cwd=ROOT,
            env={**os.environ, "SIM_PORT": "0", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line)

    def wait_for(self, text: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {text!r} in {self.lines}") from None
            self.lines.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 5.0) -> list[str]:
        """Wait for the process to end; every line it printed, in order."""
        self.process.wait(timeout)
        self._pump_thread.join(timeout)
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return self.lines

    @property
    def port(self) -> int:
        line = self.wait_for("Starting Gateway simulator")
        return int(re.search(r":(\d+) \(", line).group(1))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()
