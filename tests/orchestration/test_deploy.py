"""Generated deployment files: a systemd unit that systemd accepts, a well-formed Task Scheduler task."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from src.orchestration import deploy, startup
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
    assert service["Type"] == "notify" and service["NotifyAccess"] == "all"
    assert service["ExecStart"] == f"{REPO_ROOT}/docker/gateway/scripts/production-startup.sh --supervise"
    assert service["WorkingDirectory"] == str(REPO_ROOT) and service["EnvironmentFile"] == f"-{REPO_ROOT}/.env"
    assert service["Restart"] == "on-failure" and service["RestartPreventExitStatus"] == "77 78"
    assert service["User"] == "trader"
    assert int(service["TimeoutStartSec"]) >= 60 + 2 * 120 + 180 + 30
    assert unit["Unit"]["StartLimitIntervalSec"] and unit["Unit"]["StartLimitBurst"]


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


@pytest.mark.parametrize("flag", ["--print-systemd-unit", "--print-task-xml"])
def test_cli_prints_the_files(flag, capsys):
    assert startup.main([flag], environ={}) == 0
    out = capsys.readouterr().out
    assert "production-startup.sh --supervise" in out


def test_supervise_config_error_exits_with_the_no_retry_code(capsys):
    assert startup.main(["--supervise"], environ={"GATEWAY_PORT": "abc"}) == 78
    assert startup.main([], environ={"GATEWAY_PORT": "abc"}) == 1
