"""The order firewall in a background thread, in front of a simulator: for tests and the benchmark.

    with running_firewall(gateway_port, state_dir) as fw:
        ib.connect("127.0.0.1", fw.port, clientId=1)

`fw.decisions()` reads the journal the firewall wrote; `fw.wait_synced()` waits until its own
session has the Gateway's positions and orders (until then it refuses every order).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.core.statefiles import FIREWALL_DECISIONS_FILE
from src.firewall import __main__ as firewall_main
from testkit.docker import free_port


@dataclass
class FirewallThread:
    port: int
    state_dir: Path
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None
    thread: threading.Thread | None = None
    upstream: Any = None
    firewall: Any = None
    error: list[BaseException] = field(default_factory=list)

    def decisions(self) -> list[dict[str, Any]]:
        path = self.state_dir / FIREWALL_DECISIONS_FILE
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    def wait_synced(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not (self.upstream is not None and self.upstream.synced and self.upstream.accounts):
            if self.error:
                raise self.error[0]
            if time.monotonic() > deadline:
                state = self.upstream.describe() if self.upstream is not None else "not started"
                raise TimeoutError(f"firewall not synced within {timeout} s: {state}")
            time.sleep(0.01)


@contextlib.contextmanager
def running_firewall(gateway_port: int, state_dir: Path, *, bot_client_id: int = 1, client_id: int = 998,
                     expected_accounts: str = "", sync: bool = True) -> Iterator[FirewallThread]:
    """A firewall on a free loopback port in front of 127.0.0.1:`gateway_port`; stopped on exit."""
    port = free_port()
    args = firewall_main.parse_args(
        ["--listen", f"127.0.0.1:{port}", "--gateway", f"127.0.0.1:{gateway_port}", "--state-dir", str(state_dir),
         "--bot-client-id", str(bot_client_id), "--client-id", str(client_id),
         "--expected-accounts", expected_accounts], {})
    fw = FirewallThread(port, state_dir)
    started = threading.Event()

    def ready(firewall: Any) -> None:
        fw.upstream = firewall.upstream
        fw.firewall = firewall
        started.set()

    def main() -> None:
        async def amain() -> None:
            fw.loop, fw.stop = asyncio.get_running_loop(), asyncio.Event()
            await firewall_main.run(args, fw.stop, ready)
        try:
            asyncio.run(amain())
        except BaseException as exc:  # surfaced by wait_synced and on entry
            fw.error.append(exc)
            started.set()

    fw.thread = threading.Thread(target=main, name="firewall", daemon=True)
    fw.thread.start()
    if not started.wait(10) or fw.error:
        raise RuntimeError(f"the firewall did not start: {fw.error[:1]}")
    try:
        if sync:
            fw.wait_synced()
        yield fw
    finally:
        if fw.loop is not None and fw.stop is not None:
            fw.loop.call_soon_threadsafe(fw.stop.set)
        fw.thread.join(10)

