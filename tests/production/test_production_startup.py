"""docker/gateway/scripts/production-startup.sh for real: stub orchestrators via ZT_PYTHON, real bash.

The wrapper checks, then `exec`s the orchestrator; a refusal is logged to stderr, to syslog
(`logger`, a recording fake here: the tests never write to the machine's syslog) and to
STATE_DIR/runs.jsonl. Every test but the last few runs a copy of the script inside a temporary
repository tree, so nothing here reads or writes the real repository's .env, .venv, logs/ or state/.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from src.orchestration.config import REPO_ROOT
from src.core.journal import read_runs
from src.core.statefiles import RUNS_FILE
from testkit.repo_env import hide_repo_dotenv
from tests.helpers.ci import skip_or_fail

SCRIPT = REPO_ROOT / "docker" / "gateway" / "scripts" / "production-startup.sh"
MINIMAL_PATH = "/usr/bin:/bin"
ME = "production-startup.sh"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository tree holding only a copy of the wrapper (no .venv, no .env)."""
    root = tmp_path / "repo"
    target = root / "docker" / "gateway" / "scripts" / SCRIPT.name
    target.parent.mkdir(parents=True)
    shutil.copy2(SCRIPT, target)
    return root


def wrapper(repo: Path) -> Path:
    return repo / "docker" / "gateway" / "scripts" / SCRIPT.name


def stub(path: Path, body: str) -> Path:
    """An executable Python script standing in for the interpreter (`python -m ...` lands in argv)."""
    path.write_text(f"#!{sys.executable}\nimport json, os, signal, sys, time\n{body}\n")
    path.chmod(0o755)
    return path


def exit_stub(tmp_path: Path, code: int) -> Path:
    return stub(tmp_path / f"exit{code}", f"print('stub orchestrator: exiting {code}', flush=True)\nsys.exit({code})")


def recording_stub(tmp_path: Path) -> tuple[Path, Path]:
    """A stub that records its argv, cwd, PID and environment as JSON, and exits 0."""
    record = tmp_path / "record.json"
    body = (f"json.dump({{'argv': sys.argv[1:], 'cwd': os.getcwd(), 'pid': os.getpid(), 'env': dict(os.environ)}}, "
            f"open({str(record)!r}, 'w'))")
    return stub(tmp_path / "recorder", body), record


