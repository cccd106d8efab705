"""A webhook that fails in every way: the run keeps its deadlines and no token reaches any output.

Each run goes INITIALIZING .. BOT_START_FAILED with two alerts on the way (Strategy C deployed,
Startup failed), so alerts queue up behind a slow webhook. What must hold whatever the webhook
does: the state machine is not delayed, the process exits at most ALERT_DRAIN after the run
ended, the journal says which alerts were not delivered, and the token is in no log, journal
line, payload or stderr.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from src.core.durations import ALERT_DRAIN
from testkit.stack import Run, Stack, secret_hits
from testkit.webhook import (
    CANARY_TOKEN,
    HANG,
    WEBHOOK_ID,
    Reply,
    WebhookReceiver,
    rate_limited,
    server_error,
)
from tests.helpers.ci import skip_or_fail

FAILING_BOT = "false"  # exits 1 at once: the run ends in BOT_START_FAILED after a Strategy C alert
ATTEMPTS = 3  # src/notifications/discord.py: at most 3 attempts per alert


def run_with_webhook(world: Stack, **overrides: str) -> tuple[Run, float]:
    """The run, and how long the process lived after the state machine's last transition."""
    run = world.orchestrate(**{"GAMEPLAN_PATH": "", "BOT_COMMAND": FAILING_BOT, **overrides})
    exited = time.time()
    last = datetime.fromisoformat(run.record["transitions"][-1]["at"]).timestamp()
    return run, exited - last


def assert_kept_its_deadlines(world: Stack, run: Run, tail: float, handled: int = 2) -> None:
    """Deadlines kept, and the journal lists the first `handled` of the run's two alerts (delivered
    or not): those the webhook dealt with before the drain ended."""
    assert run.code == 1 and run.path[-2:] == ["BOT_START_FAILED", "FAILURE"], run.stderr
    # the machine never waited on an alert: the state that sends the Strategy C warning took a few ms,
    # less than one delivery to these webhooks takes (0.8 s for the 429 storm, 1.5 s for the 500s, 4 s
    # for the hang); the critical one is sent after the last transition
    assert run.seconds_in("GAMEPLAN_MISSING")[0] < 0.5, run.record["transitions"]
    # alerts still pending at exit get ALERT_DRAIN, once (plus the process's own exit, slower on busy cores)
    assert tail <= ALERT_DRAIN + 2.5, tail
    assert [a["level"] for a in run.record["alerts"]] == ["warning", "critical"][:handled]
    assert not secret_hits(world, [CANARY_TOKEN], stderr=run.stderr)


def test_baseline_a_healthy_webhook_gets_both_alerts(world):
    run, tail = run_with_webhook(world)
    assert_kept_its_deadlines(world, run, tail)
    assert [a["delivered"] for a in run.record["alerts"]] == [True, True]
    assert tail < ALERT_DRAIN - 2  # both delivered at once: the exit did not wait out the drain


def test_a_429_storm_is_honoured_within_the_alert_budget(world):
    world.hook.default = rate_limited(0.4)
    run, tail = run_with_webhook(world)
    assert_kept_its_deadlines(world, run, tail)
    assert not any(a["delivered"] for a in run.record["alerts"])
    times = [r.at for r in world.hook.received]
    assert len(times) == 2 * ATTEMPTS  # three attempts per alert, never a retry storm
    waits = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(waits[0], waits[1], waits[3], waits[4]) >= 0.4  # retry_after honoured between attempts


def test_a_429_asking_for_longer_than_the_budget_is_not_waited_for(world):
    world.hook.default = rate_limited(60)
    run, tail = run_with_webhook(world)
    assert_kept_its_deadlines(world, run, tail)
    assert len(world.hook.received) == 2  # one attempt each: a 60 s wait would break the budget
    assert tail < ALERT_DRAIN - 2  # and none pending at exit: the drain was not waited out


def test_a_500_is_retried_with_backoff_then_given_up(world):
    world.hook.default = server_error(500)
    run, tail = run_with_webhook(world)
    assert_kept_its_deadlines(world, run, tail)
    assert len(world.hook.received) == 2 * ATTEMPTS and not any(a["delivered"] for a in run.record["alerts"])


def test_a_webhook_that_never_answers_delays_the_exit_by_alert_drain_at_most(world):
    world.hook.default = HANG
    run, tail = run_with_webhook(world)
    # The warning's 4 s budget runs out inside the drain (journaled, not delivered); the critical one
    # queued behind it would need 4 s more: it is left to the log, and the run says so.
    assert_kept_its_deadlines(world, run, tail, handled=1)
    assert run.record["alerts"][0]["delivered"] is False
    assert world.hook.received  # it was tried: the requests hang until the receiver stops
    assert f"alerts still pending after {ALERT_DRAIN:.1f} s: left to the log" in run.stderr  # said, not silent


@pytest.fixture
def local_resolver_only(world: Stack, tmp_path: Path) -> None:
    """Run the CLI with /etc/resolv.conf naming 127.0.0.1, where no DNS server listens (a private mount
    namespace): name resolution fails as it does with the network down, and no query leaves the machine."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        skip_or_fail("needs root and unshare(1) to give the CLI its own /etc/resolv.conf")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    world.prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv)]


def test_dns_failure_fails_the_alerts_without_leaking_the_url(world, local_resolver_only):
    url = f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{CANARY_TOKEN}"  # resolves nowhere here: no DNS server
    run, tail = run_with_webhook(world, DISCORD_WEBHOOK_URL=url)
    assert_kept_its_deadlines(world, run, tail)
    assert not any(a["delivered"] for a in run.record["alerts"])
    assert "Discord alert not delivered" in run.stderr and "***" in run.stderr  # the URL masked, not echoed


@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_to_another_host_is_not_followed(world, status):
    with WebhookReceiver(host="127.0.0.2") as elsewhere:
        world.hook.default = Reply(status, headers={"Location": elsewhere.url})
        run, tail = run_with_webhook(world)
        assert_kept_its_deadlines(world, run, tail)
        assert elsewhere.received == []  # the token never went to the other host
    assert len(world.hook.received) == 2 and not any(a["delivered"] for a in run.record["alerts"])
    assert f"HTTP {status}" in run.stderr


def test_an_enormous_failure_message_is_cut_to_discords_limits(world):
    enormous = f"{sys.executable} -c \"import sys; [print('x' * 100_000) for _ in range(20)]; sys.exit(3)\""
    run, tail = run_with_webhook(world, BOT_COMMAND=enormous)
    assert_kept_its_deadlines(world, run, tail)
    embed = world.hook.received[-1].json["embeds"][0]
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    total = len(embed["title"]) + len(embed["description"]) + len(embed["footer"]["text"]) + sum(
        len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= 6000 and all(a["delivered"] for a in run.record["alerts"])
    assert len(run.record["reason"]) < 20_000  # the journal keeps a bounded tail of the bot's log, not 2 MB
