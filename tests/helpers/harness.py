"""The orchestrator in this process, its side effects fakes, with state/ and logs/ in tmp_path (`harness`)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from src.gameplan.generator import generate_strategy_c
from src.gameplan.loader import evaluate_gameplan
from src.gameplan.schema import Gameplan
from src.notifications.dispatch import AlertQueue
from src.orchestration.machine.bot import BotStart
from src.orchestration.config import OrchestrationConfig
from src.core.journal import RunJournal, read_runs
from src.orchestration.startup import Services, StartupOrchestrator
from src.core.statefiles import EMERGENCY_PLAN_FILE
from testkit.plans import write_plan
from tests.helpers.fakes import RUNNING, FakeDocker, FakeHealth, RecordingNotifier


class Harness:
    """One orchestrator run's world: fakes in, observable results out."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.docker = FakeDocker(state=RUNNING)
        self.health = FakeHealth()
        self.notifier = RecordingNotifier()
        self.bot_calls: list[dict] = []
        self.bot_result: BotStart | None = None  # None: an honest bot, ready on the plan it was given
        self.bot_process = None  # the honest bot's process, when a test gives it a real one
        self.running_bot_pid: int | None = None
        self.adoptable = None  # what services.adopt_bot returns: the recorded bot, Popen-like (None: none)
        self.supervise = False  # the run is `--supervise` (its exit codes, adopting a running bot)
        # The wall clock the run sees (IBKR's reset windows): a Tuesday 15:00 New York, outside every
        # default window, so a test's outcome never depends on the hour it runs at.
        self.now = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
        self.config = OrchestrationConfig(
            state_dir=tmp_path / "state", log_dir=tmp_path / "logs",
            gameplan_path=write_plan(tmp_path / "plans" / "today.json"),
            emergency_gameplan_path=tmp_path / "state" / EMERGENCY_PLAN_FILE,
            gateway_health_timeout=2.0, gateway_health_retry_interval=0.05, docker_wait_timeout=0.0, child_env={},
        )

    def configure(self, **changes: object) -> None:
        self.config = dataclasses.replace(self.config, **changes)

    def _start_bot(self, command, args, **kwargs) -> BotStart:
        self.bot_calls.append({"command": command, "args": list(args), **kwargs})
        pid = self.bot_process.pid if self.bot_process is not None else 4242
        return self.bot_result or honest_bot(list(args), pid, self.bot_process)

    def orchestrator(self) -> StartupOrchestrator:
        services = Services(
            docker=self.docker, health=self.health, alerts=AlertQueue(self.notifier),  # type: ignore[arg-type]
            evaluate_gameplan=evaluate_gameplan, generate_strategy_c=generate_strategy_c,
            start_bot=self._start_bot, running_bot=lambda state_dir: self.running_bot_pid,
            adopt_bot=lambda state_dir: self.adoptable, now=lambda: self.now,
        )
        return StartupOrchestrator(self.config, services, RunJournal(self.config.state_dir), supervise=self.supervise)

    def run(self) -> int:
        self.last = self.orchestrator()
        return self.last.run()

    @property
    def runs(self) -> list[dict]:
        return list(read_runs(self.config.state_dir))

    @property
    def path(self) -> list[str]:
        """The states the last run went through, in order."""
        record = self.runs[-1]
        return [record["transitions"][0]["from"]] + [t["to"] for t in record["transitions"]]

    def bot_gameplan(self) -> Path:
        """The plan file whose exact bytes the bot was given (through the state/ snapshot)."""
        args = self.bot_calls[-1]["args"]
        snapshot = Path(args[args.index("--gameplan") + 1])
        deployed = Path(self.runs[-1]["gameplan"]["deployed"])
        assert snapshot.read_bytes() == deployed.read_bytes(), "the bot was not given the validated bytes"
        return deployed


def honest_bot(args: list[str], pid: int, process=None) -> BotStart:
    """A bot that read the plan it was given and reports it truly in its readiness record."""
    snapshot = Path(args[args.index("--gameplan") + 1])
    plan = Gameplan.model_validate_json(snapshot.read_bytes())  # quietly: the bot's own log is not under test
    record = {"pid": pid, "gameplan_sha256": args[args.index("--gameplan-sha256") + 1],
              "strategy": plan.strategy, "trading_authorized": plan.trading_authorized}
    return BotStart(True, pid, "ready", record, process)
