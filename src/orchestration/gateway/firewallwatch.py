"""The supervisor's eye on the order firewall's container (service `firewall`).

While the firewall is down no order reaches the Gateway (its port has no listener): safe, but the
bot cannot trade, and the operator must hear of it. Docker restarts a firewall that crashes
(`restart: unless-stopped`); one stopped or killed by hand, or removed, stays down, so the watch
starts it again (`docker compose up -d --no-recreate firewall`: no login, no 2FA push, the Gateway
untouched), at most once per RETRY s, with one critical alert per outage and one when it is back.
Every finding is a line in state/supervisor.jsonl.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from src.notifications.dedupe import AlertGate
from src.orchestration.gateway.docker import ContainerState, DockerError

DOWN = "firewall-down"  # the AlertGate keys
START_FAILED = "firewall-start-failed"
RETRY = 5.0  # seconds between two starts of a firewall that stays down


class FirewallDocker(Protocol):
    firewall: str

    def start_firewall(self) -> None: ...


class FirewallWatch:
    """`tick(state)` after each look at the firewall's container: the status to show, or None when up."""

    def __init__(self, *, docker: FirewallDocker, gate: AlertGate, alert: Callable[..., None],
                 record: Callable[[str, str], None], clock: Callable[[], float], retry: float = RETRY) -> None:
        self.docker, self.gate, self.alert, self.record, self.clock = docker, gate, alert, record, clock
        self.retry = retry
        self.down_since: float | None = None
        self.started_at = float("-inf")

    def tick(self, state: ContainerState | None) -> str | None:
        if state is not None and state.status == "running":
            self._up()
            return None
        what = state.describe() if state is not None else "no container"
        if self.down_since is None:
            self.down_since = self.clock()
            self.record("firewall_down", f"order firewall {self.docker.firewall}: {what}")
        if self.gate.raise_(DOWN, "critical", what):
            self.alert("critical", f"Order firewall DOWN ({what}): no order can reach the Gateway and the bot "
                       "cannot trade; the supervisor starts it again", title="Order firewall DOWN")
        if state is not None and state.status == "restarting":
            return f"order firewall restarting ({what}): no order passes"
        if self.clock() - self.started_at >= self.retry:
            self.started_at = self.clock()
            try:
                self.docker.start_firewall()
            except DockerError as exc:
                self.record("firewall_start_failed", exc.message)
                if self.gate.raise_(START_FAILED, "critical", exc.message):
                    self.alert("critical", f"The order firewall cannot be started: {exc.message}; nothing trades "
                               "until it runs", title="Order firewall DOWN: operator needed")
                return f"order firewall DOWN ({what}), cannot start it: no order passes"
            self.record("firewall_started", f"was {what}")
        return f"order firewall DOWN ({what}), starting it: no order passes"

    def _up(self) -> None:
        if self.down_since is not None:
            self.record("firewall_back", f"after {self.clock() - self.down_since:.1f} s")
            self.down_since = None
        self.gate.clear(START_FAILED, "")
        back = self.gate.clear(DOWN, "Order firewall back after {duration}")
        if back is not None:
            self.alert("info", f"{back}: orders are judged and pass again", title="Order firewall back")
