"""Live-account rules with fakes: the login budget, the account's mode, validation without Docker's cadence."""

from __future__ import annotations

import json

import pytest

from src.orchestration import exitcodes
from src.orchestration.health import OK, HandshakeResult, account_problem
from src.orchestration.gateway.logins import WINDOW, LoginBudget
from src.core.statefiles import LOGINS_FILE
from tests.helpers.fakes import EXITED, RUNNING, ContainerState, probe

DAY = 24 * 3600


def logged_in(*accounts: str) -> HandshakeResult:
    return HandshakeResult(OK, "logged in", 0.001, 178, accounts)


# --- the login budget ---------------------------------------------------------------------------

class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_budget_counts_logins_in_a_rolling_24_hours(tmp_path):
    clock = Clock()
    budget = LoginBudget(tmp_path, limit=2, clock=clock)
    assert budget.view().left == 2
    budget.spend("create", "r1")
    clock.now += 3600
    budget.spend("restart", "r2")
    view = budget.view()
    assert (view.used, view.left, view.frees_at) == (2, 0, clock.now - 3600 + WINDOW)
    # 1_800_000_000 is Fri 2027-01-15 08:00 UTC, 03:00 in New York (EST): the operator's clock first
    assert view.describe().endswith("the next frees up at Sat 2027-01-16 03:00 New York (08:00 UTC)")
    clock.now += WINDOW - 3600 + 1  # the first login left the window, the second has not
    assert budget.view().left == 1


def test_an_unreadable_budget_line_counts_as_a_login(tmp_path):
    (tmp_path / LOGINS_FILE).write_text('{"at": 1, "action"\n')
    assert LoginBudget(tmp_path, limit=1).view().left == 0


def test_every_login_the_orchestrator_causes_is_recorded(harness):
    harness.docker.state = None  # no container: compose up is a login
    assert harness.run() == 0
    lines = [json.loads(line) for line in (harness.config.state_dir / LOGINS_FILE).read_text().splitlines()]
    assert [entry["action"] for entry in lines] == ["create"]
    assert lines[0]["run_id"] == harness.runs[-1]["run_id"]


def test_a_running_gateway_costs_no_login(harness):
    assert harness.run() == 0
    assert not (harness.config.state_dir / LOGINS_FILE).exists()


def test_with_the_budget_spent_nothing_is_touched_and_the_operator_is_told_once(harness):
    harness.configure(gateway_login_budget=2)
    budget = LoginBudget(harness.config.state_dir, 2)
    budget.spend("restart", "earlier-1")
    budget.spend("restart", "earlier-2")
    harness.docker.state = EXITED  # starting it would be a third login

    assert harness.run() == 1
    assert harness.path == ["INITIALIZING", "GATEWAY_STARTING", "LOGIN_BUDGET_SPENT", "FAILURE"]
    assert "start" not in harness.docker.calls and "compose_up" not in harness.docker.calls
    reason = harness.runs[-1]["reason"]
    assert "Gateway login budget spent" in reason and "GATEWAY_LOGIN_BUDGET=2" in reason and "frees up at" in reason
    assert [level for level, _ in harness.notifier.alerts] == ["critical"]

    assert harness.run() == 1  # relaunched by a supervisor: still nothing touched, and no second alert
    assert "start" not in harness.docker.calls
    assert len(harness.notifier.alerts) == 1
    assert budget.view().used == 2


def test_a_spent_budget_exits_with_the_no_restart_code_under_supervise(harness):
    harness.configure(gateway_login_budget=0)
    harness.docker.state = None
    orchestrator = harness.orchestrator()
    orchestrator.supervise = True
    assert orchestrator.run() == exitcodes.LOGIN_BUDGET_SPENT


def test_the_one_restart_is_paid_from_the_budget_too(harness):
    harness.configure(gateway_login_budget=1, gateway_health_timeout=0.3)
    harness.docker.state = EXITED
    harness.health.script = lambda n: probe("no_reply")
    assert harness.run() == 1
    # the start spent the only login: the automatic restart is refused instead of sending another push
    assert harness.docker.calls.count("start") == 1 and "restart" not in harness.docker.calls
    assert harness.path[-2:] == ["LOGIN_BUDGET_SPENT", "FAILURE"]


# --- the account's kind ---------------------------------------------------------------------------

