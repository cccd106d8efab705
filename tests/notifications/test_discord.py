"""DiscordNotifier against a local webhook receiver: delivery, limits, retries, secrets, CLI.

Every request goes to 127.0.0.1. Every scenario also checks that the receiver's
canary token never reaches a log record (caplog at DEBUG, urllib3 included),
the notifier's repr or its failure text.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from src.notifications.discord import DiscordNotifier, validate_webhook_url
from src.core.redaction import redact
from testkit.webhook import (
    CANARY_TOKEN,
    DROP,
    HANG,
    UNKNOWN_WEBHOOK,
    Reply,
    WebhookReceiver,
    rate_limited,
    refused_url,
    server_error,
)

REPO = Path(__file__).resolve().parents[2]
COLOURS = {"info": 3447003, "warning": 16776960, "error": 16711680, "critical": 10038562}
EMOJI = {"info": "ℹ️", "warning": "⚠️", "error": "❌", "critical": "🚨"}


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """A proxy from the environment must not carry 127.0.0.1 requests off this machine."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


class Sleeps(list):
    """The waits asked for, in order; `sleep` records one and returns at once."""

    def sleep(self, seconds):
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


def assert_token_kept(logs, *things):
    """The canary token is in no log record and in no str/repr of `things`."""
    assert CANARY_TOKEN not in logs.text
    for record in logs.records:
        assert CANARY_TOKEN not in record.getMessage()
    for thing in things:
        assert CANARY_TOKEN not in str(thing) and CANARY_TOKEN not in repr(thing)


def records_at(logs, level):
    return [r for r in logs.records if r.name == "src.notifications.discord" and r.levelno == level]


def embed_of(request):
    return request.json["embeds"][0]


def units(text):
    return len(text.encode("utf-16-le")) // 2


# --- log-only mode -----------------------------------------------------------


class ExplodingSession:
    def post(self, *args, **kwargs):
        raise AssertionError("log-only mode must not make HTTP requests")


@pytest.mark.parametrize("url", [None, "", "   "])
def test_log_only_logs_each_alert_at_its_level_and_returns_true(url, logs):
    notifier = DiscordNotifier(url, session=ExplodingSession())
    assert not notifier.enabled
    assert notifier.send("info", "gateway starting") is True
    assert notifier.send("warning", "slow login") is True
    assert notifier.send("error", "gateway down", fields={"attempt": "2"}) is True
    assert notifier.send("critical", "bot died 🚨") is True
    levels = [(r.levelno, r.getMessage()) for r in logs.records if r.name == "src.notifications.discord"]
    assert levels == [
        (logging.INFO, "Info: gateway starting"),
        (logging.WARNING, "Warning: slow login"),
        (logging.ERROR, "Error: gateway down | attempt: 2"),
        (logging.CRITICAL, "Critical: bot died 🚨"),
    ]
    assert "log-only" in repr(notifier)


# --- delivery ----------------------------------------------------------------


@pytest.mark.parametrize("level", ["info", "warning", "error", "critical"])
def test_delivered_payload_has_level_colour_title_message_fields_and_host(level, hook, logs):
    notifier = DiscordNotifier(hook.url)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    result = notifier.send(level, "Gateway ready ✅ in 12 s", title="Gateway", fields={"mode": "paper", "port": "4002"})
    assert result is True and notifier.last_failure is None
    [request] = hook.received
    assert request.path.endswith(f"/{CANARY_TOKEN}")  # the token really was in use
    assert request.headers["content-type"] == "application/json"
    assert request.json["username"] == "IBKR Startup"
    assert len(request.json["embeds"]) == 1
    embed = embed_of(request)
    assert embed["color"] == COLOURS[level]
    assert embed["title"] == f"{EMOJI[level]} Gateway"
    assert embed["description"] == "Gateway ready ✅ in 12 s"
    assert embed["fields"] == [{"name": "mode", "value": "paper"}, {"name": "port", "value": "4002"}]
    assert embed["footer"] == {"text": socket.gethostname()}
    stamp = datetime.fromisoformat(embed["timestamp"])
    assert stamp.utcoffset().total_seconds() == 0 and stamp >= before
    # logged locally too, at the alert's level
    [local] = records_at(logs, getattr(logging, level.upper()))
    assert local.getMessage() == "Gateway: Gateway ready ✅ in 12 s | mode: paper | port: 4002"
    assert_token_kept(logs, notifier, result, notifier.last_failure)


def test_default_title_is_the_level_name(hook, logs):
    assert DiscordNotifier(hook.url).send("error", "x") is True
    assert embed_of(hook.received[0])["title"] == "❌ Error"


