"""Configuration: defaults, validation as one operator line, `.env` read as data."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest

from src.orchestration import startup
from src.core import settings
from src.orchestration.config import (
    API_PORTS,
    REPO_ROOT,
    ConfigError,
    OrchestrationConfig,
    read_dotenv,
)
from src.core.resetwindows import DEFAULT_WINDOWS, EVERY_DAY, ResetWindow, parse_windows
from src.core.schedule import WeeklyTime, parse_weekly_time
from src.core.settings import SETTINGS
from src.core.redaction import redact
from testkit.repo_env import hide_repo_dotenv

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
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    cfg = load({
        "TRADING_MODE": "LIVE", "EXPECTED_ACCOUNTS": "U1234567, f7654321", "GATEWAY_LOGIN_BUDGET": "5",
        "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": "4001", "DOCKER_COMPOSE_DIR": str(tmp_path),
        "GATEWAY_SERVICE": "gw", "GATEWAY_CONTAINER": "gw-1", "GATEWAY_HEALTH_TIMEOUT": "30",
        "GATEWAY_HEALTH_RETRY_INTERVAL": "5", "HEALTH_CHECK_TIMEOUT": "2.5", "GATEWAY_HEALTH_CLIENT_ID": "77",
        "GAMEPLAN_PATH": "plans/today.json", "EMERGENCY_GAMEPLAN_PATH": "/tmp/c.json",
        "BOT_COMMAND": "/usr/bin/python3 -m src.main", "BOT_CLIENT_ID": "5", "BOT_READY_TIMEOUT": "12",
        "BOT_LOG_LEVEL": "debug", "STATE_DIR": "/var/lib/zt", "LOG_DIR": "/var/log/zt",
        "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/123/tok-en_1",
        "TRADING_CALENDAR": "always", "DAILY_CYCLE_TIME": "08:30:15", "WEEKLY_LOGIN_TIME": "Sunday 17:00",
        "AUTO_RESTART_TIME": "23:55", "GATEWAY_DOWN_ALERT_AFTER": "0",
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
    assert cfg.trading_mode == "live" and cfg.expected_accounts == ("U1234567", "F7654321")
    assert cfg.gateway_login_budget == 5
    assert (cfg.trading_calendar, cfg.daily_cycle_time, cfg.weekly_login) == \
        ("ALWAYS", time(8, 30, 15), WeeklyTime(6, time(17)))
    assert (cfg.auto_restart_time, cfg.gateway_down_alert_after) == (time(23, 55), 0)


def test_the_schedule_settings_default_to_the_nyse_at_eight_and_ibcs_restart_at_11_59_pm():
    cfg = load({})
    assert (cfg.trading_calendar, cfg.daily_cycle_time, cfg.weekly_login) == ("XNYS", time(8, 0), None)
    assert (cfg.gateway_down_alert_after, cfg.auto_restart_time) == (300, time(23, 59))
    assert cfg.ibkr_reset_windows == DEFAULT_WINDOWS  # the setting alone
    assert cfg.reset_windows == (*DEFAULT_WINDOWS, ResetWindow(EVERY_DAY, time(23, 57), time(0, 9), 1))
    assert cfg.child_env["AUTO_RESTART_TIME"] == "11:59 PM"


@pytest.mark.parametrize(("written", "for_ibc", "window"), [
    ("23:55", "11:55 PM", "daily 23:53-00:05"),
    ("6:00 am", "06:00 AM", "daily 05:58-06:10"),
    ("11:59 PM", "11:59 PM", "daily 23:57-00:09"),
])
def test_auto_restart_time_reaches_compose_in_ibcs_form_and_adds_a_reset_window(written, for_ibc, window):
    """IBC reads AutoRestartTime only as `hh:mm AM`/`hh:mm PM`: Compose gets that form, whatever was written."""
    cfg = load({"AUTO_RESTART_TIME": written, "IBKR_RESET_WINDOWS": "none"})
    assert cfg.child_env["AUTO_RESTART_TIME"] == for_ibc and cfg.bot_env["AUTO_RESTART_TIME"] == for_ibc
    assert cfg.ibkr_reset_windows == () and [w.describe() for w in cfg.reset_windows] == [window]


def test_a_configuration_built_by_hand_without_an_auto_restart_has_only_ibkrs_windows():
    cfg = dataclasses.replace(OrchestrationConfig(), auto_restart_time=None)
    assert cfg.reset_windows == cfg.ibkr_reset_windows == DEFAULT_WINDOWS


@pytest.mark.parametrize("weekly", ["sun 17:00", "mon 07:30", "fri 22:44", "sun 02:00", "sat 12:00"])
def test_a_weekly_login_outside_the_reset_windows_is_accepted(weekly):
    env = {"WEEKLY_LOGIN_TIME": weekly}
    if weekly.startswith("sat"):
        env["IBKR_RESET_WINDOWS"] = "daily 23:45-00:45"  # no weekend window
    assert load(env).weekly_login == parse_weekly_time(weekly)


def test_login_hours_are_any_hour_unless_set_and_read_in_the_reset_windows_grammar():
    assert load({}).gateway_login_hours is None
    hours = load({"GATEWAY_LOGIN_HOURS": "Mon-Fri 06:00-21:00"}).gateway_login_hours
    assert hours == parse_windows("mon-fri 06:00-21:00")


def test_new_settings_default_to_paper_with_a_login_budget_of_three():
    cfg = load({})
    assert (cfg.trading_mode, cfg.expected_accounts, cfg.gateway_login_budget) == ("paper", (), 3)


@pytest.mark.parametrize(("env", "port"), [
    ({}, 4002),
    ({"TRADING_MODE": "paper"}, 4002),
    ({"TRADING_MODE": "Live"}, 4001),
    ({"TRADING_MODE": "live", "GATEWAY_PORT": "14001"}, 14001),  # an explicit host port wins
    ({"TRADING_MODE": "paper", "GATEWAY_PORT": "4001"}, 4001),
])
def test_the_ports_follow_the_trading_mode_and_reach_compose(env, port, tmp_path):
    """Compose publishes the firewall on GATEWAY_PORT, and the firewall gets what it judges by: the mode
    (its Gateway's port), state/, the bot's client id, the accounts and the owner of state/."""
    mode = env.get("TRADING_MODE", "paper").lower()
    accounts = "DU1,DU2" if mode == "paper" else "U1,U2"
    cfg = load({**env, "STATE_DIR": str(tmp_path), "BOT_CLIENT_ID": "7", "EXPECTED_ACCOUNTS": accounts})
    assert cfg.gateway_port == port
    assert {k: cfg.child_env[k] for k in ("TRADING_MODE", "GATEWAY_PORT", "STATE_DIR", "BOT_CLIENT_ID",
                                          "EXPECTED_ACCOUNTS", "FIREWALL_USER")} == \
        {"TRADING_MODE": mode, "GATEWAY_PORT": str(port), "STATE_DIR": str(tmp_path), "BOT_CLIENT_ID": "7",
         "EXPECTED_ACCOUNTS": accounts, "FIREWALL_USER": f"{os.getuid()}:{os.getgid()}"}
    assert API_PORTS[mode] == (4002 if mode == "paper" else 4001)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "localhost.", "ibkr_gateway",
                                  "host.docker.internal", "gw-1.example.com"])
def test_host_names_and_addresses_are_accepted(host):
    assert load({"GATEWAY_HOST": host}).gateway_host == host


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
    ({"TRADING_MODE": "demo"}, "TRADING_MODE='demo' is invalid: expected paper or live"),
    ({"GATEWAY_LOGIN_BUDGET": "21"}, "GATEWAY_LOGIN_BUDGET='21' is invalid: expected an integer from 0 to 20"),
    ({"GATEWAY_LOGIN_BUDGET": "-1"}, "GATEWAY_LOGIN_BUDGET='-1' is invalid: expected an integer from 0 to 20"),
    ({"GATEWAY_LOGIN_BUDGET": "two"}, "GATEWAY_LOGIN_BUDGET='two' is invalid"),
    ({"DISCORD_MENTION": "@operator"}, "DISCORD_MENTION='@operator' is invalid: expected @here, @everyone, "
     "<@USERID> or <@&ROLEID> with a numeric id, or unset"),
    ({"DISCORD_MENTION": "<@abc>"}, "DISCORD_MENTION='<@abc>' is invalid"),
    ({"DISCORD_MENTION": "<@&12> @here"}, "DISCORD_MENTION='<@&12> @here' is invalid"),
    ({"DISCORD_MENTION": "<#123>"}, "DISCORD_MENTION='<#123>' is invalid"),
    ({"GATEWAY_HOST": "a..b"}, "GATEWAY_HOST='a..b' is invalid: expected a host name or IP address"),
    ({"GATEWAY_HOST": "-gw"}, "GATEWAY_HOST='-gw' is invalid"),
    ({"GATEWAY_HOST": "999.1.1.1"}, "GATEWAY_HOST='999.1.1.1' is invalid"),
    ({"GATEWAY_HOST": "[::1]"}, "GATEWAY_HOST='[::1]' is invalid"),
    ({"GATEWAY_HOST": "a" * 64 + ".com"}, "GATEWAY_HOST="),
    ({"EXPECTED_ACCOUNTS": "DU123;DU456"}, "EXPECTED_ACCOUNTS='DU123;DU456' is invalid: expected comma-separated"),
    ({"EXPECTED_ACCOUNTS": "DU123,,DU456"}, "EXPECTED_ACCOUNTS='DU123,,DU456' is invalid"),
    ({"EXPECTED_ACCOUNTS": "U1234567"},
     "EXPECTED_ACCOUNTS='U1234567' is invalid: U1234567 is not a paper account (TRADING_MODE=paper; "
     "paper accounts start with D)"),
    ({"TRADING_MODE": "live", "EXPECTED_ACCOUNTS": "U1234567,DU7654321"},
     "EXPECTED_ACCOUNTS='U1234567,DU7654321' is invalid: DU7654321 is not a live account (TRADING_MODE=live; "
     "live accounts do not start with D)"),
    ({"GAMEPLAN_PATH": "state/emergency_gameplan.json"},
     "GAMEPLAN_PATH='state/emergency_gameplan.json' is invalid: it is EMERGENCY_GAMEPLAN_PATH"),
    ({"GAMEPLAN_PATH": f"{REPO_ROOT}/logs/../state/plan.json", "EMERGENCY_GAMEPLAN_PATH": "state/plan.json"},
     "GAMEPLAN_PATH="),
    ({"DOCKER_COMPOSE_DIR": "/nonexistent/compose"},
     "DOCKER_COMPOSE_DIR='/nonexistent/compose' is invalid: /nonexistent/compose is not a directory"),
    ({"DOCKER_COMPOSE_DIR": "docs"}, f"DOCKER_COMPOSE_DIR='docs' is invalid: {REPO_ROOT}/docs holds no Compose file"),
    ({"TRADING_CALENDAR": "NYSE"}, "TRADING_CALENDAR='NYSE' is invalid: expected XNYS or ALWAYS"),
    ({"DAILY_CYCLE_TIME": "8am"}, "DAILY_CYCLE_TIME='8am' is invalid: expected HH:MM or HH:MM:SS"),
    ({"GATEWAY_LOGIN_HOURS": "none"},
     "GATEWAY_LOGIN_HOURS='none' is invalid: expected New York windows like 'daily 06:30-22:00' "
     "(IBKR_RESET_WINDOWS' grammar, not none), or unset"),
    ({"GATEWAY_LOGIN_HOURS": "06:30-22:00"}, "GATEWAY_LOGIN_HOURS='06:30-22:00' is invalid: expected New York windows"),
    ({"DAILY_CYCLE_TIME": "24:00"}, "DAILY_CYCLE_TIME='24:00' is invalid: expected HH:MM or HH:MM:SS"),
    ({"WEEKLY_LOGIN_TIME": "sunday"},
     "WEEKLY_LOGIN_TIME='sunday' is invalid: expected DAY HH:MM or DAY HH:MM:SS, New York time"),
    ({"WEEKLY_LOGIN_TIME": "someday 10:00"}, "WEEKLY_LOGIN_TIME='someday 10:00' is invalid: expected DAY HH:MM"),
    ({"WEEKLY_LOGIN_TIME": "sun 25:00"}, "WEEKLY_LOGIN_TIME='sun 25:00' is invalid"),
    ({"WEEKLY_LOGIN_TIME": "sat 12:00"},
     "WEEKLY_LOGIN_TIME='sat 12:00' is invalid: it falls in the reset window 'fri 22:45-sun 02:00'"),
    ({"WEEKLY_LOGIN_TIME": "Tue 00:30"},
     "WEEKLY_LOGIN_TIME='Tue 00:30' is invalid: it falls in the reset window 'daily 23:45-00:45'"),
    ({"WEEKLY_LOGIN_TIME": "mon 06:05", "AUTO_RESTART_TIME": "06:00 AM"},
     "WEEKLY_LOGIN_TIME='mon 06:05' is invalid: it falls in the reset window 'daily 05:58-06:10'"),
    ({"GATEWAY_DOWN_ALERT_AFTER": "-1"},
     "GATEWAY_DOWN_ALERT_AFTER='-1' is invalid: expected seconds, a number >= 0 and <= 86400"),
    ({"GATEWAY_DOWN_ALERT_AFTER": "nan"}, "GATEWAY_DOWN_ALERT_AFTER='nan' is invalid"),
    ({"AUTO_RESTART_TIME": "13:00 PM"}, "AUTO_RESTART_TIME='13:00 PM' is invalid: expected hh:mm AM or hh:mm PM"),
    ({"AUTO_RESTART_TIME": "11:59 XM"}, "AUTO_RESTART_TIME='11:59 XM' is invalid: expected hh:mm AM or hh:mm PM"),
    ({"AUTO_RESTART_TIME": "24:00"}, "AUTO_RESTART_TIME='24:00' is invalid"),
    ({"COMPOSE_FILE": "docker-compose.yml:missing.yml"},
     f"COMPOSE_FILE='docker-compose.yml:missing.yml' is invalid: {REPO_ROOT}/docker/gateway/missing.yml is not a file"),
])
def test_bad_values_name_the_variable_the_value_and_what_is_accepted(env, expected):
    with pytest.raises(ConfigError) as error:
        load(env)
    assert str(error.value).startswith(expected)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("mention", ["@here", "@everyone", "<@123456789012345678>", "<@&42>"])
def test_a_mention_is_accepted_as_written(mention):
    assert load({"DISCORD_MENTION": f" {mention} "}).discord_mention == mention
    assert load({}).discord_mention is None


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


def test_a_malformed_line_after_blank_lines_is_reported_with_its_own_number(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("GATEWAY_PORT=4001\n\n\n  not a setting\nBOT_CLIENT_ID\n")
    with pytest.raises(ConfigError, match=r"\.env line 4: expected KEY=VALUE$"):
        read_dotenv(dotenv)
    dotenv.write_text("GATEWAY_PORT=4001\nBOT_CLIENT_ID\n")  # a name without '=' sets nothing: say so
    with pytest.raises(ConfigError, match=r"\.env line 2: expected KEY=VALUE$"):
        read_dotenv(dotenv)


def test_dotenv_reads_as_the_orchestrator_documents_it(tmp_path):
    """The issue's example: an inline comment after a path is a comment, under systemd or not;
    ${VAR} is never expanded; quotes keep a '#'."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("GAMEPLAN_PATH=/srv/plan.json # analyst\nLOG_DIR=${HOME}/logs\n"
                      "BOT_COMMAND=\"/opt/bot --tag '#1'\" # quoted\nexport STATE_DIR = /var/lib/zt\n")
    assert read_dotenv(dotenv) == {"GAMEPLAN_PATH": "/srv/plan.json", "LOG_DIR": "${HOME}/logs",
                                   "BOT_COMMAND": "/opt/bot --tag '#1'", "STATE_DIR": "/var/lib/zt"}


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _symlink(path: Path, target: str) -> Path:
    path.symlink_to(target)
    return path


