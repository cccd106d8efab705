"""Configuration: defaults, validation as one operator line, `.env` read as data."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from src.orchestration import startup
from src.orchestration.config import REPO_ROOT, ConfigError, OrchestrationConfig, read_dotenv

NO_DOTENV = Path("/nonexistent/.env")


def load(env: dict[str, str], dotenv: Path = NO_DOTENV) -> OrchestrationConfig:
    return OrchestrationConfig.from_env(env, dotenv=dotenv)


def test_defaults_need_no_variables():
    cfg = load({})
    assert (cfg.gateway_host, cfg.gateway_port, cfg.gateway_container, cfg.gateway_service) == \
        ("localhost", 4002, "ibkr-gateway", "gateway")
    assert cfg.gateway_health_timeout == 120 and cfg.bot_ready_timeout == 30 and cfg.health_check_timeout == 5
    assert cfg.gameplan_path is None and cfg.discord_webhook_url is None
    assert cfg.docker_compose_dir == REPO_ROOT / "docker" / "gateway"
    assert cfg.emergency_gameplan_path == REPO_ROOT / "state" / "emergency_gameplan.json"
    assert cfg.bot_command == (sys.executable, "-m", "src.main")
    assert cfg.gateway_health_client_id != cfg.bot_client_id


def test_every_setting_is_read_from_the_environment(tmp_path):
    cfg = load({
        "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": "4001", "DOCKER_COMPOSE_DIR": str(tmp_path),
        "GATEWAY_SERVICE": "gw", "GATEWAY_CONTAINER": "gw-1", "GATEWAY_HEALTH_TIMEOUT": "30",
        "GATEWAY_HEALTH_RETRY_INTERVAL": "5", "HEALTH_CHECK_TIMEOUT": "2.5", "GATEWAY_HEALTH_CLIENT_ID": "77",
        "GAMEPLAN_PATH": "plans/today.json", "EMERGENCY_GAMEPLAN_PATH": "/tmp/c.json",
        "BOT_COMMAND": "/usr/bin/python3 -m src.main", "BOT_CLIENT_ID": "5", "BOT_READY_TIMEOUT": "12",
        "BOT_LOG_LEVEL": "debug", "STATE_DIR": "/var/lib/zt", "LOG_DIR": "/var/log/zt",
        "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/123/tok-en_1",
    })
    assert (cfg.gateway_host, cfg.gateway_port, cfg.gateway_service, cfg.gateway_container) == \
        ("127.0.0.1", 4001, "gw", "gw-1")
    assert (cfg.gateway_health_timeout, cfg.gateway_health_retry_interval, cfg.health_check_timeout) == (30, 5, 2.5)
    assert cfg.gameplan_path == REPO_ROOT / "plans" / "today.json"
    assert cfg.emergency_gameplan_path == Path("/tmp/c.json")
    assert cfg.bot_command == ("/usr/bin/python3", "-m", "src.main")
    assert (cfg.bot_client_id, cfg.gateway_health_client_id, cfg.bot_ready_timeout) == (5, 77, 12)
    assert cfg.bot_log_level == "DEBUG" and cfg.state_dir == Path("/var/lib/zt")
    assert cfg.docker_compose_dir == tmp_path


@pytest.mark.parametrize(("env", "expected"), [
    ({"GATEWAY_PORT": "abc"}, "GATEWAY_PORT='abc' is invalid: expected an integer from 1 to 65535"),
    ({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT='70000' is invalid: expected an integer from 1 to 65535"),
    ({"GATEWAY_HEALTH_TIMEOUT": "-5"}, "GATEWAY_HEALTH_TIMEOUT='-5' is invalid: expected seconds"),
    ({"GATEWAY_HEALTH_TIMEOUT": "nan"}, "GATEWAY_HEALTH_TIMEOUT='nan' is invalid"),
    ({"BOT_READY_TIMEOUT": "inf"}, "BOT_READY_TIMEOUT='inf' is invalid"),
    ({"BOT_LOG_LEVEL": "LOUD"}, "BOT_LOG_LEVEL='LOUD' is invalid: expected one of DEBUG, INFO"),
    ({"GATEWAY_CONTAINER": "ibkr gateway"}, "GATEWAY_CONTAINER='ibkr gateway' is invalid"),
    ({"BOT_CLIENT_ID": "-1"}, "BOT_CLIENT_ID='-1' is invalid"),
    ({"GATEWAY_HEALTH_CLIENT_ID": "1"}, "GATEWAY_HEALTH_CLIENT_ID=1 is invalid: it must differ from BOT_CLIENT_ID"),
    ({"BOT_COMMAND": "   '' "}, "BOT_COMMAND="),
])
def test_bad_values_name_the_variable_the_value_and_what_is_accepted(env, expected):
    with pytest.raises(ConfigError) as error:
        load(env)
    assert str(error.value).startswith(expected)
    assert "\n" not in str(error.value)


def test_a_bad_webhook_url_is_named_but_never_echoed():
    secret = "https://example.invalid/hooks/SECRET-TOKEN-123"
    with pytest.raises(ConfigError) as error:
        load({"DISCORD_WEBHOOK_URL": secret})
    assert str(error.value).startswith("DISCORD_WEBHOOK_URL is invalid")
    assert "SECRET-TOKEN-123" not in str(error.value)


def test_dotenv_is_data_and_the_environment_wins(tmp_path):
    marker = tmp_path / "pwned"
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"# comment\nGATEWAY_PORT=4001\nexport GATEWAY_HOST='127.0.0.1'\n"
                      f"BOT_COMMAND=$(touch {marker})\nLOG_DIR=`touch {marker}`\n\nBOT_CLIENT_ID=7 # the bot\n")
    cfg = load({"GATEWAY_PORT": "4003"}, dotenv)
    assert cfg.gateway_port == 4003 and cfg.gateway_host == "127.0.0.1" and cfg.bot_client_id == 7
    assert cfg.bot_command[0] == "$(touch" and not marker.exists()
    assert cfg.child_env["GATEWAY_PORT"] == "4003"


def test_a_malformed_dotenv_line_is_reported_with_its_number(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("GATEWAY_PORT=4001\nthis is not a setting\n")
    with pytest.raises(ConfigError, match=r"\.env line 2: expected KEY=VALUE"):
        read_dotenv(dotenv)


def test_secrets_lists_the_webhook_token_and_ibkr_credentials():
    cfg = load({"DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/123/tok-en_1",
                "TWS_PASSWORD": "hunter22", "TWS_USERID": "trader1"})
    assert set(cfg.secrets) == {"https://discord.com/api/webhooks/123/tok-en_1", "tok-en_1", "hunter22", "trader1"}


@pytest.mark.parametrize("env", [{"GATEWAY_PORT": "abc"}, {"BOT_LOG_LEVEL": "LOUD"}])
def test_cli_bad_variable_exits_1_with_one_line_and_no_traceback(env, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "src.orchestration.startup"], cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "STATE_DIR": str(tmp_path / "s"), "LOG_DIR": str(tmp_path / "l"),
             "PYTHONPATH": str(REPO_ROOT), **env}, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"startup: configuration error: {next(iter(env))}=")


def test_cli_help_describes_exit_codes(capsys):
    with pytest.raises(SystemExit) as exited:
        startup.main(["--help"])
    assert exited.value.code == 0
    assert "  2 bot running under Strategy C (no trading)" in capsys.readouterr().out


def test_env_example_documents_every_variable_with_its_default():
    documented = (REPO_ROOT / ".env.example").read_text()
    from src.orchestration.config import _ACCEPTED

    for name in _ACCEPTED:
        assert f"{name}=" in documented, f"{name} missing from .env.example"
    active = read_dotenv(REPO_ROOT / ".env.example")
    as_documented = dataclasses.replace(load(active), child_env={})
    assert as_documented == dataclasses.replace(load({}), child_env={})
