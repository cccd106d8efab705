"""The bot runtime for real: ib_async against the simulator, readiness, the trading gate, signals."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from src.gameplan.generator import generate_strategy_c
from src.orchestration.machine.bot import running_bot
from src.orchestration.config import REPO_ROOT
from src.core.sdnotify import NotifyListener
from src.core.statefiles import READY_FILE
from testkit.plans import write_plan
from tests.helpers.simulator import running_simulator
from testkit.stack import wait_until


def start_bot(port: int, plan: Path, state: Path, *extra: str, notify: str | None = None) -> subprocess.Popen:
    env = {"PATH": "/usr/bin:/bin", **({"NOTIFY_SOCKET": notify} if notify else {})}
    return subprocess.Popen(
        [sys.executable, "-m", "src.main", "--gateway-host", "127.0.0.1", "--gateway-port", str(port),
         "--gameplan", str(plan), "--state-dir", str(state), "--log-level", "INFO", *extra],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_ready(listener: NotifyListener, timeout: float = 15.0) -> dict[str, str]:
    message = listener.wait_for("READY", time.monotonic() + timeout)
    assert message is not None, "bot never said READY=1"
    return message


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_bot_connects_announces_ready_and_stops_cleanly_on_a_stop_signal(tmp_path, signum):
    """SIGHUP too (a closed terminal or session): it once died with 129, its readiness record left saying connected."""
    state = tmp_path / "state"
    with running_simulator() as sim, NotifyListener() as listener:
        bot = start_bot(sim.port, write_plan(tmp_path / "plan.json"), state, "--heartbeat", "0.2",
                        notify=listener.name)
        try:
            message = wait_ready(listener)
            record = json.loads((state / READY_FILE).read_text())
            assert message["MAINPID"] == str(bot.pid) == str(record["pid"])
            assert record["accounts"] == ["DU123456", "DU234567"] and record["trading_authorized"] is True
            assert running_bot(state) == bot.pid
            time.sleep(0.5)
            bot.send_signal(signum)
            out, _ = bot.communicate(timeout=10)
        finally:
            bot.kill()
    assert bot.returncode == 0, out
    assert "heartbeat: connection=connected" in out and "Bot stopped cleanly" in out
    assert "reconnecting" not in out  # its own clean disconnect is not reported as a loss
    assert not (state / READY_FILE).exists() and running_bot(state) is None


def test_a_second_bot_is_refused_naming_the_first(tmp_path):
    state = tmp_path / "state"
    plan = write_plan(tmp_path / "plan.json")
    with running_simulator() as sim, NotifyListener() as listener:
        first = start_bot(sim.port, plan, state, notify=listener.name)
        try:
            wait_ready(listener)
            second = start_bot(sim.port, plan, state)
            out, _ = second.communicate(timeout=20)
        finally:
            first.terminate()
            first.wait(10)
    assert second.returncode == 1
    assert f"bot already running (PID {first.pid})" in out and "Traceback" not in out


@pytest.mark.parametrize(("prepare", "expected"), [
    ("stale", "gameplan {plan} not usable (stale)"),
    ("missing", "gameplan {plan} not usable (missing)"),
    ("gateway_down", "not serving the API: closed_before_version"),
])
def test_prerequisites_checked_on_the_arguments_given(tmp_path, prepare, expected):
    plan = tmp_path / "plan.json"
    if prepare == "stale":
        write_plan(plan, date="2021-03-04")
    elif prepare != "missing":
        write_plan(plan)
    with running_simulator(login_delay=60 if prepare == "gateway_down" else 0) as sim:
        bot = start_bot(sim.port, plan, tmp_path / "state")
        out, _ = bot.communicate(timeout=20)
    assert bot.returncode == 1, out
    assert expected.format(plan=plan) in out and "Traceback" not in out
    assert not (tmp_path / "state" / READY_FILE).exists()


def test_strategy_c_bot_is_ready_but_can_never_place_an_order(tmp_path):
    plan = tmp_path / "emergency.json"
    generate_strategy_c(plan)
    state = tmp_path / "state"
    with running_simulator() as sim, NotifyListener() as listener:
        bot = start_bot(sim.port, plan, state, notify=listener.name)
        try:
            wait_ready(listener)
            record = json.loads((state / READY_FILE).read_text())
        finally:
            bot.terminate()
            out, _ = bot.communicate(timeout=10)
    assert record["strategy"] == "C" and record["trading_authorized"] is False
    assert "NO trading authority" in out


def test_bot_reconnects_after_the_gateway_drops(tmp_path):
    state = tmp_path / "state"
    plan = write_plan(tmp_path / "plan.json")
    with running_simulator() as sim:
        port = sim.port
        with NotifyListener() as listener:
            bot = start_bot(port, plan, state, notify=listener.name)
            wait_ready(listener)
    # the simulator is gone: the bot must notice, keep running and retry
    try:
        time.sleep(1.0)
        assert bot.poll() is None
        with running_simulator(port=port):
            wait_until(lambda: json.loads((state / READY_FILE).read_text()).get("connection") == "connected"
                       and json.loads((state / READY_FILE).read_text()).get("connection_reason")
                       == "connected and synced" and bot.poll() is None, 20, "the bot to reconnect")
            bot.send_signal(signal.SIGTERM)
            out, _ = bot.communicate(timeout=10)
    finally:
        bot.kill()
    assert "Gateway connection lost: reconnecting with backoff" in out
    assert "Gateway connection restored" in out
    assert bot.returncode == 0
    assert running_bot(state) is None


@pytest.mark.parametrize(("extra", "complaint"), [
    (["--gateway-port", "65536"], "argument --gateway-port: '65536' is not an integer from 1 to 65535"),
    (["--gateway-port", "-4002"], "argument --gateway-port: '-4002' is not an integer from 1 to 65535"),
    (["--heartbeat", "0"], "argument --heartbeat: '0' is not a number of seconds > 0 and <= 3600"),
    (["--heartbeat", "inf"], "argument --heartbeat: 'inf' is not a number of seconds > 0 and <= 3600"),
    (["--client-id", "2147483648"], "argument --client-id: '2147483648' is not an integer from 0 to 2147483647"),
    (["--gateway-host", "a..b"], "argument --gateway-host: 'a..b' is not a host name or IP address"),
    (["--client-id", "7", "--health-client-id", "7"],
     "--health-client-id 7 must differ from --client-id (a probe must never take the bot's client id)"),
])
def test_bad_arguments_are_one_line_and_exit_1_never_2(tmp_path, extra, complaint):
    """Exit 2 means "Strategy C" to every supervisor; a usage error is a plain failure, and nothing starts."""
    done = subprocess.run(
        [sys.executable, "-m", "src.main", "--gateway-host", "127.0.0.1", "--gateway-port", "4002",
         "--gameplan", str(tmp_path / "plan.json"), "--state-dir", str(tmp_path / "state"), *extra],
        cwd=REPO_ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stdout == "" and done.stderr == f"python -m src.main: error: {complaint} (see --help)\n"
    assert not (tmp_path / "state").exists()


def test_a_client_id_in_use_is_named_and_not_retried(tmp_path):
    from ib_async import IB

    with running_simulator() as sim:
        holder = IB()
        holder.connect("127.0.0.1", sim.port, clientId=1, timeout=10)  # another client holds the bot's id
        try:
            bot = start_bot(sim.port, write_plan(tmp_path / "plan.json"), tmp_path / "state")
            out, _ = bot.communicate(timeout=30)
        finally:
            holder.disconnect()
    assert bot.returncode == 1, out
    assert "client id 1 is in use" in out and "326" in out
    assert "retrying" not in out and "Traceback" not in out


def test_sigterm_during_the_start_up_probe_stops_the_bot_at_once(tmp_path):
    with running_simulator(login_delay=60, before_login="silent") as sim:  # the probe waits for an answer
        bot = start_bot(sim.port, write_plan(tmp_path / "plan.json"), tmp_path / "state")
        assert bot.stdout is not None
        first = bot.stdout.readline()  # the bot says when it starts probing
        assert "Checking the Gateway" in first, first
        signalled = time.time()
        bot.send_signal(signal.SIGTERM)
        out, _ = bot.communicate(timeout=10)
    assert bot.returncode == 0, first + out
    assert "Bot stopped before it was connected" in out and "Traceback" not in out
    # the probe's own timeout is 5 s: the signal did not wait for it. Timed by the bot's own log line, so
    # the interpreter's exit afterwards, slow on busy cores, is not counted
    stopped = next(line for line in out.splitlines() if "Bot stopped before it was connected" in line)
    stopped_in = datetime.strptime(stopped[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp() - signalled
    assert stopped_in < 3, stopped


def test_a_stop_signal_while_the_lock_is_taken_is_a_clean_stop(tmp_path, monkeypatch, caplog):
    """SIGINT landing inside PidLock.acquire (the handler raises there) once gave a traceback."""
    import src.main as bot_main

    def interrupted(self):
        raise bot_main.Stopped()

    monkeypatch.setattr(bot_main.PidLock, "acquire", interrupted)
    plan = write_plan(tmp_path / "plan.json")
    with caplog.at_level(logging.INFO):
        code = bot_main.main(["--gateway-host", "127.0.0.1", "--gateway-port", "1", "--gameplan", str(plan),
                              "--state-dir", str(tmp_path / "state")])
    assert code == 0 and "Bot stopped before it started" in caplog.text
