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
from typing import NamedTuple, Protocol

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
        self._queue: queue.Queue[_Alert | threading.Event | None] = queue.Queue()
        self._thread = threading.Thread(target=self._drain, name="alerts", daemon=True)
        self._thread.start()

    def alert(self, level: str, message: str, *, title: str | None = None,
              fields: dict[str, str] | None = None) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown alert level {level!r}")
        self._queue.put(_Alert(level, message, title, fields))

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()  # a flush() reached this point: everything before it is handled
                continue
            try:
                delivered = self.notifier.send(item.level, item.message, title=item.title, fields=item.fields)
            except Exception:  # a notifier must never take the run down
                log.exception("alert delivery crashed")
                delivered = False
            self.sent.append((item.level, item.message, delivered))

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the alerts queued so far; True when all were handled."""
        if not self._thread.is_alive():
            return self._queue.empty()
        reached = threading.Event()
        self._queue.put(reached)
        if not reached.wait(max(0.0, timeout)):
            log.warning("alerts still pending after %.1f s: left to the log", timeout)
            return False
        return True

    def close(self, timeout: float) -> bool:
        """Flush, then stop the sending thread."""
        done = self.flush(timeout)
        self._queue.put(None)
        return done


class _Alert(NamedTuple):
    level: str
    message: str
    title: str | None
    fields: dict[str, str] | None
