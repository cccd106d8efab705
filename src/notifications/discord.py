"""Discord webhook alerts for the zero-touch startup orchestrator.

An alert must never stop or stall a start-up. Each one is logged locally at its
level first, then posted to the webhook within a bounded time budget; failures
are logged, never raised. With no webhook configured, alerts are logged only.

The webhook URL carries its secret token (``/api/webhooks/<id>/<token>``), and
``requests`` puts the URL into its exception texts and urllib3 into its debug
log, so the URL and token are masked in every log line, message and repr.

Test a webhook by hand (exit 0 delivered or log-only, 1 not delivered, 2 usage)::

    DISCORD_WEBHOOK_URL=... [DISCORD_MENTION=@here] python -m src.notifications.discord LEVEL MESSAGE

A critical alert mentions DISCORD_MENTION (when set) so the operator's phone rings; Discord's
``allowed_mentions`` is set on every message, to exactly that mention or to nobody.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

import requests

from src.core.redaction import redact
from src.core.webhooks import DISCORD_HOSTS as DISCORD_HOSTS
from src.core.webhooks import allowed_mentions, validate_mention, webhook_token
from src.core.webhooks import validate_webhook_url as validate_webhook_url

log = logging.getLogger(__name__)
Fields = Mapping[str, str]  # alert fields: name -> value, shown in order


class Level(NamedTuple):
    """How one alert level is logged and shown."""

    logging_level: int
    colour: int
    emoji: str
    label: str


LEVELS: dict[str, Level] = {
    "info": Level(logging.INFO, 3447003, "ℹ️", "Info"),
    "warning": Level(logging.WARNING, 16776960, "⚠️", "Warning"),
    "error": Level(logging.ERROR, 16711680, "❌", "Error"),
    "critical": Level(logging.CRITICAL, 10038562, "🚨", "Critical"),
}

# Discord's limits, in characters.
_TITLE_MAX, _DESCRIPTION_MAX, _FOOTER_MAX, _USERNAME_MAX = 256, 4096, 2048, 80
_FIELD_NAME_MAX, _FIELD_VALUE_MAX, _FIELDS_MAX, _EMBED_TOTAL_MAX = 256, 1024, 25, 6000
_OMITTED_RESERVE = 64  # room kept for the "N more fields left out" field
_SHORTEST_CUT_VALUE = 16  # a field value cut shorter than this says nothing: drop it

_MAX_ATTEMPTS = 3
_BACKOFF = 0.5  # seconds before the 2nd attempt; doubled before the 3rd
_REJECTED = {401: "bad token", 403: "forbidden", 404: "unknown webhook"}

# urllib3 logs request paths (token included) at DEBUG; our own log gets the same mask.
_SCRUBBED_LOGGERS = (
    log.name,
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)


class _SecretFilter(logging.Filter):
    """Masks registered secrets in the records of the loggers it is attached to."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's problem, not ours
            return True
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_secret_filter = _SecretFilter()


def _guard_logs(*secrets: str) -> None:
    """Keep `secrets` out of this module's and urllib3's log records from now on."""
    _secret_filter.secrets.update(secrets)
    for name in _SCRUBBED_LOGGERS:
        logging.getLogger(name).addFilter(_secret_filter)  # no-op when already there


