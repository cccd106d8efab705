"""`python -m src.orchestration.status` (and `startup --status`): what an operator sees, and exit 0 only
when everything is really up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from src.orchestration import status
from src.orchestration.config import REPO_ROOT, OrchestrationConfig
from src.orchestration.health import GatewayHealthChecker
from src.orchestration.journal import RunJournal
from tests.helpers.fakes import RUNNING, FakeDocker
from tests.helpers.simulator import running_simulator
from tests.integration.docker_env import free_port


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


# --- python -m src.orchestration.status: a CLI like the others ----------------------------------


def cli_env(tmp_path, port: int, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port),
            "GATEWAY_CONTAINER": f"zt-status-test-{os.getpid()}", "STATE_DIR": str(tmp_path / "state"),
            "LOG_DIR": str(tmp_path / "logs"), **extra}


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "src.orchestration.status", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_main_reads_its_own_configuration_and_reports_json(tmp_path, capsys):
    with running_simulator() as sim:
        env = cli_env(tmp_path, sim.port)
        RunJournal(tmp_path / "state").finish("refused", 1, "refusing .env: mode 666")
        assert status.main(["--json"], env) == 1  # no container, no bot
    report = json.loads(capsys.readouterr().out)
    assert report["gateway"]["api_ok"] is True and report["bot"]["pid"] is None
    assert report["last_run"]["outcome"] == "refused" and report["last_run"]["reason"] == "refusing .env: mode 666"


def test_the_table_through_python_dash_m(tmp_path):
    done = run_cli(env=cli_env(tmp_path, free_port()))
    assert done.returncode == 1, done.stderr
    assert done.stdout.rstrip().endswith("=> NOT UP") and "no run recorded" in done.stdout


@pytest.mark.parametrize(("args", "extra", "complaint"), [
    (["--bogus"], {}, "python -m src.orchestration.status: error: unrecognized arguments: --bogus (see --help)"),
    ([], {"GATEWAY_PORT": "0"}, "status: configuration error: GATEWAY_PORT='0' is invalid"),
])
def test_usage_and_configuration_errors_are_one_line_and_exit_1(tmp_path, args, extra, complaint):
    done = run_cli(*args, env={**cli_env(tmp_path, 1), **extra})
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(complaint), done.stderr
