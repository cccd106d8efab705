"""docker/gateway/scripts/production-startup.sh for real: stub orchestrators via ZT_PYTHON, real bash.

Every test but the last runs a copy of the script inside a temporary repository tree,
so nothing here reads or writes the real repository's .env, .venv or logs/.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from src.orchestration.config import REPO_ROOT, read_dotenv

SCRIPT = REPO_ROOT / "docker" / "gateway" / "scripts" / "production-startup.sh"
RESULT = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] Startup orchestration (.+) \(exit code: (\d+)\)$")
MINIMAL_PATH = "/usr/bin:/bin"


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
    """A stub that records its argv, cwd and environment as JSON, and exits 0."""
    record = tmp_path / "record.json"
    body = (f"json.dump({{'argv': sys.argv[1:], 'cwd': os.getcwd(), 'env': dict(os.environ)}}, "
            f"open({str(record)!r}, 'w'))")
    return stub(tmp_path / "recorder", body), record


def run(script: Path, *args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A systemd-like minimal environment: no HOME, PATH=/usr/bin:/bin."""
    return {"PATH": MINIMAL_PATH, "LOG_DIR": str(tmp_path / "logs"), **extra}


def log_text(log_dir: Path) -> str:
    files = sorted(log_dir.glob("startup_*.log"))
    assert len(files) == 1, files
    assert re.fullmatch(r"startup_\d{8}_\d{6}\.log", files[0].name)
    return files[0].read_text()


def result_of(text: str) -> tuple[str, int]:
    """The verdict and code of the result line, which must be the last line."""
    match = RESULT.match(text.splitlines()[-1])
    assert match, f"last line is not a result line: {text!r}"
    return match.group(1), int(match.group(2))


# --- exit codes and the result line -----------------------------------------------------------


@pytest.mark.parametrize(("code", "verdict"), [(0, "SUCCESS"), (1, "FAILED"), (2, "STRATEGY C"), (75, "FAILED")])
def test_exit_code_is_propagated_and_logged(repo, tmp_path, code, verdict):
    done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(exit_stub(tmp_path, code))))
    assert done.returncode == code, done.stderr
    assert result_of(done.stdout) == (verdict, code)
    log = log_text(tmp_path / "logs")
    assert f"stub orchestrator: exiting {code}" in log  # the orchestrator's output is in the log too
    assert result_of(log) == (verdict, code)
    assert log == done.stdout


