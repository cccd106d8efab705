"""The reliability suite's hypothesis profiles (its fixtures, `world` and `stack`, are in tests/conftest.py).

Chosen by HYPOTHESIS_PROFILE: "ci" (the default, ~150 examples) and "long" (10 000 examples):
HYPOTHESIS_PROFILE=long .venv/bin/python -m pytest --timeout 0 tests/reliability/test_gameplan_properties.py
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=150, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=10_000, deadline=None, print_blob=True,  # failures kept in .hypothesis/
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
