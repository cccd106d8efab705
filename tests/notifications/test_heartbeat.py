"""The dead-man's switch against a local push monitor: pings while trading-ready, none while paused, the
failure's reason at once to the fail endpoint, never an exception and never the URL in a log line."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from src.notifications.heartbeat import Heartbeat
from src.orchestration.supervisor.supervise import Supervisor
from src.core.statefiles import READY_FILE
from testkit.docker import free_port
from testkit.stack import wait_until
from testkit.webhook import HANG, WebhookReceiver
from tests.orchestration.test_supervise import BEFORE_THE_CYCLE, supervisor_of


def monitor(hook: WebhookReceiver) -> Heartbeat:
    base = hook.url.rsplit("/api/", 1)[0]
    return Heartbeat(f"{base}/ping/{hook.token}", f"{base}/ping/{hook.token}/fail", timeout=2.0)


def test_ping_and_fail_reach_the_monitor(caplog):
    with WebhookReceiver() as hook, caplog.at_level(logging.INFO):
        beat = monitor(hook)
        assert beat.ping()
        wait_until(lambda: beat.sent == 1, 5, "the ping")
        assert beat.fail("the bot exited unexpectedly with code 3", wait=5)
        wait_until(lambda: beat.sent == 2, 5, "the report")
        paths = [r.path for r in hook.received]
        assert paths == [f"/ping/{hook.token}", f"/ping/{hook.token}/fail"]
        assert hook.received[1].body == b"the bot exited unexpectedly with code 3"
    assert hook.token not in caplog.text and "fail endpoint: yes" in repr(beat)


def test_a_hung_monitor_never_piles_up_pings_and_a_dead_one_never_raises(caplog):
    with WebhookReceiver() as hook:
        hook.script(HANG)
        beat = monitor(hook)
        assert beat.ping() and not beat.ping()  # the second waits for nothing: skipped while one hangs
    wait_until(lambda: beat.sent + beat.failed == 1, 5, "the hung ping released")
    caplog.clear()
    dead = Heartbeat(f"http://127.0.0.1:{free_port()}/ping/x", timeout=1.0)
    with caplog.at_level(logging.WARNING):
        assert dead.ping()
        wait_until(lambda: dead.failed == 1, 5, "the failed ping")
        assert dead.ping()
        wait_until(lambda: dead.failed == 2, 5, "the second failed ping")
    assert sum("Heartbeat ping to the monitor failed" in r.getMessage() for r in caplog.records) == 1


def bot_says(harness, connection: str) -> None:
    (harness.config.state_dir / READY_FILE).write_text(json.dumps(
        {"pid": 4242, "connection": connection, "connection_since": datetime.now(UTC).isoformat()}))


def test_the_supervisor_pings_only_while_trading_ready_and_reports_its_failure(harness):
    harness.now = BEFORE_THE_CYCLE
    with WebhookReceiver() as hook:
        orch, sup = supervisor_of(harness)
        assert isinstance(sup, Supervisor)
        orch.services.heartbeat = beat = monitor(hook)
        sup.turn()
        wait_until(lambda: beat.sent == 1, 5, "the ping while trading-ready")
        sup.pinged_at = float("-inf")  # the interval has passed
        bot_says(harness, "reconnecting")
        sup.turn()
        assert beat.sent == 1 and len(hook.received) == 1  # paused: no ping, the monitor will notice
        sup._end("the bot exited unexpectedly with code 3")
        wait_until(lambda: any(r.path.endswith("/fail") for r in hook.received), 5, "the failure report")
        assert hook.received[-1].body.startswith(b"the bot exited unexpectedly")