def fake_bin(tmp_path: Path) -> Path:
    """A directory with a `logger` that appends its arguments to tmp_path/syslog.jsonl."""
    directory = tmp_path / "fakebin"
    if not directory.exists():
        directory.mkdir()
        record = tmp_path / "syslog.jsonl"
        stub(directory / "logger", f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')")
    return directory


def syslog(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "syslog.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A systemd-like minimal environment (no HOME, PATH=/usr/bin:/bin) plus the fake `logger`."""
    return {"PATH": f"{fake_bin(tmp_path)}:{MINIMAL_PATH}", **extra}


def run(script: Path, *args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)


def exec_line(python: Path | str, repo: Path, args: str = "") -> str:
    return f"{ME}: exec {python} -m src.orchestration.startup{args} (repository {repo})\n"


def assert_refused(done: subprocess.CompletedProcess[str], tmp_path: Path, state_dir: Path, reason: str,
                   code: int = 1) -> None:
    """One line on stderr, the same line in syslog, and a `refused` record as --status reads it."""
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    assert done.stderr == f"{ME}: {reason}\n"
    assert syslog(tmp_path) == [["-t", "ibkr-zero-touch", "-p", "user.err", "--", f"{ME}: {reason}"]]
    runs = list(read_runs(state_dir))
    assert len(runs) == 1, runs
    assert {k: runs[0][k] for k in ("outcome", "exit_code", "reason", "by")} == {
        "outcome": "refused", "exit_code": code, "reason": reason, "by": ME}
    assert len(runs[0]["run_id"]) == 12 and runs[0]["started_at"] <= runs[0]["ended_at"]


# --- the orchestrator is this process ----------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 2, 75, 77])
def test_the_orchestrator_replaces_the_wrapper_and_its_exit_code_is_the_result(repo, tmp_path, code):
    pid_file = tmp_path / "pid"
    orchestrator = stub(tmp_path / "orch", f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                                           f"print('stub orchestrator: exiting {code}')\nsys.exit({code})")
    proc = subprocess.Popen([str(wrapper(repo))], env=base_env(tmp_path, ZT_PYTHON=str(orchestrator)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert int(pid_file.read_text()) == proc.pid  # exec: the same process, so systemd's main PID
    assert out == f"stub orchestrator: exiting {code}\n"
    assert err == exec_line(orchestrator, repo)
    assert not (repo / "state").exists() and not (repo / "logs").exists()  # the orchestrator logs its run


def test_arguments_cwd_and_minimal_environment(repo, tmp_path):
    recorder, record = recording_stub(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = base_env(tmp_path, ZT_PYTHON=str(recorder))
    done = run(wrapper(repo), "--supervise", "--x=a b", env=env, cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    seen = json.loads(record.read_text())
    assert seen["argv"] == ["-m", "src.orchestration.startup", "--supervise", "--x=a b"]
    assert seen["cwd"] == str(repo)
    assert seen["env"]["HOME"] == pwd.getpwuid(os.getuid()).pw_dir
    path = seen["env"]["PATH"].split(":")
    assert path[:3] == [*env["PATH"].split(":")] and "/usr/local/bin" in path  # appended: the given PATH wins
    assert done.stderr == exec_line(recorder, repo, " --supervise --x=a b")


def test_started_through_a_symlink_finds_its_repository(repo, tmp_path):
    recorder, record = recording_stub(tmp_path)
    link = tmp_path / "bin" / "zero-touch"
    link.parent.mkdir()
    link.symlink_to(wrapper(repo))
    assert run(link, env=base_env(tmp_path, ZT_PYTHON=str(recorder))).returncode == 0
    assert json.loads(record.read_text())["cwd"] == str(repo)


# --- finding the interpreter ---------------------------------------------------------------------


def test_missing_interpreter_is_one_clear_line_logged_everywhere(repo, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    done = run(wrapper(repo), env=base_env(tmp_path, HOME=str(home)))
    assert_refused(done, tmp_path, repo / "state", f"no Python environment: {repo}/.venv/bin/python is missing "
                   "and poetry is not on PATH; run scripts/setup.sh (or set ZT_PYTHON)")


def test_zt_python_that_is_not_executable_is_refused(repo, tmp_path):
    directory = tmp_path / "a directory"
    directory.mkdir()
    for value in (tmp_path / "nope", directory):
        (repo / "state" / RUNS_FILE).unlink(missing_ok=True)
        (tmp_path / "syslog.jsonl").unlink(missing_ok=True)
        done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(value)))
        assert_refused(done, tmp_path, repo / "state", f"ZT_PYTHON={value} is not an executable file")


def test_an_interpreter_that_cannot_be_executed_is_refused(repo, tmp_path):
    broken = tmp_path / "broken"
    broken.write_text("#!/nonexistent/python\n")
    broken.chmod(0o755)
    done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(broken)))
    assert done.returncode == 1
    assert done.stderr.startswith(exec_line(broken, repo))  # then bash's own complaint, then the refusal
    assert done.stderr.endswith(f"{ME}: cannot execute {broken}\n")
    assert [r["reason"] for r in read_runs(repo / "state")] == [f"cannot execute {broken}"]


def test_project_virtualenv_is_used_without_zt_python(repo, tmp_path):
    venv_bin = repo / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(exit_stub(tmp_path, 2))
    done = run(wrapper(repo), env=base_env(tmp_path))
    assert done.returncode == 2 and "stub orchestrator: exiting 2" in done.stdout
    assert done.stderr == exec_line(venv_bin / "python", repo)


def fake_poetry(directory: Path, repo: Path, target: Path) -> None:
    """A `poetry` that answers `env info -e` with `target`, only when run from the repository."""
    directory.mkdir(parents=True)
    poetry = directory / "poetry"
    poetry.write_text(f'#!/bin/sh\n[ "$*" = "env info -e" ] && [ "$PWD" = "{repo}" ] && echo {target}\n')
    poetry.chmod(0o755)


def test_poetry_on_path_is_the_last_resort(repo, tmp_path):
    """No .venv, poetry on PATH: its environment's interpreter runs the orchestrator."""
    target = exit_stub(tmp_path, 0)
    fake_poetry(tmp_path / "poetrybin", repo, target)
    env = base_env(tmp_path)
    done = run(wrapper(repo), env={**env, "PATH": f"{tmp_path / 'poetrybin'}:{env['PATH']}"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == exec_line(target, repo)


def test_poetry_in_home_local_bin_is_found_without_path(repo, tmp_path):
    """No .venv, poetry not on PATH but in ~/.local/bin, where scripts/setup.sh puts it."""
    target = exit_stub(tmp_path, 0)
    home = tmp_path / "home"
    fake_poetry(home / ".local" / "bin", repo, target)
    done = run(wrapper(repo), env=base_env(tmp_path, HOME=str(home)))
    assert done.returncode == 0, done.stderr
    assert done.stderr == exec_line(target, repo)


def test_poetry_that_names_no_environment_is_refused(repo, tmp_path):
    home = tmp_path / "home"
    fake_poetry(home / ".local" / "bin", tmp_path / "not the repository", exit_stub(tmp_path, 0))
    done = run(wrapper(repo), env=base_env(tmp_path, HOME=str(home)))
    poetry = home / ".local" / "bin" / "poetry"
    assert_refused(done, tmp_path, repo / "state", f"no Python environment: {repo}/.venv/bin/python is missing "
                   f"and '{poetry} env info -e' names none; run scripts/setup.sh (or set ZT_PYTHON)")


# --- .env: never read here, and only used when safe ------------------------------------------------


def test_hostile_dotenv_is_never_executed_nor_exported(repo, tmp_path):
    canary = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    env_file = repo / ".env"
    env_file.write_text(
        f"X=$(touch {canary}-dollar)\n"
        f"Y=`touch {canary}-backtick`\n"
        f"Z=a; touch {canary}-semicolon\n"
        f"touch {canary}-bare\n"
        f"LOG_DIR=$(touch {canary}-logdir)\n"
        f"STATE_DIR=$(touch {canary}-statedir)\n"
    )
    env_file.chmod(0o600)
    recorder, record = recording_stub(tmp_path)
    try:
        done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(recorder)))
        assert done.returncode == 0, done.stderr
        assert not list(Path("/tmp").glob(f"{canary.name}*"))
        seen = json.loads(record.read_text())["env"]
        assert not {"X", "Y", "Z", "LOG_DIR", "STATE_DIR"} & seen.keys()  # the orchestrator reads .env itself
    finally:
        for leaked in Path("/tmp").glob(f"{canary.name}*"):
            leaked.unlink()


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602, 0o660])
def test_dotenv_writable_by_others_is_refused(repo, tmp_path, mode):
    env_file = repo / ".env"
    env_file.write_text("GATEWAY_PORT=4002\n")
    env_file.chmod(mode)
    recorder, record = recording_stub(tmp_path)
    done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(recorder)))
    assert_refused(done, tmp_path, repo / "state", f"refusing {env_file}: mode {mode:o} lets group or others "
                   f"write it; fix with: chmod go-w {env_file}")
    assert not record.exists()


