"""Missing test prerequisites: a skip on a developer's machine, a failure in CI (CI is set)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def skip_or_fail(reason: str) -> NoReturn:
    """CI provisions everything the suite needs, so there a missing prerequisite is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so this test must not skip: {reason}", pytrace=False)
    pytest.skip(reason)
