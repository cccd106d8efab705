"""The bot process as the orchestrator sees it: launch, readiness, liveness.

The contract with the bot (src/main.py) is three things: under state/ (named in src/statefiles.py) `bot.pid`,
flock-held by the running bot (so a dead bot never looks alive); `bot_ready.json`,
written only once the bot is connected to the Gateway; and the sd_notify message
`READY=1` sent to NOTIFY_SOCKET at that same moment, so the orchestrator awaits a
signal instead of sleeping.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from src.orchestration.locks import PidLock
from src.orchestration.sdnotify import NotifyListener
from src.statefiles import BOT_PID_FILE, read_ready_record

POLL = 0.1  # how often a waiting orchestrator also checks that the bot is still alive


def running_bot(state_dir: Path) -> int | None:
    """PID of the live bot holding state/bot.pid, or None."""
    pid = PidLock(state_dir / BOT_PID_FILE).holder()
    if pid is None:
        return None
    if pid > 0 and not psutil.pid_exists(pid):
        return None
    return pid


@dataclass
class BotStart:
    """Outcome of starting the bot and waiting for it."""

    ready: bool
    pid: int | None
    reason: str
    record: dict[str, Any] | None = None
    process: subprocess.Popen[bytes] | None = None


def start_bot(
    command: Sequence[str],
    args: Sequence[str],
    *,
    log_path: Path,
    state_dir: Path,
    cwd: Path,
    env: Mapping[str, str],
    ready_timeout: float,
) -> BotStart:
    """Start the bot detached (own session, output to its log) and wait for READY=1 or its death."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with NotifyListener() as listener, open(log_path, "ab") as log:
        child_env = {**env, "NOTIFY_SOCKET": listener.name, "PYTHONUNBUFFERED": "1"}
        try:
            proc = subprocess.Popen(
                [*command, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=cwd, env=child_env, start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            return BotStart(False, None, f"cannot execute bot command {command[0]!r}: {exc.strerror or exc}")
        try:
            return _await_ready(proc, listener, state_dir, ready_timeout)
        except BaseException:  # interrupted (SIGTERM mid-start): never leave a half-started bot
            stop_process(proc, grace=5)
            raise


def _await_ready(proc: subprocess.Popen[bytes], listener: NotifyListener, state_dir: Path,
                 ready_timeout: float) -> BotStart:
    """READY=1 with a matching readiness record, the bot's exit, or the deadline: whichever comes first."""
    deadline = time.monotonic() + ready_timeout
    while True:
        code = proc.poll()
        if code is not None:
            return BotStart(False, proc.pid, f"bot exited with code {code} before it was ready", process=proc)
        left = deadline - time.monotonic()
        if left <= 0:
            return BotStart(False, proc.pid, f"bot not ready within BOT_READY_TIMEOUT={ready_timeout:g} s",
                            process=proc)
        message = listener.receive(min(POLL, left))
        if message and message.get("READY") == "1":
            record = read_ready_record(state_dir)
            if record is None or record.get("pid") != proc.pid:
                # READY from a wrapper (e.g. `poetry run`) carries the real bot's MAINPID.
                record = record if record and str(record.get("pid")) == message.get("MAINPID") else None
            if record is None:
                return BotStart(False, proc.pid, "bot said READY=1 but wrote no matching readiness record",
                                process=proc)
            return BotStart(True, int(record["pid"]), "ready", record, proc)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> int | None:
    """SIGTERM, a bounded wait, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def tail(path: Path, lines: int = 15, max_bytes: int = 16384) -> str:
    """The last lines of a log file (bounded read), for failure messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
