"""Alerts off the critical path: a queue drained by one background thread.

A webhook that hangs or rate-limits must never delay the Gateway deadline or the
bot start. The orchestrator enqueues alerts and goes on; at exit it waits a
bounded time for the queue to drain, then leaves whatever is undelivered to the
log (every alert is logged locally anyway).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Protocol

log = logging.getLogger(__name__)
LEVELS = ("info", "warning", "error", "critical")


class Notifier(Protocol):
    def send(self, level: str, message: str, *, title: str | None = None,
             fields: dict[str, str] | None = None) -> bool: ...


class AlertQueue:
    """Sends alerts through `notifier` in order, in a daemon thread."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.sent: list[tuple[str, str, bool]] = []  # (level, message, delivered), for the journal
        self._queue: queue.Queue[tuple[str, str, str | None, dict[str, str] | None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._drain, name="alerts", daemon=True)
        self._thread.start()

    def alert(self, level: str, message: str, *, title: str | None = None,
              fields: dict[str, str] | None = None) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown alert level {level!r}")
        self._queue.put((level, message, title, fields))

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            level, message, title, fields = item
            try:
                delivered = self.notifier.send(level, message, title=title, fields=fields)
            except Exception:  # a notifier must never take the run down
                log.exception("alert delivery crashed")
                delivered = False
            self.sent.append((level, message, delivered))
            self._queue.task_done()
        self._queue.task_done()

    def close(self, timeout: float) -> bool:
        """Wait up to `timeout` s for pending alerts; True when all were handled."""
        self._queue.put(None)
        self._thread.join(max(0.0, timeout))
        if self._thread.is_alive():
            log.warning("alerts still pending after %.1f s: left to the log", timeout)
            return False
        return True