def test_dotenv_owned_by_someone_else_is_refused(repo, tmp_path):
    if os.geteuid() != 0:
        skip_or_fail("chown to another user needs root (CI runs as root)")
    env_file = repo / ".env"
    env_file.write_text("GATEWAY_PORT=4002\n")
    env_file.chmod(0o600)
    os.chown(env_file, 54321, -1)
    recorder, record = recording_stub(tmp_path)
    done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(recorder)))
    assert_refused(done, tmp_path, repo / "state",
                   f"refusing {env_file}: owned by uid 54321, not by this user (uid {os.getuid()}) or root")
    assert not record.exists()


@pytest.mark.parametrize("kind", ["fifo", "directory", "dangling symlink"])
def test_dotenv_that_is_not_a_regular_file_is_refused(repo, tmp_path, kind):
    env_file = repo / ".env"
    if kind == "fifo":
        os.mkfifo(env_file, 0o600)  # reading it would block the orchestrator
    elif kind == "directory":
        env_file.mkdir()
    else:
        env_file.symlink_to(tmp_path / "absent")
    done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(exit_stub(tmp_path, 0))))
    assert_refused(done, tmp_path, repo / "state", f"refusing {env_file}: not a regular file")


# --- where a refusal is recorded -------------------------------------------------------------------


