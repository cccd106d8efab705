"""A bad setting reaches a remote operator: one runs.jsonl line, and one critical alert while it stays the
same error, whenever DISCORD_WEBHOOK_URL itself is valid (the CLI as systemd runs it: exit 78)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from src.core.journal import read_runs
from testkit.repo_env import hide_repo_dotenv
from testkit.webhook import WebhookReceiver

REPO_ROOT = Path(__file__).resolve().parents[2]


def start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = hide_repo_dotenv({"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "STATE_DIR": str(tmp_path / "state"),
                             "LOG_DIR": str(tmp_path / "logs"), "PYTHONPATH": str(REPO_ROOT), **env})
    return subprocess.run([sys.executable, "-m", "src.orchestration.startup", "--supervise"], cwd=tmp_path,
                          env=full, capture_output=True, text=True, timeout=60)


def test_a_bad_setting_is_journalled_and_alerted_once_while_it_stays(tmp_path):
    with WebhookReceiver() as hook:
        first = start(tmp_path, DISCORD_WEBHOOK_URL=hook.url, TRADING_MODE="livee")
        again = start(tmp_path, DISCORD_WEBHOOK_URL=hook.url, TRADING_MODE="livee")
        other = start(tmp_path, DISCORD_WEBHOOK_URL=hook.url, TRADING_MODE="paper", GATEWAY_PORT="0")
        bodies = [r.json for r in hook.received if r.json]
    assert (first.returncode, again.returncode, other.returncode) == (78, 78, 78)
    assert first.stderr.count("\n") == 1 and "TRADING_MODE" in first.stderr  # one line, no traceback
    said = [b["embeds"][0]["description"] for b in bodies]
    assert len(said) == 2  # the first error once (not again on the relaunch), then the new one
    assert "TRADING_MODE" in said[0] and "GATEWAY_PORT" in said[1]
    runs = list(read_runs(tmp_path / "state"))
    assert [r["outcome"] for r in runs] == ["config_invalid"] * 3 and runs[0]["exit_code"] == 78
    assert hook.token not in json.dumps(runs)


def test_an_invalid_webhook_gets_no_alert_but_the_journal_line(tmp_path):
    with WebhookReceiver() as hook:
        done = start(tmp_path, DISCORD_WEBHOOK_URL=hook.url + "?x=1", TRADING_MODE="livee")
        assert hook.received == []
    assert done.returncode == 78
    [run] = read_runs(tmp_path / "state")
    assert "DISCORD_WEBHOOK_URL" in run["reason"] or "TRADING_MODE" in run["reason"]