@pytest.mark.timeout(20)  # reading a FIFO used to block every CLI forever
@pytest.mark.parametrize(("make", "problem"), [
    (_fifo, "not a regular file but a FIFO"),
    (lambda p: _symlink(p, "/dev/null"), "not a regular file but a character device"),
    (lambda p: p.mkdir(), "not a regular file but a directory"),
    (lambda p: p.write_bytes(b"GATEWAY_PORT=4001\n" + b"# padding\n" * 7000), "more than the 64 KiB"),
    (lambda p: p.write_bytes(b"GATEWAY_PORT=4001\nLOG_DIR=lo\0gs\n"), "line 2: holds a NUL byte"),
    (lambda p: p.write_bytes(b"\xef\xbb\xbfGATEWAY_PORT=4001\n"), "starts with a byte-order mark (BOM)"),
    (lambda p: p.write_bytes(b"\xff\xfeG\0"), "starts with a byte-order mark (BOM)"),
    (lambda p: p.write_bytes(b"GATEWAY_PORT=4001\nLOG_DIR=caf\xe9\n"), "line 2: not UTF-8 text"),
])
def test_a_dotenv_that_cannot_be_read_safely_is_one_line_naming_it(tmp_path, make, problem):
    dotenv = tmp_path / ".env"
    make(dotenv)
    with pytest.raises(ConfigError) as error:
        load({}, dotenv)
    message = str(error.value)
    assert message.startswith(str(dotenv)) and problem in message and "\n" not in message


