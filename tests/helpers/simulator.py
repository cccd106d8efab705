"""Reusable test helper: a GatewaySimulator serving from a background thread."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from src.simulator import GatewaySimulator


@contextlib.contextmanager
def running_simulator(**kwargs: object) -> Iterator[GatewaySimulator]:
    """Yield a started simulator; ``.port`` is its real port. Stops it on exit.

    Keyword arguments go to ``GatewaySimulator``; ``port`` defaults to 0 (a free
    port, known even with ``before_login="refuse"``, which listens only after login).
    """
    kwargs.setdefault("port", 0)
    with GatewaySimulator(**kwargs) as simulator:
        yield simulator
