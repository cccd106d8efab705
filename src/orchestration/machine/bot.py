"""The bot process as the orchestrator sees it: launch, readiness, liveness.

The orchestrator records the process it starts (state/bot_process.json: PID and start time), so any
bot is seen alive, and stopped, without a lock or a file of its own; a reused PID never passes for it.
Readiness comes one of two ways (BOT_READY):

* `api`, for any bot (`BOT_COMMAND`): its client id completed the API handshake through the order
  firewall (state/firewall_sessions.json lists it, since after the bot's start). No code of ours in it.
* `notify`, the project's runtime (src/main.py): the sd_notify message `READY=1` to NOTIFY_SOCKET once
  it is synced, with `bot_ready.json` carrying the plan's sha256 (the orchestrator awaits a signal
  instead of sleeping). It also holds `bot.pid` flock-held, which `running_bot` still honours for a
  runtime started by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from src.core.atomic_file import write_atomic
from src.core.locks import PidLock
from src.core.sdnotify import NotifyListener
from src.core.statefiles import (
    BOT_PID_FILE,
    BOT_PROCESS_FILE,
    firewall_session_since,
    read_json_object,
    read_ready_record,
)

POLL = 0.1  # how often a waiting orchestrator also checks that the bot is still alive


READY_BY = ("api", "notify")  # BOT_READY's choices (see the module's docstring)
START_TIME_SLACK = 0.05  # seconds: psutil's create_time is exact to the clock tick (10 ms)


def record_process(state_dir: Path, proc: subprocess.Popen[bytes], command: Sequence[str],
                   log_path: Path | None = None) -> None:
    """state/bot_process.json: the process just started, for every later `running_bot` (and its log, for a
    supervisor that adopts it)."""
    _write_record(state_dir, proc.pid, Path(command[0]).name if command else "", log_path)


def _write_record(state_dir: Path, pid: int, command: str, log_path: Path | None) -> None:
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = time.time()
    write_atomic(state_dir / BOT_PROCESS_FILE, json.dumps(
        {"pid": pid, "create_time": created, "command": command, "log": str(log_path) if log_path else None}) + "\n",
        mode=0o600)


def repair_record(state_dir: Path, pid: int, log_path: Path | None) -> bool:
    """Rewrite state/bot_process.json when it no longer names the bot `pid` that its supervisor knows is running
    (a file damaged, replaced or removed under it): `--status`, `shutdown` and a relaunched supervisor read it.
    True when it was rewritten."""
    if recorded_bot(state_dir) == pid:
        return False
    record = read_json_object(state_dir / BOT_PROCESS_FILE) or {}
    command = record.get("command") if isinstance(record.get("command"), str) else ""
    _write_record(state_dir, pid, str(command)[:80], log_path)
    return True


class AdoptedProcess:
    """A bot this process did not start (a relaunched supervisor adopts it): what the supervisor uses of a
    Popen (pid, poll, wait, terminate, kill, returncode), over psutil. Not our child, so its exit code is
    unknown: -1."""

    UNKNOWN = -1

    def __init__(self, pid: int, log: Path | None = None) -> None:
        self.pid, self.log = pid, log
        self.returncode: int | None = None
        self._process = psutil.Process(pid)

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                alive = self._process.is_running() and self._process.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                alive = False
            if not alive:
                self.returncode = self.UNKNOWN
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        try:
            code = self._process.wait(timeout)
        except psutil.TimeoutExpired:
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0) from None
        except psutil.Error:
            code = None
        self.returncode = code if isinstance(code, int) else self.UNKNOWN
        return self.returncode

    def terminate(self) -> None:
        with contextlib.suppress(psutil.Error):
            self._process.terminate()

    def kill(self) -> None:
        with contextlib.suppress(psutil.Error):
            self._process.kill()


def adopt(state_dir: Path) -> AdoptedProcess | None:
    """The running bot the orchestrator recorded starting, as a process to supervise; None when there is none."""
    pid = recorded_bot(state_dir)
    if pid is None:
        return None
    log = (read_json_object(state_dir / BOT_PROCESS_FILE) or {}).get("log")
    try:
        return AdoptedProcess(pid, Path(log) if isinstance(log, str) else None)
    except psutil.Error:
        return None


def recorded_bot(state_dir: Path) -> int | None:
    """PID of the live process the orchestrator recorded starting as the bot, or None (gone, or the PID
    now belongs to another process: its start time differs)."""
    record = read_json_object(state_dir / BOT_PROCESS_FILE) or {}
    pid, created = record.get("pid"), record.get("create_time")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(created, (int, float)):
        return None
    try:
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE and abs(process.create_time() - created) <= START_TIME_SLACK
    except psutil.Error:
        return None
    return pid if alive else None


def running_bot(state_dir: Path) -> int | None:
    """PID of the live bot: the process the orchestrator started (bot_process.json), else the holder of
    state/bot.pid (the runtime started by hand) when that PID is alive and runs the runtime (a PID in the
    lock file that now belongs to another process, or a forked child holding the lock, is not the bot);
    None when neither."""
    recorded = recorded_bot(state_dir)
    if recorded is not None:
        return recorded
    pid = PidLock(state_dir / BOT_PID_FILE).holder()
    if pid is None:
        return None
    if pid > 0 and not _runs_the_runtime(pid):
        return None
    return pid


def _runs_the_runtime(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        command = " ".join(process.cmdline())
        return process.status() != psutil.STATUS_ZOMBIE and ("src.main" in command or "src/main.py" in command)
    except psutil.Error:
        return False


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
    ready_by: str = "notify",
    client_id: int | None = None,
) -> BotStart:
    """Start the bot detached (own session, output to its log), record it, and wait for its readiness
    (`ready_by`: READY=1, or `client_id`'s handshake through the firewall) or its death."""
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
            record_process(state_dir, proc, command, log_path)
            handshake = client_id if ready_by == "api" else None
            return _await_ready(proc, listener, state_dir, ready_timeout, handshake, time.time())
        except BaseException:  # interrupted (SIGTERM mid-start): never leave a half-started bot
            stop_process(proc, grace=5)
            raise


def _await_ready(proc: subprocess.Popen[bytes], listener: NotifyListener, state_dir: Path,
                 ready_timeout: float, handshake: int | None = None, started: float = 0.0) -> BotStart:
    """READY=1 with a matching readiness record (or, with `handshake`, that client id's session through the
    firewall opened after `started`), the bot's exit, or the deadline: whichever comes first."""
    deadline = time.monotonic() + ready_timeout
    while True:
        code = proc.poll()
        if code is not None:
            return BotStart(False, proc.pid, f"bot exited with code {code} before it was ready", process=proc)
        if handshake is not None:
            since = firewall_session_since(state_dir, handshake)
            if since is not None and since >= started - START_TIME_SLACK:
                session: dict[str, Any] = {"pid": proc.pid, "connection": "connected", "ready_by": "api",
                                           "client_id": handshake, "connection_since": since}
                return BotStart(True, proc.pid, f"client id {handshake} completed the API handshake through the "
                                "order firewall", session, proc)
        left = deadline - time.monotonic()
        if left <= 0:
            waited = (f"client id {handshake} did not complete the API handshake through the order firewall"
                      if handshake is not None else "bot not ready")
            return BotStart(False, proc.pid, f"{waited} within BOT_READY_TIMEOUT={ready_timeout:g} s",
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


def stop_process(proc: Any, grace: float = 10.0) -> int | None:
    """SIGTERM, a bounded wait, then SIGKILL; to the bot's whole process group when it leads one (the
    orchestrator starts it in a session of its own: a wrapper and its child both get the signal). Returns
    the exit code. `proc` is a Popen or an AdoptedProcess."""
    if proc.poll() is None:
        _signal(proc, signal.SIGTERM)
        try:
            return int(proc.wait(timeout=grace))
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL)
    return int(proc.wait())


def _signal(proc: Any, signum: signal.Signals) -> None:
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signum)
            return
    except ProcessLookupError:
        return
    except OSError:
        pass
    if signum == signal.SIGTERM:
        proc.terminate()
    else:
        proc.kill()


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
