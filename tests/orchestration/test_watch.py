"""The Gateway after the handoff (src/orchestration/supervisor/watch.py), driven second by second on a fake clock.

What an operator would notice: which alerts go out (and how many), whether the Gateway was
restarted (a fresh IBKR login, on live a 2FA push), what the login budget paid, what the
decision record says.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from src.notifications.dedupe import AlertGate
from src.orchestration.gateway.logins import LoginBudget
from src.core.resetwindows import parse_windows
from src.orchestration.supervisor.watch import GatewayWatch, Seen, WatchSettings
from tests.helpers.fakes import EXITED, RUNNING, FakeDocker, FakeHealth, probe
from tests.helpers.ibclog import load

# A Tuesday, 15:00 New York (20:00 UTC): outside every default reset window.
TUESDAY_AFTERNOON = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
WINDOWS = parse_windows("daily 23:45-00:45; fri 22:45-sun 02:00")


@dataclass
class Clock:
    mono: float = 1000.0
    wall: datetime = TUESDAY_AFTERNOON

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


@dataclass
class World:
    tmp: object
    clock: Clock = field(default_factory=Clock)
    docker: FakeDocker = field(default_factory=lambda: FakeDocker(state=RUNNING))
    health: FakeHealth = field(default_factory=lambda: FakeHealth(lambda n: probe("api_closed")))
    alerts: list[tuple[str, str]] = field(default_factory=list)
    records: list[tuple[str, str]] = field(default_factory=list)
    budget: int = 3
    alert_after: float = 300.0
    login_hours: str | None = None  # GATEWAY_LOGIN_HOURS
    soft_budget: int = 0  # GATEWAY_SOFT_RESTART_BUDGET (0: no soft rung, as before it existed)

    def __post_init__(self) -> None:
        self.logins = LoginBudget(self.tmp / "state", self.budget, clock=lambda: self.clock.wall.timestamp())
        self.gate = AlertGate.in_state_dir(self.tmp / "state", clock=lambda: self.clock.wall.timestamp())
        settings = WatchSettings(windows=WINDOWS, alert_after=self.alert_after, login_timeout=120.0,
                                 twofa_wait=180.0, login_budget=self.budget, probe_timeout=1.0,
                                 login_hours=parse_windows(self.login_hours) if self.login_hours else None,
                                 soft_restarts=LoginBudget(self.tmp / "state", self.soft_budget,
                                                           clock=lambda: self.clock.wall.timestamp(),
                                                           file="gateway_soft_restarts.jsonl"))
        self.watch = GatewayWatch(docker=self.docker, health=self.health, logins=self.logins, gate=self.gate,
                                  settings=settings, alert=self._alert, record=self._record,
                                  clock=lambda: self.clock.mono, now=lambda: self.clock.wall, run_id="run1")

    def _alert(self, level: str, message: str, *, title: str | None = None, fields=None) -> None:
        self.alerts.append((level, message))

    def _record(self, event: str, detail: str) -> None:
        self.records.append((event, detail))

    def see(self, connection: str | None, container=None, since: datetime | None = None) -> str:
        state = self.docker.state if container is None else container
        return self.watch.tick(Seen(state, connection, since or self.clock.wall))

    def run_for(self, seconds: float, connection: str | None, step: float = 1.0) -> str:
        status = ""
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            status = self.see(connection)
        return status

    @property
    def restarts(self) -> list[str]:
        return [c for c in self.docker.calls if c in ("restart", "start", "compose_up")]


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def test_a_connected_bot_means_nothing_to_do(world):
    assert world.see("connected") == "Gateway up, bot connected"
    assert world.alerts == [] and world.restarts == [] and world.records == []


def test_a_degraded_bot_is_a_pause_alerted_once_after_the_delay_and_cleared_once(world):
    """1100 for minutes, or a resync that keeps failing, with the API handshake fine: the bot cannot trade.
    Nobody restarts the Gateway (a fresh login cannot reach IBKR either), but the operator hears of it."""
    world.health = FakeHealth(lambda n: probe())  # the API answers
    world.watch.health = world.health
    world.see("connected")
    world.run_for(world.alert_after - 10, "degraded")
    assert world.alerts == []  # a short pause is no news
    world.run_for(20, "degraded")
    world.run_for(600, "degraded")  # six simulated hours would be the same: one alert
    assert [level for level, _ in world.alerts] == ["warning"]
    assert "the bot has been degraded" in world.alerts[0][1] and world.restarts == []
    world.see("connected")
    assert len(world.alerts) == 2 and world.alerts[1][1].startswith("Gateway back after")
    assert world.restarts == []


def test_a_frozen_api_the_bot_degraded_and_the_handshake_failing_is_met_as_api_down(world):
    """Port open, API dead: the bot's heartbeat times out (degraded) and our probe fails too."""
    world.see("connected")
    world.run_for(world.alert_after + 10, "degraded")
    assert world.restarts == ["restart"] and [level for level, _ in world.alerts] == ["warning"]
    assert "Gateway API down" in world.alerts[0][1]


