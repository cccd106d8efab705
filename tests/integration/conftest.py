"""Shared pieces for tests that run real processes: stop any bot a test started."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from src.orchestration.bot import running_bot


def stop_bot(state_dir: Path, timeout: float = 10.0) -> None:
    """SIGTERM the bot holding state_dir's PID lock and wait until it is gone."""
    pid = running_bot(state_dir)
    if not pid or pid < 0:
        return
    os.kill(pid, signal.SIGTERM)
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while running_bot(state_dir) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def bot_reaper():
    """Collects state dirs; every bot started there is stopped when the test ends."""
    dirs: list[Path] = []
    yield dirs.append
    for state_dir in dirs:
        stop_bot(state_dir)
