"""Every file under STATE_DIR (default `state/`), named once, and the readers both sides share.

The orchestrator (src/orchestration/) and the bot (src/main.py) meet only through these files
and sd_notify, so their names live here, in one place both import: standard library only, so the
bot's import of it costs nothing (it must not pull in the orchestrator's configuration, requests
or the notifier). Each name says what the file is and who writes it; who reads it is with the
module that owns it.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

MAX_RECORD_FILE = 1 << 20  # a JSON state file (a record, not a journal) larger than this is unreadable
MAX_JOURNAL_TAIL = 4 << 20  # journals (*.jsonl) are read from their end: the last 4 MiB are what matters


def open_regular(path: Path, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """os.open for a file under state/: never through a symlink (O_NOFOLLOW), never blocking on a FIFO, and
    only a regular file (a directory, a FIFO or a device where a file belongs: OSError naming it)."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if flags & os.O_NONBLOCK == 0:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bounded(path: Path, limit: int = MAX_RECORD_FILE) -> bytes:
    """A whole small file (OSError, or ValueError when it is larger than `limit`)."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return data


def read_tail(path: Path, max_bytes: int = MAX_JOURNAL_TAIL) -> list[bytes]:
    """The whole lines in the last `max_bytes` of a journal, oldest first ([] when there is none; OSError when
    it cannot be read): a large journal costs the same as a small one."""
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return []
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(max(0, size - max_bytes))
        data = f.read(max_bytes)
    lines = data.split(b"\n")
    if size > max_bytes:
        lines = lines[1:]  # the first is cut
    return [line for line in lines if line.strip()]


def json_objects(lines: list[bytes]) -> list[dict[str, Any]]:
    """The JSON-object lines among `lines` (anything else skipped: a torn or foreign line)."""
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found

# flock-held (PidLock, the holder's PID inside) by an orchestrator run for its whole life: startup,
# --supervise and shutdown (src/orchestration/machine/engine.py, shutdown.py), so two runs never race.
ORCHESTRATOR_LOCK = "orchestrator.lock"
# flock-held (PidLock, its PID inside) by the running bot (src/main.py); the orchestrator asks it who holds it.
BOT_PID_FILE = "bot.pid"
# The bot's readiness record (JSON): written atomically by the bot once connected, rewritten on each
# connection change, removed when it stops (shutdown removes a SIGKILLed bot's); read by the orchestrator.
READY_FILE = "bot_ready.json"
# The exact plan bytes the orchestrator validated (src/orchestration/machine/handoff.py): the bot's --gameplan.
PLAN_FILE = "plan_in_force.json"
# Their sha256 (hex, one line), written by the orchestrator beside them: the order firewall gives the plan
# authority only while the file's bytes hash to it, so bytes changed after validation authorize nothing.
PLAN_SHA256_FILE = "plan_in_force.sha256"
# The run journal: one JSON line appended per orchestrator run (src/core/journal.py), and one
# per refusal by docker/gateway/scripts/production-startup.sh (a shell script: the name is spelled out there).
RUNS_FILE = "runs.jsonl"
# The run under way, checkpointed by the journal at each transition; a leftover one is a run that died.
CHECKPOINT_FILE = "current_run.json"
# One JSON line per Gateway login the orchestrator causes, written before it is caused (logins.py).
LOGINS_FILE = "gateway_logins.jsonl"
# One JSON line per soft restart of the Gateway the supervisor asks IBC for (its command server's RESTART: the
# session kept, no login, no 2FA push), counted like the logins against their own daily cap (watch.py).
SOFT_RESTARTS_FILE = "gateway_soft_restarts.jsonl"
# The problems already alerted and not cleared (src/notifications/dedupe.py, written atomically).
ALERT_GATE_FILE = "alert_gate.json"
# One JSON line per decision of the supervisor (--supervise: an outage seen, a restart, an alert, a
# daily cycle, the weekly login), with its reason (src/orchestration/supervisor/supervise.py).
SUPERVISOR_LOG = "supervisor.jsonl"
# One JSON line per order decision of the order firewall (src/firewall/decisions.py): allowed or
# refused, why, the client id, order id, account, contract, quantity and the plan's sha256.
FIREWALL_DECISIONS_FILE = "firewall_decisions.jsonl"
# The API sessions the order firewall relays (src/firewall/sessions.py, written atomically at each change):
# which client ids completed the handshake through it, since when. A BOT_COMMAND bot's readiness and
# its connection (the supervisor's) are read from it, so such a bot needs no code of ours.
FIREWALL_SESSIONS_FILE = "firewall_sessions.json"
# The bot process the orchestrator started (src/orchestration/machine/bot.py): its PID and start time, so a
# reused PID is never taken for the bot, and any bot is stopped and seen alive without a lock of its own.
BOT_PROCESS_FILE = "bot_process.json"
# The Strategy C plan (src/gameplan/generator.py): EMERGENCY_GAMEPLAN_PATH's default is `state/` + this
# name (src/core/settings.py; a test compares them), a setting of its own, so not always here.
EMERGENCY_PLAN_FILE = "emergency_gameplan.json"


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A small JSON object file under state/, or None when there is none, or it is anything else (a symlink,
    a directory, too large, not JSON, not an object)."""
    try:
        record = json.loads(read_bounded(path))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def firewall_session_since(state_dir: Path, client_id: int) -> float | None:
    """Since when (Unix time) the firewall relays an API session of `client_id` that completed the handshake
    (the Gateway's nextValidId), or None: none now, or no firewall sessions file."""
    record = read_json_object(state_dir / FIREWALL_SESSIONS_FILE) or {}
    clients = record.get("clients")
    times = [c.get("since") for c in clients if isinstance(c, dict) and c.get("client_id") == client_id] \
        if isinstance(clients, list) else []
    found = [float(t) for t in times if isinstance(t, (int, float)) and not isinstance(t, bool)]
    return min(found) if found else None


def read_ready_record(state_dir: Path) -> dict[str, Any] | None:
    """The bot's readiness record in `state_dir`, or None when there is none or it is not a JSON object."""
    return read_json_object(state_dir / READY_FILE)