def test_a_dead_container_is_alerted_restarted_once_and_cleared_when_the_bot_is_back(world):
    world.docker.state = EXITED
    world.see("reconnecting")
    assert world.restarts == ["start"]  # at once, outside a window: one login from the budget
    assert [level for level, _ in world.alerts] == ["warning"]
    assert "exited (exit code 137)" in world.alerts[0][1] and "2 of 3 Gateway logins left" in world.alerts[0][1]
    assert world.logins.view().left == 2
    world.run_for(30, "reconnecting")  # the Gateway logs in; the bot is still reconnecting
    assert world.restarts == ["start"] and len(world.alerts) == 1  # no storm, no second restart
    world.clock.advance(1)
    assert world.see("connected") == "Gateway up, bot connected"
    assert world.alerts[-1][0] == "info" and world.alerts[-1][1].startswith("Gateway back after 31 s")
    assert [event for event, _ in world.records] == ["outage_began", "decision", "restart", "back"]


def test_a_stale_connected_from_before_the_restart_does_not_end_the_outage(world):
    world.docker.state = EXITED
    before = world.clock.wall
    world.see("reconnecting")
    world.clock.advance(1)
    world.see("connected", since=before)  # the record the bot wrote before the restart
    assert world.watch.outage is not None and world.alerts[-1][0] == "warning"


def test_a_restart_that_does_not_bring_the_gateway_back_is_not_repeated(world):
    world.docker.state = EXITED
    world.see("reconnecting")
    world.docker.state = EXITED  # it dies again
    world.run_for(200, "reconnecting")
    assert world.restarts == ["start"]  # one automatic restart per outage, never a loop
    assert [level for level, _ in world.alerts] == ["warning", "critical"]
    assert "operator needed" in world.alerts[-1][1]
    assert world.logins.view().left == 2


@pytest.mark.parametrize(("fixture", "expected"), [
    ("twofa_exit_1111", "timed out"),
    ("credentials_rejected", "rejected"),
    ("existing_session", "session"),
])
def test_a_login_no_restart_can_fix_is_one_critical_alert_and_no_restart(world, fixture, expected):
    world.docker.state = replace(EXITED, exit_code=87 if fixture == "twofa_exit_1111" else 1)
    world.docker.log = load(fixture)
    world.run_for(60, "reconnecting")
    assert world.restarts == []
    assert [level for level, _ in world.alerts] == ["critical"]
    assert expected in world.alerts[0][1] and "NOT restarted" in world.alerts[0][1]


def test_a_pending_2fa_with_the_container_up_is_alerted_at_once_and_never_restarted(world):
    world.docker.log = load("twofa_pending")
    world.see("reconnecting")
    assert world.alerts and world.alerts[0][0] == "critical"
    assert world.alerts[0][1].startswith("APPROVE THE IBKR LOGIN ON YOUR PHONE")
    world.run_for(170, "reconnecting")
    assert world.restarts == [] and len(world.alerts) == 1
    world.run_for(20, "reconnecting")  # the approval never came
    assert world.restarts == []
    assert world.alerts[-1][0] == "critical" and "approval never came" in world.alerts[-1][1]


def test_an_api_down_with_the_container_up_waits_the_alert_delay_then_restarts_once(world):
    world.run_for(290, "reconnecting")
    assert world.alerts == [] and world.restarts == []  # an outage may heal by itself
    world.run_for(15, "reconnecting")
    assert world.restarts == ["restart"]
    assert len(world.alerts) == 1 and "API down for 5 min" in world.alerts[0][1] and "restarted" in world.alerts[0][1]


