"""Which API sessions the firewall relays, in state/firewall_sessions.json (statefiles.FIREWALL_SESSIONS_FILE).

A session counts once the client's startApi was answered by the Gateway's nextValidId (the handshake
completed: the Gateway took the client id), and stops counting when either side closes. The file is
rewritten atomically at each change (not fsynced: it describes live connections, which a power cut ends
anyway, and an fsync would stall every relay on the firewall's one event loop), and emptied when the
firewall starts, so what it lists is what
this firewall relays now. The orchestrator reads it for a `BOT_COMMAND` bot: its readiness is its
client id appearing there, its connection the supervisor's view of it (`statefiles.firewall_session_since`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from src.core.atomic_file import write_atomic

log = logging.getLogger(__name__)


class Sessions:
    """The relayed sessions by relay (one per client connection); `write` is the file's writer."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time,
                 write: Callable[[Path, str], None] = lambda p, text: write_atomic(p, text, mode=0o600,
                                                                                   durable=False)) -> None:
        self.path, self.clock, self._write = path, clock, write
        self._open: dict[int, tuple[int, float, str]] = {}  # relay -> (client id, since, peer)
        self._save()

    def opened(self, key: int, client_id: int, peer: str) -> None:
        self._open[key] = (client_id, round(self.clock(), 3), peer)
        self._save()

    def closed(self, key: int) -> None:
        if self._open.pop(key, None) is not None:
            self._save()

    def client_ids(self) -> list[int]:
        return sorted({client_id for client_id, _, _ in self._open.values()})

    def _save(self) -> None:
        record = {"firewall_pid": os.getpid(), "written_at": round(self.clock(), 3),
                  "clients": [{"client_id": c, "since": since, "peer": peer}
                              for c, since, peer in sorted(self._open.values())]}
        try:
            self._write(self.path, json.dumps(record) + "\n")
        except OSError as exc:  # the orchestrator then sees no session: a BOT_COMMAND bot is not called ready
            log.error("Firewall: cannot write %s: %s", self.path, exc.strerror or exc)
