"""`python -m src.firewall`: a bad setting is one line and exit 1; SIGTERM stops it with its counts."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from src.orchestration.config import REPO_ROOT
from testkit.docker import free_port
from tests.helpers.simulator import running_simulator


def firewall(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "src.firewall", *args], cwd=REPO_ROOT, env=env or {},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("args, env, named", [
    (["--listen", "nowhere"], {}, "--listen"),
    (["--gateway", "127.0.0.1:0"], {}, "--gateway"),
    (["--bot-client-id", "-1"], {}, "--bot-client-id"),
    (["--client-id", "1", "--bot-client-id", "1"], {}, "FIREWALL_CLIENT_ID"),
    ([], {"TRADING_MODE": "demo"}, "TRADING_MODE"),
])
def test_a_bad_setting_is_one_line_and_exit_1(args, env, named):
    proc = firewall(*args, env={"PYTHONPATH": str(REPO_ROOT), **env})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and len(err.strip().splitlines()) == 1 and named in err and "Traceback" not in err


def test_sigterm_stops_it_and_it_says_what_it_did(tmp_path):
    port = free_port()
    with running_simulator() as sim:
        proc = firewall("--listen", f"127.0.0.1:{port}", "--gateway", f"127.0.0.1:{sim.port}",
                        "--state-dir", str(tmp_path), env={"PYTHONPATH": str(REPO_ROOT)})
        deadline = time.monotonic() + 20
        while sim.client_ids == [] or 998 not in sim.client_ids:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Firewall listening" in out and "Firewall stopped: 0 orders allowed, 0 refused" in out
