"""What a Discord webhook URL and a mention may be: the shape checks the settings (DISCORD_WEBHOOK_URL,
DISCORD_MENTION) and the notifier share, standard library only (the settings are checked before any
notifier, and `requests`, is loaded)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# DISCORD_MENTION: who a critical alert pings. Discord's allowed_mentions is set to exactly that.
_MENTION = re.compile(r"@here|@everyone|<@(?P<user>\d{1,20})>|<@&(?P<role>\d{1,20})>")
_WEBHOOK_PATH = re.compile(r"/api/(?:v\d+/)?webhooks/\d+/([A-Za-z0-9_-]+)/?")
_PLAIN_HTTP_HOSTS = {"127.0.0.1", "localhost"}  # local test receivers only


def validate_webhook_url(url: str) -> None:
    """Raise ValueError unless `url` has the shape of a Discord webhook URL.

    https only (http for 127.0.0.1/localhost, for tests); path
    ``/api/webhooks/<digits>/<token>``, no query. The message is one line that never
    quotes the URL, since the URL holds the token.
    """
    webhook_token(url)


# Discord's own webhook hosts: an alert, with whatever it says about the account, goes nowhere else.
DISCORD_HOSTS = frozenset({"discord.com", "discordapp.com", "canary.discord.com", "ptb.discord.com"})


def webhook_token(url: str) -> str:
    """Validate `url` (see validate_webhook_url) and return its token."""
    try:
        parts = urlsplit(url.strip())
        host, _ = parts.hostname, parts.port  # .port raises on a malformed port
    except ValueError:
        raise ValueError("webhook URL is not a valid URL") from None
    if parts.scheme != "https" and not (parts.scheme == "http" and host in _PLAIN_HTTP_HOSTS):
        raise ValueError("webhook URL must start with https:// (plain http only for 127.0.0.1 or localhost)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("webhook URL must not carry credentials (user@host): the host would not be Discord")
    if host not in DISCORD_HOSTS and host not in _PLAIN_HTTP_HOSTS:
        raise ValueError(f"webhook URL must be on Discord ({', '.join(sorted(DISCORD_HOSTS))}) or, for tests, "
                         "on this machine")
    match = _WEBHOOK_PATH.fullmatch(parts.path)
    if not host or not match or parts.query or parts.fragment:
        raise ValueError("webhook URL must look like https://discord.com/api/webhooks/<id>/<token>")
    return match.group(1)


def validate_mention(mention: str) -> None:
    """Raise ValueError (one line) unless `mention` is ``@here``, ``@everyone``, ``<@USERID>`` or
    ``<@&ROLEID>`` with a numeric id."""
    allowed_mentions(mention)


def allowed_mentions(mention: str | None) -> dict[str, list[str]]:
    """Discord's ``allowed_mentions`` that lets exactly `mention` ping, and nothing else (None: nobody)."""
    if mention is None or not mention.strip():
        return {"parse": []}
    match = _MENTION.fullmatch(mention.strip())
    if match is None:
        raise ValueError("a mention must be @here, @everyone, <@USERID> or <@&ROLEID> (numeric ids)")
    if match["user"]:
        return {"parse": [], "users": [match["user"]]}
    if match["role"]:
        return {"parse": [], "roles": [match["role"]]}
    return {"parse": ["everyone"]}  # Discord's "everyone" covers both @everyone and @here
