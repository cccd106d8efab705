"""The developer's own `.env` (in the repository root, read by the orchestrator) never steers a test:
a CLI under test sees the defaults and what the test set, and so does the configuration in this process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from src.orchestration import config
from src.orchestration.config import REPO_ROOT, OrchestrationConfig
from testkit.repo_env import REPO_DOTENV, hide_repo_dotenv

HOSTILE = ("TRADING_MODE=live\nGATEWAY_PORT=4001\nEXPECTED_ACCOUNTS=U1234567\n"
           "DISCORD_WEBHOOK_URL=https://discord.com/api/webhooks/1/the-developers-real-token\n")


def get(name: str, dotenv: Path, env: dict[str, str]) -> str:
    """What `python -m src.orchestration.config --get NAME` says the orchestrator reads."""
    done = subprocess.run([sys.executable, "-m", "src.orchestration.config", "--get", name, "--dotenv", str(dotenv)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


def test_a_cli_under_test_does_not_see_what_the_developers_dotenv_says(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(HOSTILE)
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "GATEWAY_PORT": "4999"}
    assert get("TRADING_MODE", dotenv, base) == "TRADING_MODE=live"  # the file is read: the check means something
    hidden = hide_repo_dotenv(base, dotenv=dotenv)
    assert get("TRADING_MODE", dotenv, hidden) == "TRADING_MODE="  # unset: the default, paper
    assert get("GATEWAY_PORT", dotenv, hidden) == "GATEWAY_PORT=4999"  # what the test set still wins
    cfg = OrchestrationConfig.from_env(hidden, dotenv=dotenv)
    assert (cfg.trading_mode, cfg.gateway_port, cfg.expected_accounts, cfg.discord_webhook_url) == (
        "paper", 4999, (), None)


def test_in_this_process_the_configuration_never_opens_the_repositorys_dotenv(monkeypatch):
    """tests/conftest.py points the default .env elsewhere, so main(environ={}) and from_env({}) are the defaults."""
    opened: list[Path] = []
    real = config._read_small_file
    monkeypatch.setattr(config, "_read_small_file", lambda path: opened.append(Path(path)) or real(path))
    cfg = OrchestrationConfig.from_env({})
    assert opened, "from_env read no .env at all: this test would prove nothing"
    assert REPO_DOTENV not in opened and (cfg.trading_mode, cfg.gateway_port) == ("paper", 4002)
