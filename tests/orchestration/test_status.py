"""`python -m src.orchestration.ops.status` (and `startup --status`): what an operator sees, and exit 0 only
when everything is really up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from src.core import schedule
from src.orchestration.ops import status
from src.orchestration.config import REPO_ROOT, OrchestrationConfig
from src.orchestration.health import GatewayHealthChecker
from src.core.journal import RunJournal, append_line
from src.core.resetwindows import DEFAULT_WINDOWS, parse_windows
from src.core.statefiles import FIREWALL_DECISIONS_FILE, READY_FILE, SUPERVISOR_LOG
from testkit.docker import free_port
from testkit.repo_env import hide_repo_dotenv
from tests.helpers.fakes import RUNNING, FakeDocker, playing_the_bot
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
    from src.core.atomic_file import write_atomic

    with running_simulator() as sim:
        cfg = config_for(tmp_path, sim.port)
        cfg.state_dir.mkdir(parents=True)
        with playing_the_bot(cfg.state_dir):
            write_atomic(cfg.state_dir / READY_FILE, json.dumps(
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
    from src.orchestration.gateway.logins import LoginBudget

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


SHA = "ab" * 32
NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # Tue 12:00 New York (EST)


def ready_record(**extra):
    return {"pid": os.getpid(), "strategy": "A", "trading_authorized": True, "gameplan": "/srv/plans/today.json",
            "gameplan_sha256": SHA, "plan_date": "2026-11-24", "started_at": "2026-11-24T13:00:00+00:00",
            "connection": "connected", "connection_reason": "connected and synced", **extra}


def test_the_plan_in_force_the_connection_and_the_next_reset_window(tmp_path):
    from src.core.atomic_file import write_atomic

    with running_simulator() as sim:
        cfg = config_for(tmp_path, sim.port)
        cfg.state_dir.mkdir(parents=True)
        with playing_the_bot(cfg.state_dir):
            write_atomic(cfg.state_dir / READY_FILE, json.dumps(ready_record()))
            checker = GatewayHealthChecker("127.0.0.1", sim.port, 1.0)
            report = status.collect(cfg, FakeDocker(state=RUNNING), checker, now=NOW)
            write_atomic(cfg.state_dir / READY_FILE, json.dumps(ready_record(
                connection="reconnecting", connection_reason="the API connection closed")))
            reconnecting = status.collect(cfg, FakeDocker(state=RUNNING), checker, now=NOW)
        stopped = status.collect(cfg, FakeDocker(state=RUNNING), checker, now=NOW)  # the lock is free: no bot
    assert report["plan"] == {"in_force": True, "date": "2026-11-24", "strategy": "A", "trading_authorized": True,
                              "sha256": SHA, "path": "/srv/plans/today.json"}
    assert (report["bot"]["connection"], report["bot"]["connection_reason"]) == ("connected", "connected and synced")
    assert report["reset_window"] == {"window": "daily 23:45-00:45", "active": False,
                                      "start": "2026-11-25T04:45:00+00:00", "end": "2026-11-25T05:45:00+00:00",
                                      "text": "daily 23:45-00:45: from Tue 23:45 New York (in 11 h 45 min)"}
    text = status.render(report)
    assert f"plan in force      2026-11-24, strategy A, trading authorized, sha256 {SHA} (/srv/plans/today.json)" \
        in text
    assert "OK   bot connection     connected: connected and synced" in text
    assert "next reset window  daily 23:45-00:45: from Tue 23:45 New York (in 11 h 45 min)" in text
    assert "next daily cycle   Wed 08:00 New York (in 20 h; XNYS trading days, DAILY_CYCLE_TIME 08:00:00, " \
        "with --supervise)" in text
    assert "weekly login       not planned (WEEKLY_LOGIN_TIME unset); heads-up Sun 18:00 New York" in text
    assert "WARN bot connection     reconnecting: the API connection closed" in status.render(reconnecting)
    assert stopped["plan"]["in_force"] is False
    assert "plan in force      none: the bot is not running (last recorded: 2026-11-24, strategy A" \
        in status.render(stopped)


@pytest.mark.parametrize(("now", "windows", "text", "active"), [
    (datetime(2026, 11, 25, 5, 0, tzinfo=UTC), DEFAULT_WINDOWS,
     "NOW: daily 23:45-00:45, until Wed 00:45 New York (in 45 min)", True),
    # Saturday, in the weekend window: it runs until Sunday 02:00
    (datetime(2026, 11, 28, 17, 0, tzinfo=UTC), DEFAULT_WINDOWS,
     "NOW: fri 22:45-sun 02:00, until Sun 02:00 New York (in 14 h)", True),
    (NOW, (), "none configured (IBKR_RESET_WINDOWS=none)", False),
])
def test_the_reset_window_now_or_none(now, windows, text, active):
    found = status.reset_window(now, windows)
    assert (found["text"], found["active"]) == (text, active)


@pytest.mark.parametrize(("utc_hour", "text", "is_open"), [
    (6, "daily 06:30-22:00: closed; a login waits until Wed 06:30 New York (in 5 h 30 min)", False),  # 01:00
    (15, "daily 06:30-22:00: open now", True),  # 10:00 New York
])
def test_the_login_hours_open_now_or_when_they_open(utc_hour, text, is_open):
    found = status.login_hours(datetime(2026, 12, 2, utc_hour, 0, tzinfo=UTC), parse_windows("daily 06:30-22:00"))
    assert (found["text"], found["open"]) == (text, is_open)


def test_the_last_alert_is_the_last_journalled_one(tmp_path):
    state = tmp_path / "state"
    assert status.last_alert([]) is None
    first = RunJournal(state, "run-1")
    first.update(alerts=[{"level": "error", "message": "Gateway down", "delivered": True}])
    first.finish("failed", 1, "gateway down")
    second = RunJournal(state, "run-2")
    second.update(alerts=[{"level": "info", "message": "starting", "delivered": True},
                          {"level": "critical", "message": "2FA: 3 min left", "delivered": False}])
    second.finish("failed", 1, "2fa")
    RunJournal(state, "run-3").finish("ok", 0, None)  # no alert in the last run
    with running_simulator() as sim:
        cfg = config_for(tmp_path, sim.port)
        report = status.collect(cfg, FakeDocker(state=None), GatewayHealthChecker("127.0.0.1", sim.port, 1.0),
                                now=NOW)
    alert = report["last_alert"]
    assert {k: alert[k] for k in ("level", "message", "delivered", "run_id")} == {
        "level": "critical", "message": "2FA: 3 min left", "delivered": False, "run_id": "run-2"}
    assert alert["at"].startswith("20")
    assert f"last alert         critical: 2FA: 3 min left (NOT delivered; run run-2, at {alert['at']})" \
        in status.render(report)


def test_a_later_alert_of_the_supervisor_is_the_last_alert_and_its_last_decision_is_shown(tmp_path):
    state = tmp_path / "state"
    journal = RunJournal(state, "run-1")
    journal.update(alerts=[{"level": "info", "message": "Trading system up", "delivered": True}])
    journal.finish("success", 0, None)
    append_line(state / SUPERVISOR_LOG, {"at": "2999-01-01T00:00:00+00:00", "run_id": "run-1", "event": "alert",
                                         "detail": "warning: Gateway container died: restarted once"})
    append_line(state / SUPERVISOR_LOG, {"at": "2999-01-01T00:01:00+00:00", "run_id": "run-1", "event": "back",
                                         "detail": "bot connected again after 1 min"})
    with running_simulator() as sim:
        report = status.collect(config_for(tmp_path, sim.port), FakeDocker(state=None),
                                GatewayHealthChecker("127.0.0.1", sim.port, 1.0), now=NOW)
    assert report["last_alert"] == {"level": "warning", "message": "Gateway container died: restarted once",
                                    "delivered": None, "run_id": "run-1", "at": "2999-01-01T00:00:00+00:00"}
    assert report["supervisor"] == {"at": "2999-01-01T00:01:00+00:00", "event": "back",
                                    "detail": "bot connected again after 1 min"}
    assert "supervisor         back at 2999-01-01T00:01:00+00:00: bot connected again after 1 min" \
        in status.render(report)


# --- python -m src.orchestration.ops.status: a CLI like the others ----------------------------------


def cli_env(tmp_path, port: int, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port),
            "GATEWAY_CONTAINER": f"zt-status-test-{os.getpid()}", "STATE_DIR": str(tmp_path / "state"),
            "LOG_DIR": str(tmp_path / "logs"), **extra}


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "src.orchestration.ops.status", *args], cwd=REPO_ROOT,
                          env=hide_repo_dotenv(env), capture_output=True, text=True, timeout=60, check=False)


def test_main_reads_its_own_configuration_and_reports_json(tmp_path, capsys):
    with running_simulator() as sim:
        env = cli_env(tmp_path, sim.port)
        RunJournal(tmp_path / "state").finish("refused", 1, "refusing .env: mode 666")
        assert status.main(["--json"], env) == 1  # no container, no bot
    report = json.loads(capsys.readouterr().out)
    assert report["gateway"]["api_ok"] is True and report["bot"]["pid"] is None
    assert list(report) == ["up", "gateway", "bot", "plan", "reset_window", "daily_cycle", "weekly_login",
                            "login_hours", "supervisor", "login_budget", "last_alert", "last_run", "firewall"]
    assert report["login_hours"] == {"hours": None, "open": True, "opens": None,
                                     "text": "any hour (GATEWAY_LOGIN_HOURS unset)"}
    assert report["plan"] is None and report["last_alert"] is None
    assert set(report["daily_cycle"]) == {"next", "calendar", "text"} and report["daily_cycle"]["calendar"] == "XNYS"
    assert report["supervisor"] is None and report["weekly_login"]["next"] is None
    assert set(report["reset_window"]) == {"window", "active", "start", "end", "text"}
    assert {"connection", "connection_reason"} <= set(report["bot"])
    assert report["last_run"]["outcome"] == "refused" and report["last_run"]["reason"] == "refusing .env: mode 666"


def test_the_table_through_python_dash_m(tmp_path):
    done = run_cli(env=cli_env(tmp_path, free_port()))
    assert done.returncode == 1, done.stderr
    assert done.stdout.rstrip().endswith("=> NOT UP") and "no run recorded" in done.stdout


@pytest.mark.parametrize(("args", "extra", "complaint"), [
    (["--bogus"], {}, "python -m src.orchestration.ops.status: error: unrecognized arguments: --bogus (see --help)"),
    ([], {"GATEWAY_PORT": "0"}, "status: configuration error: GATEWAY_PORT='0' is invalid"),
])
def test_usage_and_configuration_errors_are_one_line_and_exit_1(tmp_path, args, extra, complaint):
    done = run_cli(*args, env={**cli_env(tmp_path, 1), **extra})
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(complaint), done.stderr


def test_todays_firewall_decisions_are_counted_with_the_last_refusal(tmp_path):
    cfg = config_for(tmp_path, free_port())
    today = schedule.trading_date(NOW).isoformat()
    lines = [{"day": "2001-01-01", "decision": "refused", "reason": "an old one"},
             {"day": today, "decision": "allowed", "reason": ""},
             {"day": today, "decision": "refused", "reason": "TSLA is not in the plan's symbols"}]
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    (cfg.state_dir / FIREWALL_DECISIONS_FILE).write_text(
        "".join(json.dumps(line) + "\n" for line in lines) + "{torn", encoding="utf-8")
    report = status.collect(cfg, FakeDocker(state=None), GatewayHealthChecker("127.0.0.1", free_port(), 0.5), now=NOW)
    assert (report["firewall"]["allowed"], report["firewall"]["refused"]) == (1, 1)
    assert "order firewall" in status.render(report) and "TSLA is not in the plan" in status.render(report)


PIN = "sha256:" + "91165c07" * 8
OTHER = "sha256:" + "ab" * 32


def test_the_gateways_image_memory_and_a_read_only_api_are_shown(tmp_path):
    import dataclasses

    from src.orchestration.gateway.docker import ContainerState

    cfg = dataclasses.replace(config_for(tmp_path, free_port()), child_env={"READ_ONLY_API": "yes"},
                              gateway_memory_alert_mb=1000)
    running = ContainerState("running", 0, "healthy", "2026-12-01T13:00:00Z", True,
                             image=f"ghcr.io/x/ib-gateway:10.45.1j@{PIN}", image_id="sha256:0123456789abcdef0123")
    docker = FakeDocker(state=running, digests={"sha256:0123456789abcdef0123": [f"ghcr.io/x/ib-gateway@{PIN}"]})
    docker.memory = 1234.0
    report = status.collect(cfg, docker, GatewayHealthChecker("127.0.0.1", free_port(), 0.2))
    text = status.render(report)
    assert "READ-ONLY (READ_ONLY_API=yes)" in text
    assert f"ghcr.io/x/ib-gateway:10.45.1j, digest {PIN[:23]}…; memory 1234 MB" in text
    assert "memory 1234 MB (above GATEWAY_MEMORY_ALERT_MB=1000)" in text
    assert report["gateway"]["image_id"] == "sha256:0123456789abcdef0123" and report["gateway"]["digest"] == PIN


@pytest.mark.parametrize(("image", "digests", "pin", "shown"), [
    # a tag, not a digest: what runs can change under the operator at the next pull
    ("ghcr.io/x/ib-gateway:stable", [f"ghcr.io/x/ib-gateway@{OTHER}"], None,
     f"digest {OTHER[:23]}…; NOT pinned by digest: set GATEWAY_IMAGE"),
    # GATEWAY_IMAGE changed, the container not re-created yet: the old image still runs
    (f"ghcr.io/x/ib-gateway:10@{OTHER}", [f"ghcr.io/x/ib-gateway@{OTHER}"], f"ghcr.io/x/ib-gateway:11@{PIN}",
     f"GATEWAY_IMAGE pins {PIN[:23]}…: it runs once the Gateway is re-created"),
    # built here (the simulator's image): no registry digest to show
    ("ibkr-gateway-simulator:local", [], None, "no registry digest (built here: image id 0123456789ab)"),
])
def test_the_running_images_digest_is_held_to_the_pin(tmp_path, image, digests, pin, shown):
    import dataclasses

    from src.orchestration.gateway.docker import ContainerState

    cfg = dataclasses.replace(config_for(tmp_path, free_port()), gateway_image=pin)
    running = ContainerState("running", 0, "healthy", "2026-12-01T13:00:00Z", True, image=image,
                             image_id="sha256:0123456789abcdef0123")
    docker = FakeDocker(state=running, digests={"sha256:0123456789abcdef0123": digests})
    text = status.render(status.collect(cfg, docker, GatewayHealthChecker("127.0.0.1", free_port(), 0.2)))
    assert shown in text