def test_an_api_that_answers_while_the_bot_is_disconnected_is_alerted_but_never_restarted(world):
    world.health.script = lambda n: probe()
    world.run_for(400, "reconnecting")
    assert world.restarts == []
    assert len(world.alerts) == 1 and "NOT restarted" in world.alerts[0][1]


def test_an_outage_inside_a_reset_window_is_not_alerted_then_counts_from_the_window_end(world):
    world.clock.wall = datetime(2026, 12, 2, 4, 50, tzinfo=UTC)  # 23:50 New York: in the daily window
    world.docker.state = EXITED
    world.run_for(60, "reconnecting")
    assert world.alerts == [] and world.restarts == []  # expected: a login now would fail too
    assert world.see("reconnecting").startswith("Gateway down inside IBKR's reset window (until")
    world.run_for(55 * 60, "reconnecting")  # past 00:45: a dead container is met at once
    assert world.restarts == ["start"] and len(world.alerts) == 1
    assert ("in_reset_window", world.records[1][1]) == world.records[1]


def test_an_api_outage_that_ends_inside_the_window_is_never_alerted(world):
    world.clock.wall = datetime(2026, 12, 2, 4, 50, tzinfo=UTC)
    world.run_for(600, "reconnecting")
    world.see("connected")
    assert world.alerts == [] and world.restarts == []
    assert world.records[-1][0] == "back"


def test_a_spent_login_budget_leaves_the_gateway_alone_with_one_critical_alert(tmp_path):
    world = World(tmp_path, budget=1)
    world.logins.spend("start", "earlier")
    world.docker.state = EXITED
    world.run_for(60, "reconnecting")
    assert world.restarts == []
    assert [level for level, _ in world.alerts] == ["critical"] and "budget spent" in world.alerts[0][1]


def test_a_relaunched_supervisor_does_not_alert_an_open_problem_again(tmp_path):
    first = World(tmp_path)
    first.docker.state = EXITED
    first.docker.log = load("credentials_rejected")
    first.see("reconnecting")
    second = World(tmp_path)  # the same state/: the same alert gate
    second.docker.state = EXITED
    second.docker.log = load("credentials_rejected")
    second.run_for(30, "reconnecting")
    assert len(first.alerts) == 1 and second.alerts == []
    second.docker.state = RUNNING
    second.see("connected")
    assert second.alerts[-1][0] == "info" and second.alerts[-1][1].startswith("Gateway back after")


def test_a_planned_login_restarts_once_and_reports_when_done(world):
    said = world.watch.planned_login("Weekly IBKR login")
    assert world.restarts == ["restart"] and "restarted" in said
    assert world.alerts[0][0] == "warning" and "approve" in world.alerts[0][1]
    world.docker.log = load("twofa_pending")
    world.run_for(10, "reconnecting")
    assert world.alerts[-1][0] == "critical" and world.restarts == ["restart"]
    world.clock.advance(1)
    world.see("connected")
    assert world.alerts[-1][0] == "info" and "back after" in world.alerts[-1][1]


def test_a_planned_login_never_stacks_on_a_pending_2fa_nor_on_an_outage(world):
    world.docker.log = load("twofa_pending")
    assert "already pending" in world.watch.planned_login("Weekly IBKR login")
    world.docker.log = ""
    world.docker.state = EXITED
    world.see("reconnecting")
    assert "already down" in world.watch.planned_login("Weekly IBKR login")
    assert world.restarts == ["start"]  # the outage's own restart, not the planned one


def test_a_pending_2fa_inside_a_reset_window_is_still_alerted_and_never_restarted(world):
    world.clock.wall = datetime(2026, 12, 7, 4, 59, tzinfo=UTC)  # Sunday 23:59 New York: IBC's own restart
    world.docker.log = load("twofa_pending")
    world.run_for(10, "reconnecting")
    assert [level for level, _ in world.alerts] == ["critical"]
    assert world.alerts[0][1].startswith("APPROVE THE IBKR LOGIN ON YOUR PHONE") and world.restarts == []