def test_arguments_cwd_and_minimal_environment(repo, tmp_path):
    recorder, record = recording_stub(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run(wrapper(repo), "--supervise", "--x=a b", env=base_env(tmp_path, ZT_PYTHON=str(recorder)),
               cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    seen = json.loads(record.read_text())
    assert seen["argv"] == ["-m", "src.orchestration.startup", "--supervise", "--x=a b"]
    assert seen["cwd"] == str(repo)
    assert seen["env"]["HOME"] == pwd.getpwuid(os.getuid()).pw_dir
    path = seen["env"]["PATH"].split(":")
    assert path[:2] == ["/usr/bin", "/bin"] and "/usr/local/bin" in path


def test_started_through_a_symlink_finds_its_repository(repo, tmp_path):
    recorder, record = recording_stub(tmp_path)
    link = tmp_path / "bin" / "zero-touch"
    link.parent.mkdir()
    link.symlink_to(wrapper(repo))
    assert run(link, env=base_env(tmp_path, ZT_PYTHON=str(recorder))).returncode == 0
    assert json.loads(record.read_text())["cwd"] == str(repo)


# --- finding the interpreter ---------------------------------------------------------------------


def test_missing_interpreter_is_one_clear_line(repo, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    done = run(wrapper(repo), env=base_env(tmp_path, HOME=str(home)))
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert ".venv/bin/python is missing" in lines[0] and "poetry is not on PATH" in lines[0]
    assert "run scripts/setup.sh" in lines[0]
    assert result_of(log_text(tmp_path / "logs")) == ("FAILED", 1)


def test_zt_python_that_is_not_executable_is_refused(repo, tmp_path):
    done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(tmp_path / "nope")))
    assert done.returncode == 1
    assert done.stderr == f"production-startup.sh: ZT_PYTHON={tmp_path / 'nope'} is not an executable file\n"


def test_project_virtualenv_is_used_without_zt_python(repo, tmp_path):
    venv_bin = repo / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(exit_stub(tmp_path, 2))
    done = run(wrapper(repo), env=base_env(tmp_path))
    assert done.returncode == 2 and "stub orchestrator: exiting 2" in done.stdout


def fake_poetry(directory: Path, repo: Path, target: Path) -> None:
    """A `poetry` that answers `env info -e` with `target`, only when run from the repository."""
    directory.mkdir(parents=True)
    poetry = directory / "poetry"
    poetry.write_text(f'#!/bin/sh\n[ "$*" = "env info -e" ] && [ "$PWD" = "{repo}" ] && echo {target}\n')
    poetry.chmod(0o755)


def test_poetry_on_path_is_the_last_resort(repo, tmp_path):
    """No .venv, poetry on PATH: its environment's interpreter runs the orchestrator."""
    target = exit_stub(tmp_path, 0)
    fake_poetry(tmp_path / "fakebin", repo, target)
    done = run(wrapper(repo), env=base_env(tmp_path, PATH=f"{tmp_path / 'fakebin'}:{MINIMAL_PATH}"))
    assert done.returncode == 0, done.stderr
    assert f"Starting production orchestrator: {target} -m src.orchestration.startup" in done.stdout


def test_poetry_in_home_local_bin_is_found_without_path(repo, tmp_path):
    """No .venv, poetry not on PATH but in ~/.local/bin, where scripts/setup.sh puts it."""
    target = exit_stub(tmp_path, 0)
    home = tmp_path / "home"
    fake_poetry(home / ".local" / "bin", repo, target)
    done = run(wrapper(repo), env=base_env(tmp_path, HOME=str(home)))
    assert done.returncode == 0, done.stderr
    assert f"Starting production orchestrator: {target} -m src.orchestration.startup" in done.stdout


# --- .env: data only, and only when safe -----------------------------------------------------------


def test_hostile_dotenv_is_never_executed(repo, tmp_path):
    canary = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    env_file = repo / ".env"
    env_file.write_text(
        f"X=$(touch {canary}-dollar)\n"
        f"Y=`touch {canary}-backtick`\n"
        f"Z=a; touch {canary}-semicolon\n"
        f"touch {canary}-bare\n"
        f"LOG_DIR=$(touch {canary}-logdir)\n"
    )
    env_file.chmod(0o600)
    recorder, record = recording_stub(tmp_path)
    try:
        done = run(wrapper(repo), env={"PATH": MINIMAL_PATH, "ZT_PYTHON": str(recorder)})
        assert done.returncode == 0, done.stderr
        assert not list(Path("/tmp").glob(f"{canary.name}*"))
        seen = json.loads(record.read_text())["env"]
        assert not {"X", "Y", "Z", "LOG_DIR"} & seen.keys()  # the orchestrator reads .env itself
    finally:
        for leaked in Path("/tmp").glob(f"{canary.name}*"):
            leaked.unlink()


def answering_stub(tmp_path: Path, code: int = 0) -> Path:
    """An orchestrator stub that exits `code`, but answers the wrapper's setting query
    (`-m src.orchestration.config --get ...`) with the real orchestrator's parser."""
    return stub(tmp_path / f"answering{code}", (
        "if sys.argv[1:3] == ['-m', 'src.orchestration.config']:\n"
        f"    os.environ['PYTHONPATH'] = {str(REPO_ROOT)!r}\n"
        "    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
        f"print('stub orchestrator: exiting {code}', flush=True)\nsys.exit({code})"))


@pytest.mark.parametrize(("line", "directory"), [
    ("export LOG_DIR='from dotenv'", "from dotenv"),
    ("  LOG_DIR = from-dotenv # a comment", "from-dotenv"),
    ("LOG_DIR='quoted' # a comment", "quoted"),  # the wrapper's own parser said 'quoted', quotes kept
    ('LOG_DIR="${HOME}/x"', "${HOME}/x"),  # never expanded
])
def test_log_dir_comes_from_environment_then_dotenv_as_the_orchestrator_reads_it(repo, tmp_path, line, directory):
    env_file = repo / ".env"
    env_file.write_text(f"# comment\nLOG_DIR=ignored-earlier-line\n{line}\n")
    env_file.chmod(0o644)
    assert read_dotenv(env_file)["LOG_DIR"] == directory
    stub_path = str(answering_stub(tmp_path))
    assert run(wrapper(repo), env={"PATH": MINIMAL_PATH, "ZT_PYTHON": stub_path}).returncode == 0
    assert result_of(log_text(repo / directory)) == ("SUCCESS", 0)
    assert run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=stub_path)).returncode == 0
    assert result_of(log_text(tmp_path / "logs")) == ("SUCCESS", 0)


