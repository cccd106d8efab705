"""The simulator against ib_insync 0.9.86, the client many bots still run.

ib_insync is not in the project's virtualenv: its `eventkit` and ib_async's `aeventkit`
install the same top-level package, so installing both there would quietly swap ib_async's
event library. scripts/setup.sh installs ib_insync and its eventkit, hash-pinned and without dependencies
(numpy and nest_asyncio come from the virtualenv), into .venv/ib_insync; ib_insync_client.py
then runs with that directory first on its path. The tests themselves reach no network.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.ci import skip_or_fail
from tests.helpers.simulator import running_simulator

HERE = Path(__file__).resolve().parent
INSTALLED = HERE.parents[1] / ".venv" / "ib_insync"  # scripts/setup.sh puts it there


@pytest.fixture(scope="session")
def ib_insync_path() -> Path:
    """The directory holding ib_insync 0.9.86 and eventkit 1.0.3 only (scripts/requirements-ib_insync.txt)."""
    if not (INSTALLED / "ib_insync" / "__init__.py").is_file():
        skip_or_fail(f"ib_insync 0.9.86 is not installed in {INSTALLED}: run bash scripts/setup.sh")
    return INSTALLED


class Client:
    """ib_insync_client.py on ``port``: its JSON lines, one by one, each within a deadline."""

    def __init__(self, path: Path, port: int):
        env = {**os.environ, "PYTHONPATH": str(path)}
        self.process = subprocess.Popen([sys.executable, str(HERE / "ib_insync_client.py"), str(port)], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def step(self, name: str, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"ib_insync client: no step {name!r} in {timeout:g} s") from None
            if line is None:
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise AssertionError(f"ib_insync client ended before step {name!r}: {stderr[-2000:]}")
            message = json.loads(line)
            if message["step"] == name:
                return message


@pytest.fixture
def client_factory(ib_insync_path: Path) -> Iterator:
    clients: list[Client] = []

    def start(port: int) -> Client:
        clients.append(Client(ib_insync_path, port))
        return clients[-1]

    yield start
    for client in clients:
        if client.process.poll() is None:
            client.process.kill()
        client.process.wait(timeout=10)


def test_ib_insync_0_9_86_connects_trades_and_sees_1100_then_1102(client_factory) -> None:
    with running_simulator() as sim:
        client = client_factory(sim.port)
        connected = client.step("connected")
        qualify = client.step("qualify")
        snapshot = client.step("snapshot")
        bars = client.step("bars")
        order = client.step("order")
        cancel = client.step("cancel")
        client.step("ready-for-1100")
        sim.connectivity_lost()
        client.step("1100")
        sim.connectivity_restored()
        restored = client.step("1102")
        assert client.process.wait(timeout=10) == 0
        orders = sim.orders
    assert connected == {"step": "connected", "version": 176, "accounts": ["DU123456", "DU234567"]}
    assert qualify["symbols"] == ["SPY"] and qualify["con_id"] == 756733 and qualify["codes"] == [200]
    assert qualify["seconds"] < 10  # error 200 ends the request: no waiting (ib_insync would wait for ever)
    assert (snapshot["bid"], snapshot["ask"], snapshot["last"]) == (499.99, 500.01, 500.0)
    assert bars["count"] == 24 and bars["ordered"]
    assert order["statuses"][0] == "PendingSubmit" and order["statuses"][-1] == "Filled"
    assert (order["fills"], order["avg"], order["positions"]) == (1, 500.01, [["SPY", 10.0]])
    assert cancel["status"] == "Cancelled"
    assert restored["codes"] == [1100, 1102]
    assert [(o["client_id"], o["order_id"], o["action"], o["order_type"], o["status"]) for o in orders] == [
        (5, order["order_id"], "BUY", "LMT", "Filled"), (5, order["order_id"] + 1, "SELL", "STP", "Cancelled")]
