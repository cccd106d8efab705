"""Secrets out of text: every log line, alert, journal record and status the project writes.

Standard library only, and nothing from the orchestrator or the notifiers, so that anything may
import it: the Discord notifier masks its webhook URL with it, the orchestrator its configured
secrets (src/orchestration/config.py `secrets`).
"""

from __future__ import annotations

from collections.abc import Iterable


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return `text` with every occurrence of each non-empty secret replaced by ``***``.

    Longest first, so a whole URL is masked rather than only the token inside it.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
