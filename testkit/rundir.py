"""One orchestrator run's own directories, as tests and the benchmark lay them out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from testkit.plans import write_plan


@dataclass(frozen=True)
class RunDir:
    """Under `root`: state/ (STATE_DIR), logs/ (LOG_DIR) and plans/today.json (GAMEPLAN_PATH)."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def plan(self) -> Path:
        return self.root / "plans" / "today.json"

    def prepare(self) -> None:
        """Make state/ and logs/, and write today's plan (testkit.plans.write_plan)."""
        self.state.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        write_plan(self.plan)
