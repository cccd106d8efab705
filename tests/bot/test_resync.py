"""A resync after 1101/1102 that times out is retried with backoff until it succeeds (it once left the bot
`degraded` for good), and a readiness record that cannot be written is removed rather than left stale."""

from __future__ import annotations

import asyncio
import errno
import json
import logging

import src.main as bot_main
from src.broker import connection
from src.broker.connection import CONNECTED, DEGRADED, Broker


class Event:
    def __init__(self) -> None:
        self.handlers: list[object] = []

    def __iadd__(self, handler: object) -> Event:
        self.handlers.append(handler)
        return self


class FrozenThenFineIB:
    """ib_async's IB as far as the resync goes: the first `frozen` sync requests never answer."""

    def __init__(self, frozen: int) -> None:
        self.errorEvent = Event()  # noqa: N815
        self.frozen, self.asked = frozen, 0

    def isConnected(self) -> bool:  # noqa: N802
        return True

    async def reqPositionsAsync(self) -> list[object]:  # noqa: N802
        self.asked += 1
        if self.asked <= self.frozen:
            await asyncio.Event().wait()  # never answered
        return []

    async def reqOpenOrdersAsync(self) -> list[object]:  # noqa: N802
        return []

    async def reqCurrentTimeAsync(self) -> object:  # noqa: N802
        return object()


def test_a_failed_resync_is_retried_with_backoff_until_trading_resumes(monkeypatch):
    monkeypatch.setattr(connection, "RESYNC_FIRST_DELAY", 0.01)
    ib = FrozenThenFineIB(frozen=2)
    broker = Broker("127.0.0.1", 1, 1, connect_timeout=0.05, ib=ib)  # type: ignore[arg-type]
    states: list[tuple[str, str]] = []
    broker.on_state = lambda state, reason: states.append((state, reason))

    async def scenario() -> None:
        broker._on_error(-1, 1102, "Connectivity between IB and TWS has been restored - data maintained.")
        for _ in range(500):
            if broker.state == CONNECTED:
                return
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert broker.state == CONNECTED and broker.state_reason == "restored and resynced"
    assert ib.asked == 3  # two timed out, the third answered
    failed = [reason for state, reason in states if state == DEGRADED and "resync after restore failed" in reason]
    assert len(failed) == 1  # said once, not once per attempt


def test_an_unwritable_readiness_record_is_removed_then_written_again(tmp_path, monkeypatch, caplog):
    bot = object.__new__(bot_main.Bot)
    bot.ready_file = tmp_path / "bot_ready.json"
    bot._record = {"pid": 1, "connection": "connected"}
    bot._record_stale = False
    bot.ready_file.write_text(json.dumps(bot._record))
    real = bot_main.write_atomic

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bot_main, "write_atomic", disk_full)
    with caplog.at_level(logging.ERROR):
        bot._record.update(connection="degraded")
        bot._write_record()
        bot._write_record()
    assert not bot.ready_file.exists()  # nothing says "connected" any more
    assert sum("Cannot write the readiness record" in r.getMessage() for r in caplog.records) == 1
    monkeypatch.setattr(bot_main, "write_atomic", real)
    bot._write_record()
    assert json.loads(bot.ready_file.read_text())["connection"] == "degraded"
