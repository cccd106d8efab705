"""The simulator against the real client: ib_async's ``IB.connect()``.

``raiseSyncErrors=True`` turns an unanswered start-up request into a
ConnectionError (ib_async otherwise only logs it and waits out the timeout).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from ib_async import IB

from tests.helpers.simulator import running_simulator

ACCOUNTS = ["DU123456", "DU234567"]
FAIL_TIMEOUT = 0.5


def connect(ib: IB, port: int, client_id: int = 1, readonly: bool = False) -> float:
    """Connect and return how long it took."""
    started = time.monotonic()
    ib.connect("127.0.0.1", port, clientId=client_id, timeout=5, readonly=readonly, raiseSyncErrors=True)
    return time.monotonic() - started


@pytest.mark.parametrize("readonly", [False, True])
def test_connect_syncs_and_serves_current_time(ib: IB, readonly: bool) -> None:
    with running_simulator() as sim:
        elapsed = connect(ib, sim.port, readonly=readonly)
        assert ib.isConnected()
        assert ib.managedAccounts() == ACCOUNTS
        assert ib.client.serverVersion() == 178
        now = ib.reqCurrentTime()
    assert elapsed < 4  # every start-up request answered, none waited out (that takes the 5 s timeout)
    assert abs(now - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(seconds=5)


def test_single_account_syncs_account_updates(ib: IB) -> None:
    # With one account ib_async also sends reqAccountUpdates and waits for accountDownloadEnd.
    with running_simulator(accounts=("DU999999",)) as sim:
        connect(ib, sim.port)
        assert ib.managedAccounts() == ["DU999999"]
        assert ib.positions() == []
        assert ib.openTrades() == []


def test_client_id_0_and_a_second_client_connect_side_by_side(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port, client_id=0)
        other = IB()
        try:
            connect(other, sim.port, client_id=2)
            assert other.reqCurrentTime() and ib.reqCurrentTime()
        finally:
            other.disconnect()


def test_connect_after_login_delay(ib: IB) -> None:
    with running_simulator(login_delay=0.3, before_login="refuse") as sim:
        assert sim.wait_logged_in(timeout=5)
        connect(ib, sim.port)
        assert ib.managedAccounts() == ACCOUNTS


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"mode": "silent"}, TimeoutError),
        ({"mode": "no-accounts"}, TimeoutError),  # ib_async is ready only with a non-empty account list
        # ib_async logs error 326 and the close, then still waits out the timeout.
        ({"mode": "client-id-in-use"}, TimeoutError),
        ({"login_delay": 30, "before_login": "close"}, TimeoutError),
        ({"login_delay": 30, "before_login": "silent"}, TimeoutError),
        ({"login_delay": 30, "before_login": "refuse"}, ConnectionRefusedError),
    ],
    ids=[
        "silent", "no-accounts", "client-id-in-use",
        "close-before-login", "silent-before-login", "refuse-before-login",
    ],
)
def test_connect_fails_when_gateway_is_not_serving(ib: IB, settings: dict, expected: type[Exception]) -> None:
    with running_simulator(**settings) as sim:
        with pytest.raises(expected):
            ib.connect("127.0.0.1", sim.port, clientId=1, timeout=FAIL_TIMEOUT)
        assert not ib.isConnected()


def test_duplicate_client_id_fails_while_first_stays_connected(ib: IB) -> None:
    with running_simulator() as sim:
        connect(ib, sim.port, client_id=7)
        duplicate = IB()
        with pytest.raises(TimeoutError):
            duplicate.connect("127.0.0.1", sim.port, clientId=7, timeout=FAIL_TIMEOUT)
        assert ib.isConnected()
        assert ib.reqCurrentTime()
