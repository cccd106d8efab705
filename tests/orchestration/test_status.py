"""`--status`: what an operator sees, and exit 0 only when everything is really up."""

from __future__ import annotations

import json
import os

from src.orchestration import status
from src.orchestration.config import OrchestrationConfig
from src.orchestration.health import GatewayHealthChecker
from src.orchestration.journal import RunJournal
from tests.helpers.fakes import RUNNING, FakeDocker
from tests.helpers.simulator import running_simulator


def config_for(tmp_path, port: int) -> OrchestrationConfig:
    return OrchestrationConfig(gateway_host="127.0.0.1", gateway_port=port, state_dir=tmp_path / "state",
                               log_dir=tmp_path / "logs", child_env={})


def test_everything_down_is_reported_and_exits_1(tmp_path):
    with running_simulator(login_delay=60) as sim:
        cfg = config_for(tmp_path, sim.port)
        report = status.collect(cfg, FakeDocker(state=None), GatewayHealthChecker("127.0.0.1", sim.port, 1.0))
    assert report["up"] is False
    text = status.render(report)
    assert "DOWN gateway container" in text and "absent" in text and "closed_before_version" in text
    assert "not running" in text and "no run recorded" in text and text.endswith("=> NOT UP")


def test_up_when_gateway_api_and_ready_bot_agree(tmp_path):
    from src.orchestration.locks import PidLock
    from src.atomic_file import write_atomic

    with running_simulator() as sim:
        cfg = config_for(tmp_path, sim.port)
        cfg.state_dir.mkdir(parents=True)
        with PidLock(cfg.state_dir / "bot.pid"):  # this process plays the bot
            write_atomic(cfg.state_dir / "bot_ready.json", json.dumps(
                {"pid": os.getpid(), "strategy": "C", "trading_authorized": False, "gameplan": "/x/plan.json",
                 "started_at": "2026-11-25T13:00:00+00:00"}))
            RunJournal(cfg.state_dir).finish("strategy_c", 2, "gameplan missing: no file")
            report = status.collect(cfg, FakeDocker(state=RUNNING),
                                    GatewayHealthChecker("127.0.0.1", sim.port, 1.0))
    assert report["up"] is True and report["bot"]["pid"] == os.getpid()
    text = status.render(report)
    assert "NO trading authority" in text and "strategy_c (exit 2)" in text and text.endswith("=> UP")
    assert json.loads(json.dumps(report))["last_run"]["reason"] == "gameplan missing: no file"


def test_the_login_budget_left_is_shown(tmp_path):
    from src.orchestration.logins import LoginBudget

    with running_simulator() as sim:
        cfg = config_for(tmp_path, sim.port)
        LoginBudget(cfg.state_dir, cfg.gateway_login_budget).spend("restart", "r1")
        report = status.collect(cfg, FakeDocker(state=RUNNING), GatewayHealthChecker("127.0.0.1", sim.port, 1.0))
        assert report["login_budget"]["left"] == cfg.gateway_login_budget - 1
        limit = cfg.gateway_login_budget
        assert f"{limit - 1} of {limit} Gateway logins left" in status.render(report)
        for _ in range(cfg.gateway_login_budget):
            LoginBudget(cfg.state_dir, cfg.gateway_login_budget).spend("restart", "r2")
        text = status.render(status.collect(cfg, FakeDocker(state=RUNNING),
                                            GatewayHealthChecker("127.0.0.1", sim.port, 1.0)))
    assert "LOW  login budget" in text and "0 of" in text and "frees up at" in text
