"""Nothing under state/ can turn against the operator: never followed through a symlink, never a traceback,
never a permanent block, and the login budget fails closed on anything it cannot read."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.orchestration.ops import status
from src.core.journal import append_line, read_runs, recover_interrupted
from src.core.locks import PidLock
from src.orchestration.gateway.logins import LoginBudget
from src.core.statefiles import (
    ALERT_GATE_FILE, BOT_PROCESS_FILE, CHECKPOINT_FILE, FIREWALL_DECISIONS_FILE, FIREWALL_SESSIONS_FILE,
    LOGINS_FILE, ORCHESTRATOR_LOCK, PLAN_FILE, PLAN_SHA256_FILE, READY_FILE, RUNS_FILE, SUPERVISOR_LOG,
)
from src.orchestration.ops.shutdown import shutdown
from tests.helpers.fakes import RUNNING, FakeDocker, FakeHealth, RecordingNotifier

NOW = 1_800_000_000.0


def test_a_symlinked_lock_or_journal_is_never_written_through(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / ORCHESTRATOR_LOCK).symlink_to(precious)
    (state / RUNS_FILE).symlink_to(precious)
    with pytest.raises(OSError):
        PidLock(state / ORCHESTRATOR_LOCK).acquire()
    with pytest.raises(OSError):
        append_line(state / RUNS_FILE, {"run_id": "x"})
    assert precious.read_text() == "keep me\n"  # neither truncated nor appended to
    assert list(read_runs(state)) == []  # and never read through either


@pytest.mark.parametrize("content", ['{"transitions": 5}', '{"transitions": [5]}', '[1, 2]', "\x00garbage", ""])
def test_a_checkpoint_of_any_shape_is_recorded_as_interrupted_and_never_blocks_the_next_run(tmp_path, content):
    (tmp_path / CHECKPOINT_FILE).write_text(content)
    record = recover_interrupted(tmp_path)
    assert record is not None and record["outcome"] == "interrupted"
    assert not (tmp_path / CHECKPOINT_FILE).exists()
    assert recover_interrupted(tmp_path) is None  # nothing left to block the next run


def test_a_checkpoint_that_is_a_directory_is_moved_aside(tmp_path):
    (tmp_path / CHECKPOINT_FILE).mkdir()
    assert recover_interrupted(tmp_path)["outcome"] == "interrupted"
    assert not (tmp_path / CHECKPOINT_FILE).exists()


@pytest.mark.parametrize(("lines", "counted"), [
    ('{"at": NaN}', 1), ('{"at": "nan"}', 1), ('{"at": true}', 1), ('{"at": -Infinity}', 1),
    ('{"at": Infinity}', 1), ("garbage", 1), ('{"action": "create"}', 1), ("[]", 1), ('"1800000000"', 1),
    (f'{{"at": {NOW - 10}}}{{"at": {NOW - 20}}}{{"at": {NOW - 30}}}', 3),  # three records on one line
    (f'{{"at": {NOW - 10}}} trailing', 2),
    (f'{{"at": {NOW - 90_000}}}', 0),  # a real login older than the window: frees up, as it should
])
def test_the_login_budget_fails_closed(tmp_path, lines, counted):
    (tmp_path / LOGINS_FILE).write_text(lines + "\n")
    view = LoginBudget(tmp_path, 3, clock=lambda: NOW).view()
    assert view.used == counted


def test_a_torn_append_is_repaired_not_glued_to_the_next_login(tmp_path):
    (tmp_path / LOGINS_FILE).write_text(f'{{"at": {NOW - 5}, "action": "cre')  # the writer died mid-line
    budget = LoginBudget(tmp_path, 3, clock=lambda: NOW)
    budget.spend("restart", "run1")
    assert budget.view().used == 2  # the torn one (failing closed) and the new one, each on its own line
    assert (tmp_path / LOGINS_FILE).read_text().count("\n") == 2


def test_status_reads_a_large_journal_from_its_end(tmp_path):
    path = tmp_path / RUNS_FILE
    with open(path, "wb") as f:
        f.write(b'{"run_id": "old"}\n' * 400_000)  # ~7 MiB
        f.write(b'{"run_id": "last", "outcome": "success"}\n')
    runs = list(read_runs(tmp_path))
    assert runs[-1]["run_id"] == "last" and len(runs) < 400_000


STATE_FILES = [READY_FILE, RUNS_FILE, LOGINS_FILE, SUPERVISOR_LOG, ALERT_GATE_FILE, FIREWALL_DECISIONS_FILE,
               FIREWALL_SESSIONS_FILE, BOT_PROCESS_FILE, PLAN_FILE, PLAN_SHA256_FILE, CHECKPOINT_FILE]
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=4), max_leaves=12)
CONTENT = st.one_of(st.binary(max_size=300), JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                    st.lists(JSON_VALUES.map(json.dumps), max_size=5).map(lambda ls: "\n".join(ls).encode()),
                    st.just(b"<dir>"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(STATE_FILES), content=CONTENT)
def test_any_bytes_in_any_state_file_give_a_status_and_a_budget_that_never_grows(harness, name, content):
    state = harness.config.state_dir
    shutil.rmtree(state, ignore_errors=True)  # each example: one file's bytes, nothing left from the one before
    state.mkdir(parents=True)
    target = state / name
    if content == b"<dir>":
        target.mkdir()
    else:
        target.write_bytes(content)
    config = dataclasses.replace(harness.config)
    shown = status.collect(config, docker=FakeDocker(state=RUNNING), checker=FakeHealth())  # never raises
    status.render(shown)
    clean = LoginBudget(state / "clean", 3).view().left
    try:
        left = LoginBudget(state, 3).view().left
    except OSError:
        left = 0  # unreadable: the start-up stops with one line (a test of its own), never a login
    assert left <= clean
    assert shown["login_budget"]["left"] is None or shown["login_budget"]["left"] <= clean
    # the start-up and shutdown work, or end with their exit code and one reason: never an exception but the
    # OSError of a state/ it cannot write (a directory where runs.jsonl belongs), which the CLI makes one line
    try:
        code: int | None = harness.orchestrator().run()
    except OSError as exc:
        assert exc.filename and str(state) in str(exc.filename), exc
        code = None
    assert code in (None, 0, 1, 2)
    if code is not None:
        assert harness.runs and isinstance(harness.runs[-1].get("reason") or "", str)
    try:
        report = shutdown(config, gateway=False, notifier=RecordingNotifier(), docker=FakeDocker(state=RUNNING))
    except OSError as exc:  # a state/ it cannot write: the shutdown CLI's one line, exit 1
        assert exc.filename and str(state) in str(exc.filename), exc
    else:
        assert report.exit_code in (0, 1) and "\n" not in report.summary()


def test_shutdown_signals_only_a_process_verified_to_be_the_bot(tmp_path):
    """A process holding state/bot.pid that does not run the bot (a strategy's forked child, a reused PID) is
    never signalled: an unrelated process was once killed while the real bot kept running."""
    import subprocess
    import sys
    import textwrap

    from src.orchestration.machine.bot import running_bot
    from src.orchestration.ops.shutdown import stop_bot
    from src.core.statefiles import BOT_PID_FILE

    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from src.core.locks import PidLock
        PidLock(Path({str(tmp_path)!r}) / {BOT_PID_FILE!r}).acquire()
        print("holding", flush=True)
        time.sleep(60)
    """)
    stranger = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parents[2])
    try:
        assert stranger.stdout is not None and stranger.stdout.readline() == "holding\n"
        assert running_bot(tmp_path) is None
        step = stop_bot(tmp_path, timeout=1)
        assert not step.acted and step.detail == "bot not running" and stranger.poll() is None  # untouched
    finally:
        stranger.kill()
        stranger.wait()
