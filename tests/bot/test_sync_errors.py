"""The bot's connection demands a complete start-up sync (ib_async's raiseSyncErrors): a Gateway that never
answers one of its sync requests is a failed connection, not a 'connected' bot trading on a half-known book."""

from __future__ import annotations

import asyncio

import pytest

from src.broker.connection import Broker
from tests.helpers.simulator import running_simulator


@pytest.mark.parametrize("withheld", ["reqPositions", "reqOpenOrders"])
def test_a_sync_request_never_answered_fails_the_connection(withheld):
    with running_simulator(withhold=[withheld]) as sim:
        broker = Broker("127.0.0.1", sim.port, 1, connect_timeout=2.0)
        with pytest.raises(ConnectionError):
            asyncio.run(broker.connect())
        assert broker.state != "connected"


def test_a_complete_sync_connects():
    with running_simulator() as sim:
        broker = Broker("127.0.0.1", sim.port, 1, connect_timeout=5.0)
        try:
            assert asyncio.run(broker.connect()) == ["DU123456", "DU234567"]
        finally:
            broker.disconnect()