@pytest.mark.parametrize(("accounts", "mode", "expected", "problem"), [
    (("DU123456",), "paper", (), None),
    (("U1234567",), "live", (), None),
    (("U1234567",), "paper", (), "Gateway is logged in to LIVE account U1234567 but TRADING_MODE=paper"),
    (("DU123456", "DF99"), "live", (), "Gateway is logged in to PAPER account DU123456,DF99 but TRADING_MODE=live"),
    (("U1234567",), "live", ("U7654321",), "not EXPECTED_ACCOUNTS U7654321"),
    (("U1234567", "U7654321"), "live", ("u7654321",), None),
])
def test_account_problem(accounts, mode, expected, problem):
    found = account_problem(accounts, mode, expected)
    assert (found is None) if problem is None else (problem in found)


def test_a_live_account_under_paper_mode_gets_no_bot_and_no_restart(harness):
    harness.health.script = lambda n: logged_in("U1234567")
    assert harness.run() == 1
    assert harness.bot_calls == [] and "restart" not in harness.docker.calls
    assert harness.path == ["INITIALIZING", "GATEWAY_STARTING", "GATEWAY_WAITING", "GATEWAY_VALIDATED",
                            "WRONG_ACCOUNT", "FAILURE"]
    assert "Gateway is logged in to LIVE account U1234567 but TRADING_MODE=paper" in harness.runs[-1]["reason"]
    assert harness.notifier.alerts[-1][0] == "critical"


def test_the_wrong_account_under_supervise_exits_with_the_do_not_restart_code(harness):
    harness.health.script = lambda n: logged_in("U1234567")
    orchestrator = harness.orchestrator()
    orchestrator.supervise = True
    assert orchestrator.run() == 78  # a restart logs in to the same account: systemd must not loop on it
    assert harness.bot_calls == [] and "restart" not in harness.docker.calls


def test_live_mode_with_a_live_account_starts_the_bot(harness):
    harness.configure(trading_mode="live", expected_accounts=("U1234567",))
    harness.health.script = lambda n: logged_in("U1234567")
    assert harness.run() == 0 and len(harness.bot_calls) == 1


# --- validation does not wait for Docker's health ------------------------------------------------

def test_a_logged_in_gateway_is_validated_while_docker_still_says_starting(harness):
    harness.docker.state = ContainerState("running", 0, "starting", RUNNING.started_at, True)
    assert harness.run() == 0
    assert harness.health.calls and len(harness.health.calls) == 1  # the first good handshake decided
    assert harness.runs[-1]["gateway"]["docker_health"] == "starting"


def test_a_login_at_the_deadline_while_docker_says_unhealthy_is_success_not_a_restart(harness):
    harness.configure(gateway_health_timeout=0.4)
    harness.docker.state = ContainerState("running", 0, "unhealthy", RUNNING.started_at, True)
    assert harness.run() == 0
    assert "restart" not in harness.docker.calls
    assert harness.path[:4] == ["INITIALIZING", "GATEWAY_STARTING", "GATEWAY_WAITING", "GATEWAY_VALIDATED"]


# --- exit 1 promises nothing is trading -----------------------------------------------------------

def test_a_crash_after_the_bot_started_stops_that_bot(harness, monkeypatch):
    import subprocess
    import sys

    bot = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    harness.bot_process = bot
    orchestrator = harness.orchestrator()

    def crash() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(orchestrator, "_finalize", crash)
    try:
        assert orchestrator.run() == 1
        assert bot.poll() is not None  # stopped, not left trading behind an exit 1
        assert "the bot it had started" in harness.runs[-1]["reason"]
    finally:
        bot.kill()
        bot.wait()


# --- an exited Gateway is diagnosed before it is started -----------------------------------------

@pytest.mark.parametrize(("exit_code", "log", "evidence"), [
    (87, "", "exit code 87"),
    (88, "", "exit code 88"),
    (1, "2026-11-25 08:00:01:000 IBC: Second Factor Authentication initiated", "Second Factor"),
])
def test_an_exited_gateway_that_ibc_says_needs_a_human_is_not_started(harness, exit_code, log, evidence):
    harness.docker.state = ContainerState("exited", exit_code, None, RUNNING.started_at, False)
    harness.docker.log = log
    assert harness.run() == 1
    assert "start" not in harness.docker.calls and "compose_up" not in harness.docker.calls
    assert harness.path == ["INITIALIZING", "GATEWAY_STARTING", "GATEWAY_LOGIN_FAILED", "FAILURE"]
    assert evidence in harness.runs[-1]["reason"] and "NOT restarted" in harness.runs[-1]["reason"]
    assert not (harness.config.state_dir / LOGINS_FILE).exists()  # no login was caused


