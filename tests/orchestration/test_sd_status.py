"""systemd's status text always says the current state, or why it failed: never a bare FAILURE, never the
last good news after a failure (`systemctl status` is what an operator on the machine reads first)."""

from __future__ import annotations

from src.orchestration.machine.bot import BotStart
from src.core.sdnotify import NotifyListener


def statuses(listener: NotifyListener) -> list[str]:
    said = []
    while (message := listener.receive(0.05)) is not None:
        if "STATUS" in message:
            said.append(message["STATUS"])
    return said


def test_a_failed_start_up_says_why_in_its_last_status(harness, monkeypatch):
    harness.bot_result = BotStart(False, None, "bot exited with code 3 before it was ready")
    with NotifyListener() as listener:
        monkeypatch.setenv("NOTIFY_SOCKET", listener.name)
        assert harness.run() == 1
        said = statuses(listener)
    assert said[-1].startswith("FAILED (exit 1): the bot did not start: bot exited with code 3"), said


def test_a_supervisor_that_ends_on_a_failure_says_so_before_it_stops(harness, monkeypatch):
    from tests.orchestration.test_supervise import supervisor_of

    orch, sup = supervisor_of(harness)
    with NotifyListener() as listener:
        monkeypatch.setenv("NOTIFY_SOCKET", listener.name)
        sup._end("the bot exited unexpectedly with code 3")
        said = statuses(listener)
    assert said and said[-1] == "FAILED: the bot exited unexpectedly with code 3; stopping", said
