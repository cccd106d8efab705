"""The dead-man's switch: a push monitor (healthchecks.io, Uptime Kuma, Cronitor) pinged while the system
is up and the bot trading-ready, so that a machine that is down, or a supervisor that is gone, is noticed
from outside: by the missing pings (no alert can come from a machine that is down).

`ping()` is a GET of HEARTBEAT_URL; `fail(reason)` a POST of the reason to HEARTBEAT_FAIL_URL where the
monitor has one (healthchecks.io: `<url>/fail`; Uptime Kuma: `<url>?status=down`; Cronitor:
`<url>?state=fail`). Each request runs in a thread of its own with a bounded timeout, one at a time (a
ping never piles up behind a hung one), never raises, and never logs the URL (it holds the monitor's token).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import requests

log = logging.getLogger(__name__)
TIMEOUT = 5.0


class Heartbeat:
    """Pings and failure reports to one push monitor (see the module's docstring)."""

    def __init__(self, url: str, fail_url: str | None = None, *, timeout: float = TIMEOUT,
                 request: Callable[..., Any] = requests.request) -> None:
        self._url, self._fail_url, self.timeout, self._request = url, fail_url, timeout, request
        self._busy = threading.Lock()
        self.sent = self.failed = 0
        self._failing = False

    def __repr__(self) -> str:
        return f"Heartbeat(fail endpoint: {'yes' if self._fail_url else 'no'})"  # never the URLs

    def ping(self) -> bool:
        """One GET in the background; False when the previous request is still under way (skipped)."""
        return self._start("GET", self._url, None)

    def fail(self, reason: str, wait: float = 0.0) -> bool:
        """The failure's reason to the fail endpoint (none: nothing to do); `wait` s for it to be sent."""
        if not self._fail_url:
            return False
        done = threading.Event()
        started = self._start("POST", self._fail_url, reason[:1000].encode("utf-8", "replace"), done, force=True)
        if started and wait > 0:
            done.wait(wait)
        return started

    def _start(self, method: str, url: str, body: bytes | None, done: threading.Event | None = None, *,
               force: bool = False) -> bool:
        if not self._busy.acquire(blocking=force, timeout=self.timeout if force else -1):
            return False

        def send() -> None:
            try:
                try:
                    response = self._request(method, url, data=body, timeout=self.timeout)
                    ok = 200 <= int(getattr(response, "status_code", 0)) < 300
                    why = f"HTTP {getattr(response, 'status_code', '?')}"
                except Exception as exc:  # noqa: BLE001 - a monitor that fails must never stop the supervisor
                    ok, why = False, type(exc).__name__
                self._count(ok, why, "report" if method == "POST" else "ping")
            finally:
                self._busy.release()
                if done is not None:
                    done.set()

        threading.Thread(target=send, name="heartbeat", daemon=True).start()
        return True

    def _count(self, ok: bool, why: str, what: str) -> None:
        if ok:
            self.sent += 1
            if self._failing:
                log.info("Heartbeat monitor answering again")
            self._failing = False
            return
        self.failed += 1
        if not self._failing:  # once per streak: the monitor itself will alert on missing pings
            log.warning("Heartbeat %s to the monitor failed (%s): it alerts if pings stay missing", what, why)
        self._failing = True