def bad_dotenv(repo: Path) -> str:
    (repo / ".env").write_text("GATEWAY_PORT=4002\n")
    (repo / ".env").chmod(0o666)
    return f"refusing {repo / '.env'}: mode 666 lets group or others write it; fix with: chmod go-w {repo / '.env'}"


def test_a_refusal_needs_no_logs_directory(repo, tmp_path):
    """logs/ that cannot be written (even by root: it is a file), LOG_DIR too: nothing is lost."""
    (repo / "logs").write_text("not a directory\n")
    reason = bad_dotenv(repo)
    done = run(wrapper(repo), env=base_env(tmp_path, LOG_DIR=str(repo / "logs" / "sub")))
    assert_refused(done, tmp_path, repo / "state", reason)


@pytest.mark.parametrize("setting", ["absolute", "relative", "home"])
def test_the_refusal_record_goes_to_state_dir_from_the_environment(repo, tmp_path, setting):
    home = tmp_path / "home"
    value, state = {"absolute": (str(tmp_path / "elsewhere"), tmp_path / "elsewhere"),
                    "relative": ("var/state", repo / "var" / "state"),
                    "home": ("~/zt-state", home / "zt-state")}[setting]
    reason = bad_dotenv(repo)
    done = run(wrapper(repo), env=base_env(tmp_path, STATE_DIR=value, HOME=str(home)))
    assert_refused(done, tmp_path, state, reason)
    assert not (repo / "state").exists()


def test_an_unwritable_state_dir_still_leaves_stderr_and_syslog(repo, tmp_path):
    (tmp_path / "file").write_text("")
    reason = bad_dotenv(repo)
    done = run(wrapper(repo), env=base_env(tmp_path, STATE_DIR=str(tmp_path / "file" / "state")))
    assert done.returncode == 1
    assert done.stderr == f"{ME}: {reason}\n{ME}: (not recorded in {tmp_path}/file/state/{RUNS_FILE})\n"
    assert syslog(tmp_path) == [["-t", "ibkr-zero-touch", "-p", "user.err", "--", f"{ME}: {reason}"]]


def test_a_failing_logger_changes_nothing(repo, tmp_path):
    """No syslog daemon (WSL without systemd: no /dev/log): logger fails; stderr and the journal remain."""
    stub(fake_bin(tmp_path) / "logger", "print('logger: socket /dev/log: No such file or directory', file=sys.stderr)\n"
                                        "sys.exit(1)")
    reason = bad_dotenv(repo)
    done = run(wrapper(repo), env=base_env(tmp_path))
    assert done.returncode == 1 and done.stderr == f"{ME}: {reason}\n"
    assert [r["reason"] for r in read_runs(repo / "state")] == [reason]


def test_no_syslog_copy_when_stderr_already_is_the_journal(repo, tmp_path):
    """systemd sets JOURNAL_STREAM to stderr's device:inode when stderr is the journal."""
    reason = bad_dotenv(repo)
    with open(tmp_path / "stderr", "w+") as err:
        st = os.fstat(err.fileno())
        for stream, copies in ((f"{st.st_dev}:{st.st_ino}", 0), (f"{st.st_dev}:{st.st_ino + 1}", 1)):
            subprocess.run([str(wrapper(repo))], env=base_env(tmp_path, JOURNAL_STREAM=stream), stderr=err,
                           timeout=60, check=False)
            assert len(syslog(tmp_path)) == copies
        err.seek(0)
        assert err.read() == f"{ME}: {reason}\n" * 2  # stderr, the journal, has it both times
    assert len(list(read_runs(repo / "state"))) == 2


def test_a_torn_journal_tail_is_repaired_and_odd_characters_are_escaped(repo, tmp_path):
    state = repo / "state"
    state.mkdir()
    (state / RUNS_FILE).write_text('{"run_id":"a","outcome":"success"}\n{"run_id":"torn","outc')
    odd = tmp_path / 'quote " backslash \\ tab\tend'
    done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(odd)))
    assert done.returncode == 1
    runs = list(read_runs(state))
    assert [r["run_id"] for r in runs][0] == "a" and len(runs) == 2
    assert runs[1]["reason"] == f"ZT_PYTHON={odd} is not an executable file".replace("\t", " ")


