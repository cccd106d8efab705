"""BOT_STRATEGY is checked in a child process with a deadline: whatever the operator's module does when it is
imported (exit, abort, hang), the orchestrator ends the run with the right code, a journal line and an alert."""

from __future__ import annotations

import pytest

from src.broker.strategy import PrerequisiteError, check_strategy


@pytest.mark.parametrize(("spec", "why"), [
    ("sys:exit", "exited with code 0 while loading"),  # sys.exit() as the factory: once "exit 0, bot running"
    ("os:abort", "killed by signal 6"),
    ("no_such_module_anywhere:Strategy", "cannot be loaded: ModuleNotFoundError"),
    ("json:loads", "could not be created"),
])
def test_a_strategy_that_would_end_the_orchestrator_is_a_configuration_error(harness, spec, why):
    harness.configure(bot_strategy=spec)
    assert harness.run() == 1
    run = harness.runs[-1]
    assert run["outcome"] == "failure" and "BOT_STRATEGY" in run["reason"] and why in run["reason"], run["reason"]
    assert harness.path[-2:] == ["CONFIG_INVALID", "FAILURE"] and harness.bot_calls == []
    assert any("BOT_STRATEGY" in message for _, message in harness.notifier.alerts)


def test_a_strategy_that_hangs_at_import_is_cut_off_at_the_deadline(tmp_path):
    module = tmp_path / "hanging.py"
    module.write_text("import time\ntime.sleep(600)\nclass Strategy: pass\n")
    with pytest.raises(PrerequisiteError, match="did not load within 2 s"):
        check_strategy(f"{module}:Strategy", timeout=2)


def test_a_good_strategy_passes_in_the_child(tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "strategy.py"
    check_strategy(f"{example}:ExampleStrategy", cwd=example.parents[2])
