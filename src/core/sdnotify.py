"""The sd_notify protocol: a tiny readiness contract between a service and its supervisor.

A service sends datagrams such as `READY=1` or `STATUS=...` to the Unix socket
named by `NOTIFY_SOCKET` (a leading `@` means Linux's abstract namespace). systemd
listens there for `Type=notify` units; the orchestrator listens the same way for
the bot it starts, so the bot works under either supervisor unchanged.
"""

from __future__ import annotations

import os
import secrets
import select
import socket
import time
from collections.abc import Mapping


def _address(name: str) -> str | bytes:
    return b"\0" + name[1:].encode() if name.startswith("@") else name


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send one notification to NOTIFY_SOCKET; False when there is none or it fails."""
    name = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not name or name[0] not in "@/":
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(1.0)  # a listener that stopped reading must not hang us: the message is dropped
            sock.sendto(message.encode(), _address(name))
        return True
    except OSError:
        return False


class NotifyListener:
    """A private abstract-namespace NOTIFY_SOCKET that a child process reports to."""

    def __init__(self) -> None:
        self.name = f"@ibkr-zero-touch-{os.getpid()}-{secrets.token_hex(6)}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.bind(_address(self.name))

    def receive(self, timeout: float) -> dict[str, str] | None:
        """Wait up to `timeout` s for one datagram; its KEY=VALUE lines, or None."""
        ready, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
        if not ready:
            return None
        data = self._sock.recv(4096).decode("utf-8", "replace")
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def wait_for(self, key: str, deadline: float) -> dict[str, str] | None:
        """Messages until one carries `key`, or None at the monotonic deadline."""
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message and key in message:
                return message
        return None

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