def test_a_restart_that_docker_refuses_is_not_tried_again(world):
    from src.orchestration.gateway.docker import DockerError

    world.docker.state = EXITED
    world.docker.fail["start"] = DockerError("other", "Error response from daemon: something broke")
    world.run_for(60, "reconnecting")
    assert world.docker.calls.count("start") == 1  # one attempt, one login paid, then the operator
    assert world.logins.view().left == 2
    assert [level for level, _ in world.alerts] == ["critical"] and "restart failed" in world.alerts[0][1]


def test_a_docker_that_does_not_answer_means_nothing_is_touched(world):
    world.docker.state = EXITED
    for _ in range(400):
        world.clock.advance(1)
        world.watch.tick(Seen(None, "reconnecting", world.clock.wall, docker_problem="the daemon is not running"))
    assert world.restarts == [] and "logs" not in world.docker.calls
    assert [level for level, _ in world.alerts] == ["critical"] and "Docker does not answer" in world.alerts[0][1]


def test_a_skipped_weekly_login_is_alerted(world):
    world.docker.log = load("twofa_pending")
    world.watch.planned_login("Weekly IBKR login")
    assert [level for level, _ in world.alerts] == ["warning"] and "NOT done" in world.alerts[0][1]


def test_a_container_that_dies_after_the_bot_saw_the_drop_is_met_at_once(world):
    world.see("reconnecting")  # the bot's record said so first: the container still looked up
    world.clock.advance(0.5)
    world.docker.state = EXITED  # then Docker's `die`
    world.see("reconnecting")
    assert world.restarts == ["start"] and len(world.alerts) == 1


# Wednesday 01:00 New York (06:00 UTC): after the nightly window (23:45-00:45), before anyone is up.
WEDNESDAY_NIGHT = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def test_outside_the_login_hours_the_one_restart_waits_for_them_with_one_warning(tmp_path):
    world = World(tmp_path, clock=Clock(wall=WEDNESDAY_NIGHT), login_hours="daily 06:30-22:00")
    world.docker.state = EXITED
    status = world.see("reconnecting")
    assert world.restarts == [] and world.logins.view().left == 3  # no login at 01:00, no push nobody approves
    assert "the restart waits for GATEWAY_LOGIN_HOURS (Wed 06:30 New York)" in status
    assert [level for level, _ in world.alerts] == ["warning"]
    assert "NOT restarted now: outside GATEWAY_LOGIN_HOURS" in world.alerts[0][1]
    assert "the one automatic restart comes at Wed 06:30 New York" in world.alerts[0][1]
    looks = world.docker.calls.count("logs")
    world.run_for(5.5 * 3600 - 60, "reconnecting", step=10)  # until 06:29
    assert world.restarts == [] and len(world.alerts) == 1  # still waiting, said once
    assert world.docker.calls.count("logs") - looks <= 5.5 * 60  # at most a look a minute overnight
    world.run_for(70, "reconnecting", step=1)  # 06:30: the login hours begin
    assert world.restarts == ["start"] and world.logins.view().left == 2
    assert [level for level, _ in world.alerts] == ["warning", "warning"]
    assert "the one automatic restart;" in world.alerts[1][1]
    world.clock.advance(5)
    world.see("connected")
    assert world.alerts[-1][1].startswith("Gateway back after 5 h 30 min") and world.watch.outage is None
    assert [event for event, _ in world.records].count("restart_deferred") == 1


def test_inside_the_login_hours_a_dead_container_is_restarted_at_once(tmp_path):
    world = World(tmp_path, login_hours="daily 06:30-22:00")  # Tuesday 15:00 New York
    world.docker.state = EXITED
    world.see("reconnecting")
    assert world.restarts == ["start"] and [level for level, _ in world.alerts] == ["warning"]


def test_a_manual_start_during_the_wait_is_seen_at_once_and_the_bot_back_ends_the_outage(tmp_path):
    world = World(tmp_path, clock=Clock(wall=WEDNESDAY_NIGHT), login_hours="daily 06:30-22:00")
    world.docker.state = EXITED
    world.see("reconnecting")
    world.clock.advance(120)
    world.docker.state = RUNNING  # the operator started it by hand
    world.see("reconnecting")
    world.clock.advance(30)
    assert world.see("connected") == "Gateway up, bot connected"
    assert world.restarts == [] and world.logins.view().left == 3  # the supervisor caused no login
    assert world.alerts[-1][1].startswith("Gateway back after 2 min")



@pytest.fixture
def laddered(tmp_path):
    return World(tmp_path, soft_budget=3)