def test_the_wrapper_never_parses_dotenv_itself(repo, tmp_path):
    """An interpreter that cannot answer the setting query: the wrapper logs to the default logs/
    rather than guess LOG_DIR with a grammar of its own."""
    env_file = repo / ".env"
    env_file.write_text("LOG_DIR=elsewhere\n")
    env_file.chmod(0o600)
    done = run(wrapper(repo), env={"PATH": MINIMAL_PATH, "ZT_PYTHON": str(exit_stub(tmp_path, 0))})
    assert done.returncode == 0, done.stderr
    assert result_of(log_text(repo / "logs")) == ("SUCCESS", 0)
    assert not (repo / "elsewhere").exists()


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602, 0o660])
def test_dotenv_writable_by_others_is_refused(repo, tmp_path, mode):
    env_file = repo / ".env"
    env_file.write_text("GATEWAY_PORT=4002\n")
    env_file.chmod(mode)
    recorder, record = recording_stub(tmp_path)
    done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(recorder)))
    assert done.returncode == 1
    assert done.stderr == (f"production-startup.sh: refusing {env_file}: mode {mode:o} lets group or others "
                           f"write it; fix with: chmod go-w {env_file}\n")
    assert not record.exists()
    assert result_of(log_text(tmp_path / "logs")) == ("FAILED", 1)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_dotenv_owned_by_someone_else_is_refused(repo, tmp_path):
    env_file = repo / ".env"
    env_file.write_text("GATEWAY_PORT=4002\n")
    env_file.chmod(0o600)
    os.chown(env_file, 54321, -1)
    recorder, record = recording_stub(tmp_path)
    done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(recorder)))
    assert done.returncode == 1 and "owned by uid 54321" in done.stderr
    assert not record.exists()


def test_dotenv_that_is_not_a_regular_file_is_refused(repo, tmp_path):
    os.mkfifo(repo / ".env", 0o600)  # reading it would block the orchestrator
    done = run(wrapper(repo), env=base_env(tmp_path, ZT_PYTHON=str(exit_stub(tmp_path, 0))))
    assert done.returncode == 1 and "not a regular file" in done.stderr


# --- signals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stop_signal_is_forwarded_and_the_result_still_logged(repo, tmp_path, sent):
    ready = tmp_path / "ready"
    waiter = stub(tmp_path / "waiter", (
        "def stop(signum, frame):\n"
        "    print(f'stub orchestrator: {signal.Signals(signum).name} received, bot stopped', flush=True)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
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
        proc.send_signal(sent)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "stub orchestrator: SIGTERM received, bot stopped" in out
    assert f"{sent.name} received: forwarding SIGTERM to the orchestrator (PID {ready.read_text()})" in out
    assert result_of(out) == ("SUCCESS", 0)
    assert result_of(log_text(tmp_path / "logs")) == ("SUCCESS", 0)


def test_stop_signal_before_the_orchestrator_starts_means_it_never_starts(repo, tmp_path):
    """SIGTERM while the wrapper is still looking for the interpreter (a slow `poetry env info -e`)."""
    recorder, record = recording_stub(tmp_path)
    asked = tmp_path / "poetry-asked"
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    poetry = fake_bin / "poetry"
    poetry.write_text(f"#!/bin/sh\ntouch {asked}\nsleep 1\necho {recorder}\n")
    poetry.chmod(0o755)
    env = base_env(tmp_path, PATH=f"{fake_bin}:{MINIMAL_PATH}", HOME=str(tmp_path))
    proc = subprocess.Popen([str(wrapper(repo))], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not asked.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 143, out
    assert "SIGTERM received before the orchestrator started: not starting it" in out
    assert result_of(out) == ("FAILED", 143)
    assert not record.exists()


# --- the real thing --------------------------------------------------------------------------------


def test_help_through_the_real_orchestrator(tmp_path):
    """The real script, the project's real .venv interpreter, a minimal environment, another cwd."""
    done = run(SCRIPT, "--help", env=base_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "usage: python -m src.orchestration.startup" in done.stdout
    assert f"Starting production orchestrator: {REPO_ROOT}/.venv/bin/python -m src.orchestration.startup --help" \
        in done.stdout
    assert result_of(done.stdout) == ("SUCCESS", 0)


@pytest.mark.parametrize("args", [["--bogus"], ["--status", "--supervise"]])
def test_a_usage_error_is_failed_exit_1_never_strategy_c(tmp_path, args):
    """Exit 2 is logged as STRATEGY C; the real orchestrator's usage error must be 1, hence FAILED."""
    done = run(SCRIPT, *args, env=base_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "python -m src.orchestration.startup: error: " in done.stdout
    assert result_of(done.stdout) == ("FAILED", 1)
    assert result_of(log_text(tmp_path / "logs")) == ("FAILED", 1)


def test_real_orchestrator_failure_is_logged_and_propagated(tmp_path):
    """A bad setting stops the real orchestrator at once: its one line, then FAILED, exit 1."""
    done = run(SCRIPT, env=base_env(tmp_path, GATEWAY_PORT="0", STATE_DIR=str(tmp_path / "state")), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "startup: configuration error: GATEWAY_PORT='0' is invalid" in done.stdout
    assert result_of(done.stdout) == ("FAILED", 1)
    assert result_of(log_text(tmp_path / "logs")) == ("FAILED", 1)