def test_an_exited_gateway_with_nothing_against_it_is_started(harness):
    harness.docker.state = ContainerState("exited", 0, None, RUNNING.started_at, False)
    harness.docker.log = "2026-11-25 08:00:09:000 IBC: Login has completed"
    assert harness.run() == 0 and harness.docker.calls.count("start") == 1


# --- the 2FA guard fails closed --------------------------------------------------------------------

def test_a_gateway_log_that_cannot_be_read_means_no_restart(harness):
    from src.orchestration.gateway.docker import FAILED, DockerError

    harness.configure(gateway_health_timeout=0.3)
    harness.health.script = lambda n: probe("no_reply")
    harness.docker.fail["logs"] = DockerError(FAILED, "'docker logs --since' failed: permission denied")
    assert harness.run() == 1
    assert "restart" not in harness.docker.calls
    assert harness.path[-2:] == ["GATEWAY_LOGIN_FAILED", "FAILURE"]
    assert "NOT restarted" in harness.runs[-1]["reason"] and harness.notifier.alerts[-1][0] == "critical"


def test_the_gateway_log_is_read_from_stdout_and_stderr_in_order(tmp_path):
    from src.orchestration.gateway.docker import DockerClient
    from tests.helpers.fake_docker import FakeDockerCLI, rule

    fake = FakeDockerCLI(tmp_path, [rule("logs", stdout="IBC: Login has completed\n",
                                         stderr="IBC: Second Factor Authentication initiated\n")])
    client = DockerClient("ibkr-gateway", "gateway", tmp_path, env={"PATH": fake.path_with()})
    text = client.logs_since("2026-11-25T08:00:00Z")
    assert "Second Factor Authentication initiated" in text and "Login has completed" in text


@pytest.mark.parametrize(("utc_hour", "code", "said"), [
    (5, 1, "reset window"),  # 00:10 New York: a supervisor may retry after the window (exit 1) ...
    (15, exitcodes.LOGIN_BLOCKED, "Unrecognized Username or Password"),  # 10:10: ... not so outside it (77)
])
def test_a_login_failure_is_blocked_only_outside_ibkrs_reset_windows(harness, monkeypatch, utc_hour, code, said):
    from datetime import UTC, datetime

    from src.orchestration.machine import engine as machine
    from tests.helpers.ibclog import load

    held = []  # inside a window, --supervise holds until it ends before its exit 1 (tested on its own)
    monkeypatch.setattr(machine, "hold_until", lambda until, **kwargs: held.append(until))
    harness.configure(gateway_health_timeout=0.3)
    harness.health.script = lambda n: probe("closed_before_version")
    harness.docker.log = load("credentials_rejected")
    orchestrator = harness.orchestrator()
    orchestrator.supervise = True
    orchestrator.services.now = lambda: datetime(2026, 12, 2, utc_hour, 10, tzinfo=UTC)
    assert orchestrator.run() == code
    assert "restart" not in orchestrator.services.docker.calls  # a login now would fail again, or lock the account
    reason = harness.runs[-1]["reason"]
    assert said in reason and ("00:45 New York" in reason) == (code == 1)
    assert len(held) == (code == 1)


def test_a_read_only_api_under_a_plan_that_grants_authority_is_one_critical_alert(harness):
    """ReadOnlyApi=yes with trading authority: the bot starts (reads work), but nothing can trade: say so."""
    import dataclasses

    harness.config = dataclasses.replace(harness.config, child_env={"READ_ONLY_API": "yes"})
    assert harness.run() == 0
    read_only = [m for level, m in harness.notifier.alerts if "READ-ONLY" in m]
    assert len(read_only) == 1 and [lvl for lvl, m in harness.notifier.alerts if "READ-ONLY" in m] == ["critical"]
    assert harness.runs[-1]["read_only_api"] is True


def test_a_read_only_api_under_strategy_c_is_no_news(harness):
    import dataclasses

    harness.configure(gameplan_path=None)
    harness.config = dataclasses.replace(harness.config, child_env={"READ_ONLY_API": "yes"})
    assert harness.run() == 2
    assert not any("READ-ONLY" in m for _, m in harness.notifier.alerts)
