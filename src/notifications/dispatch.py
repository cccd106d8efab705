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
        self._pending = 0  # queued, not yet handled: nothing to wait for when 0
        self._count = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name="alerts", daemon=True)
        self._thread.start()

    def alert(self, level: str, message: str, *, title: str | None = None,
              fields: dict[str, str] | None = None) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown alert level {level!r}")
        with self._count:
            self._pending += 1
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
            with self._count:
                self._pending -= 1

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the alerts queued so far; True when all were handled."""
        if self._pending == 0:
            return True
        if self._closed or not self._thread.is_alive():
            return False
        reached = threading.Event()
        self._queue.put(reached)
        if not reached.wait(max(0.0, timeout)):
            log.warning("alerts still pending after %.1f s: left to the log", timeout)
            return False
        return True

    def close(self, timeout: float) -> bool:
        """Flush, then stop the sending thread; closing twice waits no longer than the first time."""
        done = self.flush(timeout)
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        return done


class _Alert(NamedTuple):
    level: str
    message: str
    title: str | None
    fields: dict[str, str] | None