def test_truncates_every_limit_and_the_embed_total(hook, logs):
    fields = {f"{i:02d}" + "n" * 298: "v" * 2000 for i in range(40)}
    assert DiscordNotifier(hook.url).send("critical", "m" * 10_000, title="t" * 300, fields=fields) is True
    embed = embed_of(hook.received[0])
    assert units(embed["title"]) <= 256 and embed["title"].endswith("…")
    assert units(embed["description"]) <= 4096 and embed["description"].endswith("…")
    assert units(embed["footer"]["text"]) <= 2048
    assert 1 <= len(embed["fields"]) <= 25
    for f in embed["fields"]:
        assert 1 <= units(f["name"]) <= 256 and 1 <= units(f["value"]) <= 1024
    total = units(embed["title"]) + units(embed["description"]) + units(embed["footer"]["text"])
    total += sum(units(f["name"]) + units(f["value"]) for f in embed["fields"])
    assert total <= 6000
    assert embed["fields"][-1]["name"] == "…" and "left out" in embed["fields"][-1]["value"]
    assert embed["fields"][0]["name"].startswith("00") and embed["fields"][0]["name"].endswith("…")


def test_truncates_description_and_field_count_when_the_total_allows(hook, logs):
    fields = {f"k{i}": f"v{i}" for i in range(30)}
    assert DiscordNotifier(hook.url).send("info", "🚨" * 3000, fields=fields) is True  # 6000 UTF-16 units
    embed = embed_of(hook.received[0])
    assert embed["description"].endswith("…") and units(embed["description"]) in (4095, 4096)
    assert set(embed["description"][:-1]) == {"🚨"}  # no emoji cut in half
    assert len(embed["fields"]) == 25
    assert embed["fields"][:24] == [{"name": f"k{i}", "value": f"v{i}"} for i in range(24)]
    assert embed["fields"][24] == {"name": "…", "value": "6 more field(s) left out"}


def test_empty_field_names_and_values_are_replaced(hook, logs):
    assert DiscordNotifier(hook.url).send("info", "m", fields={"": "", "k": ""}) is True
    assert embed_of(hook.received[0])["fields"] == [{"name": "-", "value": "-"}, {"name": "k", "value": "-"}]


# --- rate limits, errors, timeouts -------------------------------------------


def test_429_is_retried_after_retry_after(hook, logs):
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        time.sleep(seconds)

    hook.script(rate_limited(0.05), rate_limited(0.05))
    notifier = DiscordNotifier(hook.url, budget=2.0, sleep=sleep)
    result = notifier.send("warning", "rate limited twice")
    assert result is True
    assert waits == [0.05, 0.05]
    first, second, third = hook.received
    assert second.at - first.at >= 0.05 and third.at - second.at >= 0.05
    assert third.json == first.json  # the same alert, re-sent
    assert_token_kept(logs, notifier, result, notifier.last_failure)


def test_429_retry_after_header_is_used_when_the_body_has_none(hook, logs, sleeps):
    hook.script(rate_limited(0.25, in_body=False, in_header=True))
    assert DiscordNotifier(hook.url, sleep=sleeps.sleep).send("info", "m") is True
    assert sleeps == [0.25] and len(hook.received) == 2


def test_429_beyond_the_budget_gives_up_at_once(hook, logs, sleeps):
    hook.script(rate_limited(30.0))
    notifier = DiscordNotifier(hook.url, budget=2.0, sleep=sleeps.sleep)
    started = time.monotonic()
    result = notifier.send("error", "m")
    assert result is False
    assert sleeps == [] and len(hook.received) == 1  # no wait asked for: given up at once
    assert time.monotonic() - started < 10  # nor one taken some other way: not the 30 s retry_after
    assert "HTTP 429" in notifier.last_failure and "budget" in notifier.last_failure
    assert len(records_at(logs, logging.WARNING)) == 1  # one line says why
    assert notifier.enabled  # a rate limit is no reason to stop using the webhook
    assert_token_kept(logs, notifier, result, notifier.last_failure)


def test_5xx_is_retried_three_times_then_false(hook, logs, sleeps):
    hook.default = server_error(502)
    notifier = DiscordNotifier(hook.url, sleep=sleeps.sleep)
    result = notifier.send("error", "m")
    assert result is False
    assert len(hook.received) == 3 and sleeps == [0.5, 1.0]
    assert "HTTP 502" in notifier.last_failure and "3 attempts" in notifier.last_failure
    assert_token_kept(logs, notifier, result, notifier.last_failure)