def test_a_dotenv_of_exactly_64_kib_is_read(tmp_path):
    dotenv = tmp_path / ".env"
    body = b"GATEWAY_PORT=4001\n"
    dotenv.write_bytes(body + b"#" * (64 * 1024 - len(body) - 1) + b"\n")
    assert load({}, dotenv).gateway_port == 4001


def test_the_password_file_joins_the_secrets_and_is_redacted(tmp_path):
    secret = tmp_path / "tws_password"
    secret.write_text("pw-from-the-file-42\n")
    cfg = load({"TWS_PASSWORD_SECRET_FILE": str(secret)})
    assert "pw-from-the-file-42" in cfg.secrets
    assert redact("login with pw-from-the-file-42 failed", cfg.secrets) == "login with *** failed"
    assert "pw-from-the-file-42" not in cfg.bot_env.values()


def test_the_password_file_is_found_where_compose_finds_it(tmp_path):
    """Unset: $HOME/.config/ibkr-zero-touch/tws_password; relative: from DOCKER_COMPOSE_DIR."""
    default = tmp_path / ".config" / "ibkr-zero-touch" / "tws_password"
    default.parent.mkdir(parents=True)
    default.write_text("default-location-pw")
    assert "default-location-pw" in load({"HOME": str(tmp_path)}).secrets
    compose_dir = tmp_path / "compose"
    compose_dir.mkdir()
    (compose_dir / "docker-compose.yml").write_text("services: {}\n")
    (compose_dir / "pw.txt").write_text("relative-pw-77")
    cfg = load({"DOCKER_COMPOSE_DIR": str(compose_dir), "TWS_PASSWORD_SECRET_FILE": "pw.txt"})
    assert "relative-pw-77" in cfg.secrets


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["missing", "fifo", "huge"])
def test_a_password_file_that_is_absent_or_odd_is_fine_and_never_blocks(tmp_path, kind):
    secret = tmp_path / "tws_password"
    if kind == "fifo":
        os.mkfifo(secret)
    elif kind == "huge":
        secret.write_bytes(b"x" * (65 * 1024))
    cfg = load({"TWS_PASSWORD_SECRET_FILE": str(secret), "TWS_PASSWORD": "hunter22"})
    assert cfg.secrets == ("hunter22",)


