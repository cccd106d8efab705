"""Shared pieces for tests that run real processes: stop any bot a test started; the `stack` fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.stack import stack, stop_bot

__all__ = ["bot_reaper", "stack", "stop_bot"]  # `stack` is a fixture for this package's tests


@pytest.fixture
def bot_reaper():
    """Collects state dirs; every bot started there is stopped when the test ends."""
    dirs: list[Path] = []
    yield dirs.append
    for state_dir in dirs:
        stop_bot(state_dir)