def test_5xx_then_success(hook, logs, sleeps):
    hook.script(server_error())
    assert DiscordNotifier(hook.url, sleep=sleeps.sleep).send("info", "m") is True
    assert len(hook.received) == 2 and sleeps == [0.5]


def test_no_retry_when_the_backoff_does_not_fit_the_budget(hook, logs):
    """The injected clock decides: after the first 500, only 0.3 s of budget is left."""
    now = [100.0]

    def clock():
        return now[0]

    class SlowSession(requests.Session):
        def post(self, *args, **kwargs):
            now[0] += 9.7
            return super().post(*args, **kwargs)

    hook.default = server_error()
    notifier = DiscordNotifier(hook.url, budget=10.0, session=SlowSession(), clock=clock, sleep=pytest.fail)
    assert notifier.send("info", "m") is False
    assert len(hook.received) == 1 and "exceed the 10 s budget" in notifier.last_failure


def test_other_4xx_is_not_retried_and_keeps_the_webhook(hook, logs, sleeps):
    hook.script(Reply(400, {"code": 50035, "message": "Invalid Form Body"}))
    notifier = DiscordNotifier(hook.url, sleep=sleeps.sleep)
    assert notifier.send("info", "m") is False
    assert len(hook.received) == 1 and sleeps == []
    assert "HTTP 400: Invalid Form Body (code 50035)" in notifier.last_failure
    assert notifier.enabled


def test_a_hanging_webhook_costs_at_most_the_budget(hook, logs):
    timeouts = []

    class RecordingSession(requests.Session):
        def post(self, *args, **kwargs):
            timeouts.append(kwargs["timeout"])
            return super().post(*args, **kwargs)

    hook.default = HANG
    notifier = DiscordNotifier(hook.url, budget=1.0, request_timeout=5.0, session=RecordingSession())
    started = time.monotonic()
    result = notifier.send("critical", "m")
    elapsed = time.monotonic() - started
    assert result is False
    assert 0.9 <= elapsed < 1.0 + 2.5  # the 1 s budget, not the 5 s request timeout
    assert len(hook.received) == 1
    assert len(timeouts) == 1 and timeouts[0] <= 1.0  # the request's timeout is capped by the budget
    assert_token_kept(logs, notifier, result, notifier.last_failure)


def test_the_budget_holds_even_when_the_http_call_ignores_its_timeout(logs):
    """Like a DNS lookup, which requests' timeout does not cover."""
    release = threading.Event()

    class StuckSession:
        def post(self, *args, **kwargs):
            release.wait(30)
            raise ConnectionError("never answered")

    notifier = DiscordNotifier(f"https://discord.com/api/webhooks/1/{CANARY_TOKEN}", budget=0.5,
                               session=StuckSession())
    started = time.monotonic()
    try:
        assert notifier.send("info", "m") is False
        assert time.monotonic() - started < 0.5 + 4.5  # the 0.5 s budget, not the call's 30 s
    finally:
        release.set()
    assert "TimeoutError" in notifier.last_failure


def test_a_dropped_connection_is_retried_then_false(hook, logs, sleeps):
    hook.default = DROP
    notifier = DiscordNotifier(hook.url, sleep=sleeps.sleep)
    result = notifier.send("error", "m")
    assert result is False and len(hook.received) == 3
    assert "ConnectionError" in notifier.last_failure
    assert_token_kept(logs, notifier, result, notifier.last_failure)


def test_connection_refused_is_false(logs, sleeps):
    notifier = DiscordNotifier(refused_url(), sleep=sleeps.sleep)
    result = notifier.send("critical", "m")
    assert result is False and sleeps == [0.5, 1.0]
    assert "ConnectionError" in notifier.last_failure and "refused" in notifier.last_failure
    assert "***" in notifier.last_failure  # requests' text held the path: masked, not dropped
    assert_token_kept(logs, notifier, result, notifier.last_failure)


@pytest.mark.parametrize(
    "reply, reason",
    [
        (UNKNOWN_WEBHOOK, "HTTP 404, unknown webhook"),
        (Reply(401, {"code": 50027, "message": "Invalid Webhook Token"}), "HTTP 401, bad token"),
        (Reply(403, {"code": 50013, "message": "Missing Permissions"}), "HTTP 403, forbidden"),
    ],
)
def test_a_rejected_webhook_is_reported_once_and_not_used_again(reply, reason, hook, logs, sleeps):
    hook.default = reply
    notifier = DiscordNotifier(hook.url, sleep=sleeps.sleep)
    first = notifier.send("critical", "first")
    assert first is False and not notifier.enabled and "disabled" in repr(notifier)
    second = notifier.send("critical", "second")
    assert second is False
    assert len(hook.received) == 1 and sleeps == []
    [rejected] = records_at(logs, logging.ERROR)
    assert f"({reason}): check DISCORD_WEBHOOK_URL" in rejected.getMessage()
    assert [r.getMessage() for r in records_at(logs, logging.CRITICAL)] == ["Critical: first", "Critical: second"]
    assert_token_kept(logs, notifier, first, second, notifier.last_failure)