class DiscordNotifier:
    """Sends leveled alerts to a Discord webhook, or only logs them when none is set.

    ``send`` returns True when the alert was delivered (Discord answered 2xx) or no
    webhook is configured (log-only by choice); False when a configured webhook did
    not get it. It never raises and never takes longer than `budget` seconds on the
    `clock`. A webhook that answers 401/403/404 is reported once and not used again.
    """

    def __init__(
        self,
        webhook_url: str | None,
        *,
        budget: float = 10.0,
        request_timeout: float = 5.0,
        username: str = "IBKR Startup",
        mention: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Raise ValueError (one line, no URL in it) if `webhook_url` or `mention` is malformed.

        `mention` (``@here``, ``@everyone``, ``<@USERID>``, ``<@&ROLEID>``) is put in the content of
        critical alerts only, with ``allowed_mentions`` set to exactly it; every other message is
        sent with ``allowed_mentions: {"parse": []}``, so nothing in its text can ping anyone.
        """
        self._mention = (mention or "").strip() or None
        self._mention_allows = allowed_mentions(self._mention)
        url = (webhook_url or "").strip()
        self._url = url or None
        self._secrets: tuple[str, ...] = ()
        if url:
            self._secrets = (url, webhook_token(url))
            _guard_logs(*self._secrets)
        self._budget = budget
        self._request_timeout = request_timeout
        self._username = _clip(username, _USERNAME_MAX)
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._host = socket.gethostname()
        self._disabled = False
        self.last_failure: str | None = None  # why the last alert was not delivered (log-safe)

    def __repr__(self) -> str:
        state = "disabled" if self._disabled else "configured" if self._url else "log-only"
        return f"DiscordNotifier(webhook={state}, budget={self._budget})"

    @property
    def enabled(self) -> bool:
        """True while alerts go to a webhook: one is configured and has not been rejected."""
        return self._url is not None and not self._disabled

    def send(self, level: str, message: str, *, title: str | None = None, fields: Fields | None = None) -> bool:
        """Log the alert at `level` (info, warning, error, critical), then deliver it."""
        try:
            spec = LEVELS.get(level)
            if spec is None:
                return self._fail(f"unknown alert level {level!r}; the alert was: {message}")
            title = str(title or spec.label)
            items = [(str(name), str(value)) for name, value in (fields or {}).items()]
            log.log(spec.logging_level, "%s", _log_line(title, str(message), items))
            if self._url is None:
                return True
            if self._disabled:
                return False
            embed = _embed(f"{spec.emoji} {title}", str(message), items, spec.colour, self._host)
            return self._deliver(self._payload(level, embed))
        except Exception as exc:  # an alert must never take the orchestrator down
            return self._fail(_describe(exc, self._secrets))

    def _payload(self, level: str, embed: dict[str, Any]) -> dict[str, Any]:
        """The webhook body: the mention (critical alerts only) and the mentions it may ping."""
        payload: dict[str, Any] = {"username": self._username, "embeds": [embed]}
        if level == "critical" and self._mention:
            payload["content"] = self._mention
            payload["allowed_mentions"] = self._mention_allows
        else:
            payload["allowed_mentions"] = {"parse": []}
        return payload

    def _deliver(self, payload: dict[str, Any]) -> bool:
        """POST with retries (429, 5xx, network errors) until delivered or out of budget."""
        deadline = self._clock() + self._budget
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            remaining = deadline - self._clock()
            if remaining <= 0:
                return self._fail(f"no time left in the {self._budget:g} s budget")
            backoff = _BACKOFF * 2 ** (attempt - 1)
            try:
                response = self._post(payload, min(self._request_timeout, remaining), deadline)
            except Exception as exc:
                problem, wait = _describe(exc, self._secrets), backoff
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self.last_failure = None
                    log.debug("Discord alert delivered (HTTP %d)", status)
                    return True
                if status in _REJECTED:
                    return self._disable(status)
                problem = f"HTTP {status}"
                if status == 429:
                    wait = _retry_after(response)
                    wait = backoff if wait is None else wait
                elif status >= 500:
                    wait = backoff
                else:  # any other answer will not change on a retry
                    return self._fail(f"{problem}: {_discord_error(response, self._secrets)}")
            if attempt == _MAX_ATTEMPTS:
                break
            if self._clock() + wait >= deadline:
                return self._fail(f"{problem}; a retry in {wait:g} s would exceed the {self._budget:g} s budget")
            log.debug("Discord attempt %d failed (%s); retrying in %g s", attempt, problem, wait)
            self._sleep(wait)
        return self._fail(f"{problem} (after {_MAX_ATTEMPTS} attempts)")

    def _post(self, payload: dict[str, Any], timeout: float, deadline: float) -> requests.Response:
        """POST `payload`, giving up at `deadline` even if requests would not.

        requests' timeout bounds the connect and each read, but neither the DNS
        lookup nor a server that trickles its answer: the call runs in a daemon
        thread that is abandoned at the deadline.
        """
        outcome: dict[str, Any] = {}

        def post() -> None:
            try:
                outcome["response"] = self._session.post(
                    self._url or "", json=payload, timeout=timeout, allow_redirects=False  # send() checked the URL
                )
            except Exception as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=post, name="discord-webhook", daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - self._clock()))
        if "error" in outcome:
            raise outcome["error"]
        if "response" not in outcome:
            raise TimeoutError("no answer before the deadline")
        response: requests.Response = outcome["response"]
        return response

    def _disable(self, status: int) -> bool:
        """Stop using a webhook Discord rejected, and say so once."""
        self._disabled = True
        self.last_failure = (
            f"Discord webhook rejected (HTTP {status}, {_REJECTED[status]}): check DISCORD_WEBHOOK_URL"
        )
        log.error("%s; further alerts are only logged", self.last_failure)
        return False

    def _fail(self, reason: str) -> bool:
        """Record and log (one line) why an alert was not delivered."""
        self.last_failure = f"Discord alert not delivered: {redact(reason, self._secrets)}"
        log.warning("%s", self.last_failure)
        return False


def _log_line(title: str, message: str, fields: list[tuple[str, str]]) -> str:
    """The alert as it goes to the local log."""
    return f"{title}: {message}" + "".join(f" | {name}: {value}" for name, value in fields)


def _embed(title: str, description: str, fields: list[tuple[str, str]], colour: int, host: str) -> dict[str, Any]:
    """One embed within Discord's limits: the title and message first, then fields in order."""
    title, footer = _clip(title, _TITLE_MAX), _clip(host, _FOOTER_MAX)
    room = _EMBED_TOTAL_MAX - _units(title) - _units(footer) - _OMITTED_RESERVE
    description = _clip(description, min(_DESCRIPTION_MAX, room))
    return {
        "title": title,
        "description": description,
        "color": colour,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fields": _fit_fields(fields, room - _units(description)),
        "footer": {"text": footer},
    }


def _fit_fields(fields: list[tuple[str, str]], room: int) -> list[dict[str, str]]:
    """Fields in order while they fit in `room` characters, then one saying how many were left out.

    The caller keeps _OMITTED_RESERVE characters outside `room` for that last field.
    """
    limit = _FIELDS_MAX if len(fields) <= _FIELDS_MAX else _FIELDS_MAX - 1
    kept: list[dict[str, str]] = []
    for name, value in fields[:limit]:
        name, value = _clip(name or "-", _FIELD_NAME_MAX), value or "-"  # Discord rejects empty ones
        space = min(room - _units(name), _FIELD_VALUE_MAX)
        if space < min(_units(value), _SHORTEST_CUT_VALUE):
            break
        value = _clip(value, space)
        kept.append({"name": name, "value": value})
        room -= _units(name) + _units(value)
    if omitted := len(fields) - len(kept):
        kept.append({"name": "…", "value": f"{omitted} more field(s) left out"})
    return kept


def _units(text: str) -> int:
    """Length in UTF-16 code units: never less than the number of characters,
    so text within a limit by this count fits however Discord counts."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _clip(text: str, limit: int) -> str:
    """`text` cut to `limit` (>= 1) units, ending in '…' when cut; never splits an emoji's surrogate pair."""
    if _units(text) <= limit:
        return text
    kept = text.encode("utf-16-le", "surrogatepass")[: 2 * (limit - 1)]
    return kept.decode("utf-16-le", "ignore") + "…"


def _retry_after(response: requests.Response) -> float | None:
    """Seconds a 429 asks us to wait: the JSON ``retry_after``, else the Retry-After header."""
    try:
        body = response.json()
    except ValueError:
        body = None
    candidates = (body.get("retry_after") if isinstance(body, dict) else None, response.headers.get("Retry-After"))
    for value in candidates:
        if not isinstance(value, (int, float, str)):
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def _discord_error(response: requests.Response, secrets: Iterable[str]) -> str:
    """Discord's own explanation of an error answer, shortened and log-safe."""
    try:
        body = response.json()
        text = f"{body['message']} (code {body['code']})"
    except Exception:  # not Discord's JSON error shape
        text = response.text or response.reason or "no explanation"
    return _clip(" ".join(redact(text, secrets).split()), 300)


def _describe(exc: BaseException, secrets: Iterable[str]) -> str:
    """An exception as one log-safe line: class name and masked message (requests puts the URL in it)."""
    text = " ".join(redact(str(exc), secrets).split())
    return f"{type(exc).__name__}: {_clip(text, 300)}" if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Send one alert using DISCORD_WEBHOOK_URL; print one line; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0].lower() not in LEVELS:
        print(f"usage: python -m src.notifications.discord {{{'|'.join(LEVELS)}}} MESSAGE", file=sys.stderr)
        return 1  # a usage error is 1, as in every CLI here: 2 means "bot running under Strategy C"
    level, message = args[0].lower(), args[1]
    logging.getLogger().addHandler(logging.NullHandler())  # the printed line is the whole report
    try:
        validate_mention(os.environ.get("DISCORD_MENTION") or "")
    except ValueError as exc:
        print(f"DISCORD_MENTION is invalid: {exc}", file=sys.stderr)
        return 1
    try:
        notifier = DiscordNotifier(os.environ.get("DISCORD_WEBHOOK_URL"), mention=os.environ.get("DISCORD_MENTION"))
    except ValueError as exc:
        print(f"DISCORD_WEBHOOK_URL is invalid: {exc}", file=sys.stderr)
        return 1
    try:
        if not notifier.enabled:
            notifier.send(level, message)
            print(f"log-only: DISCORD_WEBHOOK_URL is not set, {level} alert not sent")
            return 0
        if notifier.send(level, message):
            print(f"delivered: {level} alert sent to Discord")
            return 0
    except KeyboardInterrupt:
        print("interrupted: the alert may not have been delivered", file=sys.stderr)
        return 1
    print(notifier.last_failure, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
