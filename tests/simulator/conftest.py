"""Fixtures for the simulator tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from ib_async import IB

from tests.helpers.simulator import SimulatorProcess


@pytest.fixture
def ib() -> Iterator[IB]:
    """An ib_async client on its own event loop, disconnected and closed afterwards.

    ib_async's blocking calls run the thread's current loop (util.getLoop), so
    each test gets a fresh one and no loop or socket outlives the test.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    client = IB()
    try:
        yield client
    finally:
        client.disconnect()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, asyncio.sleep(0.01), return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture
def run_cli() -> Iterator[Callable[..., SimulatorProcess]]:
    """Start ``python -m src.simulator`` processes; each is killed when the test ends."""
    processes: list[SimulatorProcess] = []

    def run(*args: str, env: dict[str, str] | None = None) -> SimulatorProcess:
        processes.append(SimulatorProcess(*args, env=env))
        return processes[-1]

    yield run
    for process in processes:
        process.close()