def test_never_raises_and_masks_the_url_in_any_exception(logs):
    url = f"https://discord.com/api/webhooks/1/{CANARY_TOKEN}"

    class BrokenSession:
        def post(self, *args, **kwargs):
            raise RuntimeError(f"boom while posting to {url}\nsecond line")

    notifier = DiscordNotifier(url, session=BrokenSession(), sleep=lambda s: None)
    result = notifier.send("error", "m")
    assert result is False
    assert notifier.last_failure.startswith("Discord alert not delivered: RuntimeError: boom while posting to ***")
    assert "\n" not in notifier.last_failure
    assert url not in logs.text
    assert_token_kept(logs, notifier, result, notifier.last_failure)


def test_unknown_level_is_false_not_an_exception(logs):
    notifier = DiscordNotifier(None)
    assert notifier.send("fatal", "m") is False
    assert "unknown alert level 'fatal'" in notifier.last_failure


# --- URL validation and redaction --------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://127.0.0.1/api/webhooks/1/{CANARY_TOKEN}",
        f"http://example.invalid/api/webhooks/1/{CANARY_TOKEN}",  # plain http off this machine
        f"https://example.invalid/api/webhooks/abc/{CANARY_TOKEN}",
        f"https://example.invalid/api/hooks/1/{CANARY_TOKEN}",
        "https://example.invalid/api/webhooks/1",
        f"https://example.invalid/api/webhooks/1/{CANARY_TOKEN}?thread_id=5",
        f"https://example.invalid/api/webhooks/1/{CANARY_TOKEN}#x",
        f"https://example.invalid/api/webhooks/1/{CANARY_TOKEN}/extra",
        f"https://example.invalid:99x/api/webhooks/1/{CANARY_TOKEN}",
        f"https://[::1/api/webhooks/1/{CANARY_TOKEN}",
        f"https:///api/webhooks/1/{CANARY_TOKEN}",
        f"not a url {CANARY_TOKEN}",
    ],
)
def test_an_invalid_url_is_a_one_line_value_error_without_the_token(url):
    for make in (validate_webhook_url, DiscordNotifier):
        with pytest.raises(ValueError) as caught:
            make(url)
        message = str(caught.value)
        assert message and "\n" not in message
        assert CANARY_TOKEN not in "".join(traceback.format_exception(caught.value))


@pytest.mark.parametrize(
    "url",
    [
        f"https://discord.com/api/webhooks/123456789012345678/{CANARY_TOKEN}",
        f"https://discordapp.com/api/v10/webhooks/1/{CANARY_TOKEN}/",
        f"  http://localhost:8080/api/webhooks/1/{CANARY_TOKEN}\n",
        f"http://127.0.0.1:1/api/webhooks/1/{CANARY_TOKEN}",
    ],
)
def test_a_valid_url_is_accepted_and_hidden_from_repr(url):
    validate_webhook_url(url)
    notifier = DiscordNotifier(url)
    assert notifier.enabled and "configured" in repr(notifier) and "example" not in repr(notifier)
    assert CANARY_TOKEN not in repr(notifier)


def test_redact_masks_the_url_whole_and_the_token_alone():
    url = f"https://example.invalid/api/webhooks/1/{CANARY_TOKEN}"
    text = f"POST {url} failed; path /api/webhooks/1/{CANARY_TOKEN}"
    assert redact(text, [CANARY_TOKEN, url, ""]) == "POST *** failed; path /api/webhooks/1/***"
    assert redact("nothing secret", []) == "nothing secret"


# --- command line ------------------------------------------------------------