def test_secrets_lists_the_webhook_token_and_ibkr_credentials():
    cfg = load({"DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/123/tok-en_1",
                "TWS_PASSWORD": "hunter22", "TWS_USERID": "trader1"})
    assert set(cfg.secrets) == {"https://discord.com/api/webhooks/123/tok-en_1", "tok-en_1", "hunter22", "trader1"}


@pytest.mark.parametrize("env", [{"GATEWAY_PORT": "abc"}, {"BOT_LOG_LEVEL": "LOUD"}, {"TRADING_CALENDAR": "NYSE"}])
def test_cli_bad_variable_exits_1_with_one_line_and_no_traceback(env, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "src.orchestration.startup"], cwd=tmp_path, capture_output=True, text=True,
        env=hide_repo_dotenv({"PATH": "/usr/bin:/bin", "STATE_DIR": str(tmp_path / "s"), "LOG_DIR": str(tmp_path / "l"),
                              "PYTHONPATH": str(REPO_ROOT), **env}), timeout=60,
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
    for setting in SETTINGS:
        assert f"{setting.name}=" in documented, f"{setting.name} missing from .env.example"
    active = read_dotenv(REPO_ROOT / ".env.example")
    as_documented = dataclasses.replace(load(active), child_env={})
    assert as_documented == dataclasses.replace(load({}), child_env={})