# --- signals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stop_signals_reach_the_orchestrator_itself(repo, tmp_path, sent):
    ready = tmp_path / "ready"
    waiter = stub(tmp_path / "waiter", (
        "def stop(signum, frame):\n"
        "    print(f'stub orchestrator: {signal.Signals(signum).name} received, bot stopped', flush=True)\n"
        "    sys.exit(0)\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
        "    signal.signal(s, stop)\n"
        f"open({str(ready)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
        "sys.exit(9)"
    ))
    proc = subprocess.Popen([str(wrapper(repo)), "--supervise"], env=base_env(tmp_path, ZT_PYTHON=str(waiter)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() or not ready.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, "the stub never started"
            time.sleep(0.02)
        assert int(ready.read_text()) == proc.pid
        proc.send_signal(sent)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert out.endswith(f"stub orchestrator: {sent.name} received, bot stopped\n")


def test_stop_signal_before_the_orchestrator_starts_means_it_never_starts(repo, tmp_path):
    """SIGTERM while the wrapper is still looking for the interpreter (a slow `poetry env info -e`)."""
    recorder, record = recording_stub(tmp_path)
    asked = tmp_path / "poetry-asked"
    poetry_bin = tmp_path / "poetrybin"
    poetry_bin.mkdir()
    poetry = poetry_bin / "poetry"
    poetry.write_text(f"#!/bin/sh\ntouch {asked}\nsleep 1\necho {recorder}\n")
    poetry.chmod(0o755)
    env = base_env(tmp_path, HOME=str(tmp_path))
    env["PATH"] = f"{poetry_bin}:{env['PATH']}"
    proc = subprocess.Popen([str(wrapper(repo))], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not asked.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert_refused(subprocess.CompletedProcess([], proc.returncode, out, err), tmp_path, repo / "state",
                   "SIGTERM received before the orchestrator started: not starting it", code=143)
    assert not record.exists()


# --- the real thing --------------------------------------------------------------------------------


def test_help_through_the_real_orchestrator(tmp_path):
    """The real script, the project's real .venv interpreter, a minimal environment, another cwd."""
    done = run(SCRIPT, "--help", env=hide_repo_dotenv(base_env(tmp_path)), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "usage: python -m src.orchestration.startup" in done.stdout
    assert done.stderr == exec_line(REPO_ROOT / ".venv" / "bin" / "python", REPO_ROOT, " --help")


@pytest.mark.parametrize("args", [["--bogus"], ["--status", "--supervise"]])
def test_a_usage_error_is_exit_1_never_strategy_c(tmp_path, args):
    """Exit 2 means Strategy C: the real orchestrator's usage error must be 1."""
    done = run(SCRIPT, *args, env=hide_repo_dotenv(base_env(tmp_path)), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "python -m src.orchestration.startup: error: " in done.stderr


def test_real_orchestrator_configuration_error_is_its_own_one_line(tmp_path):
    env = hide_repo_dotenv(base_env(tmp_path, GATEWAY_PORT="0", STATE_DIR=str(tmp_path / "state")))
    done = run(SCRIPT, env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines()[-1].startswith("startup: configuration error: GATEWAY_PORT='0' is invalid")


@pytest.mark.parametrize("logs_writable", [True, False])
def test_real_orchestrator_logs_and_journals_its_own_result(tmp_path, logs_writable):
    """A run that fails before touching Docker (a bad BOT_STRATEGY): the orchestrator's own result
    line, in its log file when LOG_DIR can be written, and its record in runs.jsonl either way."""
    (tmp_path / "file").write_text("")
    logs = tmp_path / "logs" if logs_writable else tmp_path / "file" / "logs"
    env = hide_repo_dotenv(base_env(tmp_path, BOT_STRATEGY="no_such_module_zt:Strategy", LOG_DIR=str(logs),
                                    STATE_DIR=str(tmp_path / "state")))
    done = run(SCRIPT, env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Exit 1 (failure)" in done.stderr.splitlines()[-1]
    [last] = read_runs(tmp_path / "state")
    assert last["outcome"] == "failure" and last["exit_code"] == 1 and "BOT_STRATEGY" in last["reason"]
    if logs_writable:
        [log] = logs.glob("orchestrator_*.log")
        assert "Exit 1 (failure)" in log.read_text().splitlines()[-1]
    else:
        assert "cannot write the log file" in done.stderr