def run_cli(*args, url=None):
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_WEBHOOK_URL"}
    if url is not None:
        env["DISCORD_WEBHOOK_URL"] = url
    done = subprocess.run(
        [sys.executable, "-m", "src.notifications.discord", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
    )
    output = done.stdout + done.stderr
    assert CANARY_TOKEN not in output and "Traceback" not in output
    return done.returncode, output.strip()


def test_cli_delivers(hook):
    status, output = run_cli("warning", "manual test ⚠️", url=hook.url)
    assert (status, output) == (0, "delivered: warning alert sent to Discord")
    assert embed_of(hook.received[0])["description"] == "manual test ⚠️"


def test_cli_without_a_webhook_is_log_only():
    status, output = run_cli("info", "m")
    assert status == 0 and output.startswith("log-only:") and "\n" not in output


def test_cli_reports_a_rejected_webhook(hook):
    hook.default = UNKNOWN_WEBHOOK
    status, output = run_cli("error", "m", url=hook.url)
    assert status == 1 and len(hook.received) == 1
    assert output == "Discord webhook rejected (HTTP 404, unknown webhook): check DISCORD_WEBHOOK_URL"


def test_cli_reports_an_invalid_url_without_echoing_it():
    status, output = run_cli("error", "m", url=f"https://127.0.0.1/not-a-webhook/{CANARY_TOKEN}")
    assert status == 1 and output.startswith("DISCORD_WEBHOOK_URL is invalid:") and "\n" not in output
    assert "127.0.0.1" not in output


@pytest.mark.parametrize("args", [("fatal", "m"), ("info",), ()])
def test_cli_usage_errors(args, hook):
    status, output = run_cli(*args, url=hook.url)
    assert status == 1 and output.startswith("usage:") and hook.received == []  # 2 is reserved for Strategy C


# --- mentions (DISCORD_MENTION) ----------------------------------------------


@pytest.mark.parametrize(("mention", "allowed"), [
    ("@here", {"parse": ["everyone"]}),
    ("@everyone", {"parse": ["everyone"]}),
    ("<@123456789012345678>", {"parse": [], "users": ["123456789012345678"]}),
    ("<@&987654321>", {"parse": [], "roles": ["987654321"]}),
])
def test_a_critical_alert_pings_exactly_the_mention_and_other_levels_ping_nobody(mention, allowed, hook):
    notifier = DiscordNotifier(hook.url, mention=mention)
    for level in ("info", "warning", "error", "critical"):
        assert notifier.send(level, "2FA approval: 3 min left @everyone <@1> <@&2>") is True
    *quiet, critical = [r.json for r in hook.received]
    assert critical["content"] == mention
    assert critical["allowed_mentions"] == allowed
    assert embed_of(hook.received[-1])["description"] == "2FA approval: 3 min left @everyone <@1> <@&2>"
    for payload in quiet:
        assert "content" not in payload
        assert payload["allowed_mentions"] == {"parse": []}


def test_without_a_mention_nothing_pings_not_even_a_critical_alert(hook):
    notifier = DiscordNotifier(hook.url)
    assert notifier.send("critical", "@everyone the bot died") is True
    [request] = hook.received
    assert "content" not in request.json
    assert request.json["allowed_mentions"] == {"parse": []}


@pytest.mark.parametrize("mention", ["@operator", "<@abc>", "<@&>", "<@123> <@456>", "here", "<#123>"])
def test_a_malformed_mention_is_refused_in_one_line(mention):
    with pytest.raises(ValueError) as error:
        DiscordNotifier(None, mention=mention)
    assert str(error.value) == "a mention must be @here, @everyone, <@USERID> or <@&ROLEID> (numeric ids)"


def test_the_cli_pings_the_mention_it_is_given(hook):
    env = {**os.environ, "DISCORD_WEBHOOK_URL": hook.url, "DISCORD_MENTION": "<@&42>", "NO_PROXY": "127.0.0.1"}
    done = subprocess.run([sys.executable, "-m", "src.notifications.discord", "critical", "bot died"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [request] = hook.received
    assert (request.json["content"], request.json["allowed_mentions"]) == ("<@&42>", {"parse": [], "roles": ["42"]})
    bad = subprocess.run([sys.executable, "-m", "src.notifications.discord", "critical", "x"],
                         cwd=REPO, env={**env, "DISCORD_MENTION": "<@x>"}, capture_output=True, text=True, timeout=60)
    assert (bad.returncode, len(hook.received)) == (1, 1)
    assert bad.stderr.startswith("DISCORD_MENTION is invalid")


@pytest.mark.parametrize(("url", "why"), [
    ("https://discord.com@127.0.0.1:9/api/webhooks/123/abc", "credentials"),
    ("https://user:pw@discord.com/api/webhooks/123/abc", "credentials"),
    ("https://evil.example/api/webhooks/123/abc", "must be on Discord"),
    ("https://discord.com.evil.example/api/webhooks/123/abc", "must be on Discord"),
])
def test_the_webhook_goes_to_discord_only(url, why):
    from src.notifications.discord import validate_webhook_url

    with pytest.raises(ValueError, match=why):
        validate_webhook_url(url)
    validate_webhook_url("https://discord.com/api/webhooks/123/abc")  # the real thing passes
    validate_webhook_url("https://canary.discord.com/api/webhooks/123/abc")