def test_env_example_and_the_configuration_table_are_what_the_declarations_produce():
    """Both are generated from src/core/settings.py: after changing a declaration, run
    `python -m src.orchestration.config --write-docs`."""
    assert (REPO_ROOT / ".env.example").read_text(encoding="utf-8") == settings.render_env_example(), \
        ".env.example is stale: run python -m src.orchestration.config --write-docs"
    readme = settings.CONFIGURATION_DOC.read_text(encoding="utf-8")
    assert readme == settings.render_table_doc(readme), \
        "docs/CONFIGURATION.md's settings table is stale: run python -m src.orchestration.config --write-docs"
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in readme


def test_check_docs_names_a_stale_file_and_write_docs_repairs_it(tmp_path):
    env_example, readme = tmp_path / ".env.example", tmp_path / "README.md"
    env_example.write_text("# old\n")
    readme.write_text(f"intro\n\n{settings.TABLE_START}\n| old |\n{settings.TABLE_END}\n\nrest\n")
    assert settings.stale_docs(env_example, readme) == [env_example, readme]
    assert settings.write_docs(env_example, readme) == [env_example, readme]
    assert settings.stale_docs(env_example, readme) == []
    text = readme.read_text()
    assert text.startswith("intro\n\n") and text.endswith(f"{settings.TABLE_END}\n\nrest\n")
    assert "| old |" not in text and "| `TRADING_MODE` | `paper` |" in text
    done = subprocess.run([sys.executable, "-m", "src.orchestration.config", "--check-docs"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "")


def test_the_declarations_are_the_configurations_fields_and_defaults():
    """One declaration per attribute of OrchestrationConfig (Compose's own variables aside), and the
    dataclass's defaults are what from_env makes of an empty environment."""
    fields = [f.name for f in dataclasses.fields(OrchestrationConfig) if f.name != "child_env"]
    assert sorted(fields) == sorted(s.attr for s in settings.CONFIG_SETTINGS)
    assert dataclasses.replace(OrchestrationConfig(), child_env={}) == dataclasses.replace(load({}), child_env={})
    assert OrchestrationConfig().ibkr_reset_windows == DEFAULT_WINDOWS
    assert "; ".join(w.describe() for w in DEFAULT_WINDOWS) == settings.DEFAULT_RESET_WINDOWS
    for s in SETTINGS:
        assert (s.passthrough or s.expected) and s.meaning and s.section, s.name
        assert s.default is not None or s.example is not None, f"{s.name}: .env.example cannot show it"


@pytest.mark.parametrize("setting", [s for s in SETTINGS if not s.passthrough and s.kind is not Path],
                         ids=lambda s: s.name)
def test_every_error_line_says_what_the_declaration_accepts(setting):
    """Paths aside (any text is a path), a bad value is one line ending in the declared `accepted`."""
    bad = "'unbalanced" if setting.name == "BOT_COMMAND" else "\x01 not a value \x01"
    with pytest.raises(ConfigError) as error:
        load({setting.name: bad})
    message = str(error.value)
    assert message.startswith(setting.name) and "\n" not in message
    assert message.endswith(f"expected {setting.expected}")
    assert (bad not in message) if setting.secret else message.startswith(f"{setting.name}={bad!r} is invalid")


def test_the_defaults_written_in_compose_and_shell_are_the_declared_ones():
    """Compose and the production wrapper cannot import the declarations: where they repeat a default
    (for a hand run of `docker compose`, or a wrapper that could not ask the orchestrator), it must
    be the declared one."""
    compose = (REPO_ROOT / "docker" / "gateway" / "docker-compose.yml").read_text()
    assert f"127.0.0.1:${{GATEWAY_PORT:-{API_PORTS['paper']}}}:" in compose
    assert f"${{TWS_PASSWORD_SECRET_FILE:-${{HOME}}/{settings.DEFAULT_PASSWORD_FILE}}}" in compose
    assert f"AUTO_RESTART_TIME: ${{AUTO_RESTART_TIME:-{settings.default_str('AUTO_RESTART_TIME')}}}" in compose
    # AUTO_RESTART_TIME is read as New York time: the container's clock must be New York's by default
    assert "TIME_ZONE: ${TIME_ZONE:-America/New_York}" in compose and "TZ: ${TIME_ZONE:-America/New_York}" in compose
    wrapper = (REPO_ROOT / "docker" / "gateway" / "scripts" / "production-startup.sh").read_text()
    assert f"dir=${{STATE_DIR:-{settings.default_str('STATE_DIR')}}}" in wrapper  # where a refusal is journalled


@pytest.mark.parametrize("value", ["4002.0", "+4002", "4_002", "1e3", "٤٠٠٢", " 4002x"])
def test_whole_numbers_are_plain_decimal_digits(value):
    """int() accepts all of these; a port or a login budget written so is a typo to report, not to guess."""
    with pytest.raises(ConfigError, match="GATEWAY_PORT="):
        load({"GATEWAY_PORT": value})
    with pytest.raises(ConfigError, match="GATEWAY_LOGIN_BUDGET="):
        load({"GATEWAY_LOGIN_BUDGET": "3.0"})


def test_a_secret_pasted_into_another_setting_is_never_echoed(tmp_path):
    password_file = tmp_path / "tws_password"
    password_file.write_text("filed-Pa55word\n")
    webhook = "https://discord.com/api/webhooks/123/secret-token-value"
    for env, secret in [({"TWS_PASSWORD": "hunter2-Pa55"}, "hunter2-Pa55"),
                        ({"TWS_PASSWORD_SECRET_FILE": str(password_file)}, "filed-Pa55word"),
                        ({"DISCORD_WEBHOOK_URL": webhook}, webhook)]:
        with pytest.raises(ConfigError) as error:
            load({**env, "GATEWAY_HOST": secret + " x"})  # pasted into the wrong line
        assert secret not in str(error.value) and "withheld" in str(error.value)
        assert str(error.value).startswith("GATEWAY_HOST is invalid")


def test_state_dir_is_a_directory_of_its_own(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for value, why in [("/", "not /"), ("/tmp/../", "not /"), (str(a_file), "not a file")]:
        with pytest.raises(ConfigError, match=f"STATE_DIR=.*{why}"):
            load({"STATE_DIR": value})
    assert load({"STATE_DIR": str(tmp_path / "new")}).state_dir == tmp_path / "new"


def test_ibcs_cold_restart_is_refused_the_weekly_login_is_one_setting():
    """IBC's Sunday ColdRestartTime (the image's TWS_COLD_RESTART) would be a second weekly login, unknown to
    the login budget, the login hours and the heads-up: refused with one line naming WEEKLY_LOGIN_TIME."""
    with pytest.raises(ConfigError, match="TWS_COLD_RESTART is set.*WEEKLY_LOGIN_TIME"):
        load({"TWS_COLD_RESTART": "17:00"})
    assert load({"TWS_COLD_RESTART": " "}).weekly_login is None  # empty: nothing asked for
    compose = (Path(settings.REPO_ROOT) / "docker/gateway/docker-compose.yml").read_text()
    assert '      TWS_COLD_RESTART: ""\n' in compose  # and the container never gets one from the environment


def test_the_gateway_image_is_pinned_by_digest_in_compose_and_in_the_setting():
    """What runs is exactly what was tried on paper: the production Compose file's default and any
    GATEWAY_IMAGE name an image by digest; a tag alone is refused with one line naming the setting."""
    import re

    compose = (Path(settings.REPO_ROOT) / "docker/gateway/docker-compose.yml").read_text()
    [default] = re.findall(r"^    image: \$\{GATEWAY_IMAGE:-(.+)\}$", compose, re.MULTILINE)
    assert re.fullmatch(settings.IMAGE_PIN_PATTERN, default), default
    pinned = "ghcr.io/gnzsnz/ib-gateway:10.46.1a@sha256:" + "0f" * 32
    assert load({"GATEWAY_IMAGE": pinned}).gateway_image == pinned
    assert load({}).gateway_image is None  # the Compose file's pin
    for tag_only in ("ghcr.io/gnzsnz/ib-gateway:stable", "ghcr.io/gnzsnz/ib-gateway@sha256:1234"):
        with pytest.raises(ConfigError, match="GATEWAY_IMAGE=.*pinned by digest"):
            load({"GATEWAY_IMAGE": tag_only})