def test_a_dead_api_with_the_container_up_is_first_restarted_by_ibc_itself_with_no_login(laddered):
    """The ladder's first rung: IBC's RESTART keeps the session: no login from the budget, no 2FA push."""
    world = laddered
    world.docker.ibc_answers = ["OK RESTART in progress"]
    world.see("connected")
    world.run_for(world.alert_after + 10, "reconnecting")
    assert world.docker.calls.count("ibc:RESTART") == 1 and world.restarts == []
    assert world.logins.view().used == 0
    assert [level for level, _ in world.alerts] == ["warning"] and "IBC restarted the Gateway" in world.alerts[0][1]
    world.see("connected")
    assert world.alerts[-1][1].startswith("Gateway back after") and world.restarts == []
    assert ("soft_restart" in [event for event, _ in world.records])


def test_a_soft_restart_that_does_not_bring_the_api_back_is_followed_by_the_one_container_restart(laddered):
    world = laddered
    world.docker.ibc_answers = ["OK RESTART in progress"]
    world.see("connected")
    world.run_for(world.alert_after + 10 + 120 + 10, "reconnecting")  # past the soft restart's login timeout
    assert world.docker.calls.count("ibc:RESTART") == 1 and world.restarts == ["restart"]
    assert world.logins.view().used == 1  # the cold login, from the budget


@pytest.mark.parametrize("answers", [None, ["ERROR Command invalid"]], ids=["silent", "refused"])
def test_a_command_server_that_cannot_restart_goes_straight_to_the_container(laddered, answers):
    world = laddered
    world.docker.ibc_answers = answers
    world.see("connected")
    world.run_for(world.alert_after + 10, "reconnecting")
    assert world.restarts == ["restart"]
    assert "soft_restart_failed" in [event for event, _ in world.records]


def test_the_soft_restart_cap_is_its_own(laddered):
    world = laddered
    for _ in range(3):
        world.watch.settings.soft_restarts.spend("ibc_restart", "earlier")
    world.docker.ibc_answers = ["OK RESTART in progress"]
    world.see("connected")
    world.run_for(world.alert_after + 10, "reconnecting")
    assert "ibc:RESTART" not in world.docker.calls and world.restarts == ["restart"]
    assert "soft_restart_skipped" in [event for event, _ in world.records]


def test_a_lost_link_with_the_api_up_is_first_met_by_ibcs_reconnect_once(world):
    """1100 for longer than the alert delay: IBC's RECONNECTACCOUNT (the session and the API untouched), once;
    never a restart."""
    world.health = FakeHealth(lambda n: probe())
    world.watch.health = world.health
    world.docker.ibc_answers = ["OK "]
    world.see("connected")
    world.run_for(world.alert_after + 60, "degraded")
    assert world.docker.calls.count("ibc:RECONNECTACCOUNT") == 1 and world.restarts == []
    assert "reconnect" in [event for event, _ in world.records]


def test_a_frozen_api_is_met_once_the_alert_delay_is_over_the_probes_own_deadline_counting(tmp_path):
    """A frozen API answers nothing, so each probe takes its whole deadline: that time counts as down, and the
    next look comes when GATEWAY_DOWN_ALERT_AFTER is reached, not a whole look interval later."""
    world = World(tmp_path, soft_budget=3, alert_after=3.0)
    world.docker.ibc_answers = ["OK RESTART in progress"]

    def frozen(n: int):
        world.clock.advance(1.0)  # the probe's deadline (probe_timeout) passes unanswered
        return probe("timeout")

    world.health.script = frozen
    world.see("connected")
    began = world.clock.mono
    world.see("reconnecting")  # the outage begins: one probe, 1 s, not yet past the delay
    assert world.docker.calls.count("ibc:RESTART") == 0
    world.clock.advance(1.0)
    world.see("reconnecting")  # 2 s down, and the look is not due before the delay is over
    assert world.docker.calls.count("ibc:RESTART") == 0 and len(world.health.calls) == 1
    world.clock.advance(1.0)
    world.see("reconnecting")  # 3 s: looked at again at once; the probe's second makes 4 s down: IBC's RESTART
    assert world.docker.calls.count("ibc:RESTART") == 1 and world.clock.mono - began == 4.0  # not 1 + LOOK_EVERY + 1
