"""`--supervise` for real: the Gateway watched after the handoff, the daily cycle, the weekly login.

Real Docker Engine, real Compose v2, the simulator Gateway container and the real bot; what an
operator notices: alerts at the webhook, restarts (the container's StartedAt), the bot's
readiness record (trading-ready = connected, and on which plan), runs.jsonl and the
supervisor's decision record.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from src.orchestration.machine.bot import running_bot
from src.core.journal import read_runs
from src.core.resetwindows import NEW_YORK
from src.core.statefiles import LOGINS_FILE, read_ready_record
from testkit.docker import container_state, docker, project_containers
from testkit.plans import write_plan
from testkit.schedule import window_around_now
from testkit.stack import Stack, wait_until

pytestmark = pytest.mark.docker

LIVE = "U1234567"  # a live account id (paper ones start with D)
QUIET = {"TRADING_CALENDAR": "ALWAYS", "GATEWAY_DOWN_ALERT_AFTER": "300"}  # Stack.env: off IBKR's calendar


def started_at(stack: Stack) -> str:
    state = container_state(stack.container)
    assert state is not None
    return state["StartedAt"]


def supervise(stack: Stack, **env: str) -> subprocess.Popen[str]:
    proc = stack.launch("--supervise", **{**QUIET, **env})
    wait_until(lambda: proc.poll() is not None or any(d["event"] == "supervising" for d in stack.decisions()), 60,
               "the supervisor to take over")
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    return proc


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=40)
    assert proc.returncode == 0, stderr
    return stderr


def test_a_killed_gateway_is_alerted_restarted_once_and_the_bot_is_trading_ready_again(stack):
    proc = supervise(stack)
    first_start, before = started_at(stack), len(stack.hook.received)
    killed = datetime.now(UTC)
    docker("kill", stack.container)
    wait_until(lambda: any("restarted once" in a or "was started" in a for a in stack.alerts(before)), 15,
               "the alert of the restart")
    wait_until(lambda: stack.bot_connected_since(killed), 60, "the bot trading-ready again")
    assert started_at(stack) != first_start
    wait_until(lambda: any(a.startswith("Gateway back after") for a in stack.alerts(before)), 10, "the all-clear")
    stop(proc)
    said = stack.alerts(before)
    assert sum("exited (exit code 137)" in a for a in said) == 1  # one alert for the death, one all-clear
    assert [d["event"] for d in stack.decisions()].count("restart") == 1
    logins = (stack.state_dir / LOGINS_FILE).read_text().splitlines()
    assert len(logins) == 2  # the start-up's create, and the one restart


def test_a_killed_gateway_with_the_login_budget_spent_is_left_alone_with_one_critical_alert(stack):
    proc = supervise(stack, GATEWAY_LOGIN_BUDGET="1")  # the start-up's create spent it
    before = len(stack.hook.received)
    docker("kill", stack.container)
    wait_until(lambda: any("budget spent" in a for a in stack.alerts(before)), 15, "the budget alert")
    time.sleep(3)  # the behaviour under test is that nothing more happens: give it the chance
    state = container_state(stack.container)
    assert state is not None and state["Status"] == "exited"  # never started again
    assert running_bot(stack.state_dir) is not None  # the bot stays, its gate closed while disconnected
    stop(proc)
    said = stack.alerts(before)
    assert sum("budget spent" in a for a in said) == 1
    assert not any("was started" in a or "restarted" in a for a in said)


def test_an_outage_inside_a_reset_window_is_not_alerted_and_the_bot_comes_back(stack):
    stack.sim = {"login_delay": 0.5, "outage_after": 4, "outage_for": 5, "outage_kind": "closed"}
    proc = supervise(stack, IBKR_RESET_WINDOWS=window_around_now(), GATEWAY_DOWN_ALERT_AFTER="1")
    first_start, before, began = started_at(stack), len(stack.hook.received), datetime.now(UTC)
    wait_until(lambda: any(d["event"] == "in_reset_window" for d in stack.decisions()), 30, "the outage")
    wait_until(lambda: stack.bot_connected_since(began) and any(d["event"] == "back" for d in stack.decisions()),
               60, "the bot back after the outage")
    stop(proc)
    assert started_at(stack) == first_start  # not restarted
    assert not any("DOWN" in a or "down" in a.split(":")[0] for a in stack.alerts(before)[:-1])
    assert stack.alerts(before)[-1].startswith("Trading system stopped")


def test_an_api_outage_outside_any_window_is_alerted_after_the_delay(stack):
    stack.sim = {"login_delay": 0.5, "outage_after": 4, "outage_for": 120, "outage_kind": "closed"}
    proc = supervise(stack, GATEWAY_DOWN_ALERT_AFTER="3")
    before = len(stack.hook.received)
    wait_until(lambda: any("API down for" in a for a in stack.alerts(before)), 30, "the outage alert")
    down = next(d for d in stack.decisions() if d["event"] == "outage_began")
    alerted = next(d for d in stack.decisions() if d["event"] == "alert")
    assert (datetime.fromisoformat(alerted["at"]) - datetime.fromisoformat(down["at"])).total_seconds() >= 3
    stop(proc)
    assert sum("API down for" in a for a in stack.alerts(before)) == 1


def test_the_daily_cycle_restarts_the_bot_on_the_new_plan_and_leaves_the_gateway_alone(stack):
    stack.up()
    first_start = started_at(stack)
    at = datetime.now(NEW_YORK) + timedelta(seconds=15)
    proc = supervise(stack, DAILY_CYCLE_TIME=f"{at:%H:%M:%S}")
    old = read_ready_record(stack.state_dir)
    write_plan(stack.dirs.plan, position_size_multiplier=0.5)  # the analyst's plan for the new day
    wait_until(lambda: (read_ready_record(stack.state_dir) or {}).get("pid") not in (None, old["pid"]), 60,
               "the bot restarted by the daily cycle")
    new = read_ready_record(stack.state_dir)
    stop(proc)
    assert new["gameplan_sha256"] != old["gameplan_sha256"] and new["connection"] == "connected"
    assert started_at(stack) == first_start  # the Gateway was not touched: no login, no 2FA push
    cycles = [r for r in read_runs(stack.state_dir) if r.get("kind") == "daily_cycle"]
    assert len(cycles) == 1 and cycles[0]["outcome"] == "success"
    assert cycles[0]["gameplan"]["sha256"] == new["gameplan_sha256"]


def test_the_weekly_login_sends_one_push_and_never_stacks_another(stack):
    stack.sim = {"login_delay": 0.5, "login_outcome": "2fa-then-ok", "twofa_delay": 6}
    stack.up()
    first_start = started_at(stack)
    at = datetime.now(NEW_YORK) + timedelta(seconds=12)
    proc = supervise(stack, WEEKLY_LOGIN_TIME=f"{at:%a %H:%M:%S}", TWOFA_WAIT_TIMEOUT="30")
    before = len(stack.hook.received)
    wait_until(lambda: any(a.startswith("APPROVE THE IBKR LOGIN") for a in stack.alerts(before)), 40,
               "the approval alert")
    wait_until(lambda: any("back after" in a for a in stack.alerts(before)), 40, "the login done")
    stop(proc)
    said = stack.alerts(before)
    assert sum(a.startswith("APPROVE THE IBKR LOGIN") for a in said) == 1
    assert started_at(stack) != first_start
    assert [d["event"] for d in stack.decisions()].count("planned_login") == 1


def test_a_killed_live_gateway_with_2fa_is_restarted_once_with_one_push_and_the_bot_trades_again(stack):
    # a live account: every login, the start-up's and the restart's, waits for a 2FA approval
    # (given here after 8 s: longer than the watch's 5 s between looks at IBC's log)
    stack.mode, stack.sim = "live", {"login_delay": 0.5, "accounts": LIVE, "login_outcome": "2fa-then-ok",
                                     "twofa_delay": 8}
    proc = supervise(stack, TWOFA_WAIT_TIMEOUT="30")
    first_start, before = started_at(stack), len(stack.hook.received)
    killed = datetime.now(UTC)
    docker("kill", stack.container)
    wait_until(lambda: stack.bot_connected_since(killed), 60, "the bot trading-ready again")
    wait_until(lambda: any(a.startswith("Gateway back after") for a in stack.alerts(before)), 10, "the all-clear")
    record = read_ready_record(stack.state_dir) or {}
    stop(proc)
    said = stack.alerts(before)
    assert started_at(stack) != first_start and record.get("accounts") == [LIVE]
    assert sum(a.startswith("APPROVE THE IBKR LOGIN") for a in said) == 1, said  # one push for the one restart
    assert [d["event"] for d in stack.decisions()].count("restart") == 1
    assert len((stack.state_dir / LOGINS_FILE).read_text().splitlines()) == 2  # the create and the one restart


def test_outside_the_login_hours_a_killed_gateway_stays_down_with_one_alert_saying_when(stack):
    now = datetime.now(NEW_YORK)
    begins, ends = now + timedelta(hours=2), now + timedelta(hours=3)
    stack.up()  # logged in before: a supervised start-up outside the hours would hold its own login
    proc = supervise(stack, GATEWAY_LOGIN_HOURS=f"daily {begins:%H:%M}-{ends:%H:%M}")
    before = len(stack.hook.received)
    docker("kill", stack.container)
    wait_until(lambda: any("NOT restarted now: outside GATEWAY_LOGIN_HOURS" in a for a in stack.alerts(before)), 15,
               "the alert that the restart waits")
    time.sleep(3)  # the behaviour under test is that nothing more happens: give it the chance
    state = container_state(stack.container)
    assert state is not None and state["Status"] == "exited"  # no login, no 2FA push, before the hours
    stop(proc)
    said = stack.alerts(before)
    assert sum("GATEWAY_LOGIN_HOURS" in a for a in said) == 1
    assert f"the one automatic restart comes at {begins:%a %H:%M} New York" in said[0]
    assert [d["event"] for d in stack.decisions()].count("restart_deferred") == 1
    assert not (stack.state_dir / LOGINS_FILE).exists()  # the supervisor caused no login at all


def test_a_supervised_start_up_outside_the_login_hours_waits_without_creating_the_gateway(stack):
    now = datetime.now(NEW_YORK)
    begins, ends = now + timedelta(hours=2), now + timedelta(hours=3)
    started = time.monotonic()
    proc = stack.launch("--supervise", **QUIET, GATEWAY_LOGIN_HOURS=f"daily {begins:%H:%M}-{ends:%H:%M}")
    wait_until(lambda: any("outside GATEWAY_LOGIN_HOURS" in a for a in stack.alerts()), 30, "the alert of the wait")
    time.sleep(2)  # the behaviour under test is that nothing more happens: give it the chance
    assert proc.poll() is None and project_containers(stack.project) == []  # waiting, nothing created
    proc.send_signal(signal.SIGTERM)
    run = stack.finish(proc, started)
    # stopped on request: 128 + SIGTERM, which the unit counts as a clean stop (SuccessExitStatus)
    assert run.code == 143 and "interrupted by SIGTERM in state GATEWAY_STARTING" in run.record["reason"]
    assert run.record["outcome"] == "stopped"
    assert project_containers(stack.project) == [] and not (stack.state_dir / LOGINS_FILE).exists()
    assert f"it is logged in at {begins:%a %H:%M} New York" in stack.alerts()[0]


def test_a_killed_firewall_is_alerted_started_again_and_the_gateway_is_not_touched(stack):
    """`docker kill` of the firewall: Docker's restart policy does not bring back a container killed by hand,
    so the supervisor does, without a login (the Gateway keeps running, no 2FA push), and says so."""
    proc = supervise(stack)
    first_start, before = started_at(stack), len(stack.hook.received)
    docker("kill", stack.gateway.firewall)
    wait_until(lambda: any(a.startswith("Order firewall DOWN") for a in stack.alerts(before)), 15, "the alert")
    wait_until(lambda: (container_state(stack.gateway.firewall) or {}).get("Status") == "running", 20,
               "the firewall running again")
    wait_until(lambda: any(a.startswith("Order firewall back after") for a in stack.alerts(before)), 20,
               "the all-clear")
    stack.gateway.wait_serving(20)  # the API answers through it again
    stop(proc)
    said = stack.alerts(before)
    assert sum(a.startswith("Order firewall DOWN") for a in said) == 1
    assert started_at(stack) == first_start  # the Gateway was never restarted
    assert len((stack.state_dir / LOGINS_FILE).read_text().splitlines()) == 1  # the start-up's create only
    events = [d["event"] for d in stack.decisions()]
    assert {"firewall_down", "firewall_started", "firewall_back"} <= set(events)


def test_a_killed_supervisor_relaunched_adopts_its_bot_and_the_gateway_and_says_so_once(stack):
    """SIGKILL (an OOM kill, a crash the process cannot catch) orphans the bot; the relaunch (systemd's
    Restart=, the Windows task) takes it over instead of refusing with ALREADY_RUNNING in a silent loop."""
    proc = supervise(stack)
    bot, gateway_started = running_bot(stack.state_dir), started_at(stack)
    assert bot is not None
    proc.kill()
    proc.wait(timeout=10)
    assert running_bot(stack.state_dir) == bot  # orphaned, still running
    before, supervising = len(stack.hook.received), [d["event"] for d in stack.decisions()].count("supervising")
    again = stack.launch("--supervise", **QUIET)
    wait_until(lambda: again.poll() is not None or [d["event"] for d in stack.decisions()].count("supervising")
               > supervising, 60, "the relaunched supervisor to take over")
    assert again.poll() is None, again.stderr.read() if again.stderr else ""
    wait_until(lambda: any("adopted the running bot" in a for a in stack.alerts(before)), 10, "the adoption's alert")
    said = stack.alerts(before)
    assert sum(f"adopted the running bot PID {bot}" in a for a in said) == 1
    assert running_bot(stack.state_dir) == bot and started_at(stack) == gateway_started  # nothing restarted
    assert len((stack.state_dir / LOGINS_FILE).read_text().splitlines()) == 1  # no new login
    stop(again)
    assert running_bot(stack.state_dir) is None  # the adopted bot is stopped with the supervisor
    adopted = [r for r in read_runs(stack.state_dir) if r.get("adopted")]
    assert [r["adopted"]["bot_pid"] for r in adopted] == [bot]


LIVE_2FA = {"login_delay": 0.5, "accounts": LIVE, "login_outcome": "2fa-then-ok", "twofa_delay": 1}


def test_a_frozen_api_is_recovered_by_ibcs_own_restart_with_no_login_and_no_push(stack):
    """A live account, 2FA on every cold login. Port open, API dead, container up: IBC's RESTART through its
    command server (docker exec) brings it back with the session kept. The container was never restarted, no
    login was recorded, no approval was asked for, and the bot is trading-ready again."""
    stack.mode, stack.sim = "live", {**LIVE_2FA, "restart_delay": 2}
    proc = supervise(stack, GATEWAY_DOWN_ALERT_AFTER="2", TWOFA_WAIT_TIMEOUT="30")
    first_start, before, began = started_at(stack), len(stack.hook.received), datetime.now(UTC)
    stack.freeze_api()
    wait_until(lambda: any(d["event"] == "soft_restart" for d in stack.decisions()), 60, "IBC's restart")
    wait_until(lambda: stack.bot_connected_since(began), 60, "the bot trading-ready again")
    wait_until(lambda: any(a.startswith("Gateway back after") for a in stack.alerts(before)), 20, "the all-clear")
    stop(proc)
    assert started_at(stack) == first_start  # the container was never restarted
    assert len((stack.state_dir / LOGINS_FILE).read_text().splitlines()) == 1  # the start-up's create only
    said = stack.alerts(before)
    assert any("IBC restarted the Gateway" in a for a in said)
    assert not any("APPROVE" in a or "restarted once" in a for a in said), said
    assert "RestartTask: verb = RESTART" in stack.gateway.logs()


def test_a_soft_restart_that_brings_nothing_back_is_followed_by_one_container_restart_and_one_push(stack):
    """The same frozen API, but IBC's RESTART does not bring it back (here it would take 10 minutes): once its
    deadline (GATEWAY_HEALTH_TIMEOUT) has passed, the one container restart, a cold login paid from the budget,
    with one approval alert; the bot trades again."""
    # the approval comes after 8 s: longer than the watch's 5 s between looks at IBC's log, so it is seen waiting
    stack.mode, stack.sim = "live", {**LIVE_2FA, "twofa_delay": 8, "restart_delay": 600}
    proc = supervise(stack, GATEWAY_DOWN_ALERT_AFTER="2", GATEWAY_HEALTH_TIMEOUT="8", TWOFA_WAIT_TIMEOUT="30")
    first_start, before, began = started_at(stack), len(stack.hook.received), datetime.now(UTC)
    stack.freeze_api()
    wait_until(lambda: stack.bot_connected_since(began), 120, "the bot trading-ready again")
    wait_until(lambda: any(a.startswith("Gateway back after") for a in stack.alerts(before)), 20, "the all-clear")
    stop(proc)
    events = [d["event"] for d in stack.decisions()]
    assert (events.count("soft_restart"), events.count("restart")) == (1, 1), events
    assert started_at(stack) != first_start
    assert len((stack.state_dir / LOGINS_FILE).read_text().splitlines()) == 2  # the create and the one restart
    said = stack.alerts(before)
    assert sum(a.startswith("APPROVE THE IBKR LOGIN") for a in said) == 1, said


def test_shutdown_of_the_gateway_is_a_tidy_logout_through_ibc(stack):
    """`shutdown --gateway` asks IBC to STOP (a logout: no session slot left held for the next login) and the
    container ends by itself, exit 0, without a SIGTERM."""
    run = stack.orchestrate()
    assert run.code == 0, run.stderr
    done = subprocess.run([sys.executable, "-m", "src.orchestration.ops.shutdown", "--gateway"], cwd=stack.tmp,
                          env=stack.env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    state = container_state(stack.container)
    assert state is not None and state["Status"] == "exited" and state["ExitCode"] == 0
    logs = stack.gateway.logs()
    assert "CommandServer received command: STOP" in logs and "exiting via [File, Close] menu" in logs
    assert "SIGTERM received" not in logs


def test_a_gateway_that_lost_ibkr_is_asked_to_reconnect_and_the_bot_trades_again_without_a_login(stack):
    """1100 for longer than GATEWAY_DOWN_ALERT_AFTER with the API up: IBC's RECONNECTACCOUNT brings the link
    back; no restart, no login, the bot trading-ready again."""
    stack.sim = {"login_delay": 0.5, "outage_after": 3, "outage_for": 3600, "outage_kind": "ib-lost"}
    proc = supervise(stack, GATEWAY_DOWN_ALERT_AFTER="2")
    first_start, began = started_at(stack), datetime.now(UTC)
    wait_until(lambda: any(d["event"] == "reconnect" for d in stack.decisions()), 60, "IBC's reconnect")
    wait_until(lambda: stack.bot_connected_since(began), 60, "the bot trading-ready again")
    stop(proc)
    assert started_at(stack) == first_start
    assert len((stack.state_dir / LOGINS_FILE).read_text().splitlines()) == 1
    assert "CommandServer received command: RECONNECTACCOUNT" in stack.gateway.logs()
