"""The benchmark's world: Docker, the simulator Gateway under Compose, run directories, processes.

Everything here is bounded: every docker call and every process has a timeout, every
Compose project the bench creates has a unique name (`zt-bench-<hex>`), its own container
name and a free port on 127.0.0.1, and is always taken down (`down -v`) in a `finally`.
Nothing talks to any address but 127.0.0.1 and the containers started here.

Clocks: the simulator writes `logged_in_at` with `time.time()` inside its container; a
container shares the host kernel's clock (there is no per-container wall clock), so that
float, the orchestrator's UTC journal timestamps and this process's `time.time()` are all
readings of one clock and may be subtracted.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from src.core.settings import SETTINGS
from src.core.statefiles import BOT_PID_FILE, read_ready_record
from src.orchestration.config import OrchestrationConfig
from testkit.docker import docker
from testkit.docker import docker_problem as _docker_problem
from testkit.gateway import SIMULATOR_IMAGE, SimGateway, unique_project
from testkit.repo_env import hide_repo_dotenv
from testkit.rundir import RunDir as BaseRunDir
from testkit.schedule import off_calendar

REPO_ROOT = Path(__file__).resolve().parents[1]
NO_HEALTHCHECK_FILE = Path(__file__).resolve().parent / "compose" / "no-healthcheck.yml"
PRODUCTION_HEALTHCHECK_FILE = Path(__file__).resolve().parent / "compose" / "production-healthcheck.yml"
# The container's Docker healthcheck, by variant: the extra Compose files on top of SIM_FILES.
VARIANTS: dict[str, list[Path]] = {
    "sim": [],  # the simulator's own: a Python TWS handshake every ${SIM_HEALTH_INTERVAL:-1s}
    "production-like": [PRODUCTION_HEALTHCHECK_FILE],  # the production file's api-healthcheck.sh, every 5 s
    "no-healthcheck": [NO_HEALTHCHECK_FILE],  # none at all (the bare image, without our Compose file)
}
PROJECT_PREFIX = "zt-bench-"
SIM_STATE_PATH = "/tmp/sim_state.json"  # noqa: S108 - a path INSIDE the container (its HOME, user 10001)
BOT_GRACE = 20.0  # after a design says "done", how long the bench waits to see the bot ready


class BenchError(Exception):
    """Something the bench needs did not work (a Gateway that never logs in, a run that timed out);
    a docker command that fails raises testkit.docker.DockerFailed."""


# --- docker (testkit.docker) ------------------------------------------------------------------

def docker_problem() -> str | None:
    """None when Docker, Compose v2 and the simulator image are usable; else why not."""
    return _docker_problem(SIMULATOR_IMAGE)


def parse_utc(text: str) -> float:
    """An ISO-8601 timestamp with offset (the journal's) as a POSIX time."""
    return datetime.fromisoformat(text).timestamp()


# --- one Gateway: a Compose project of the simulator -----------------------------------------

@dataclass
class Gateway(SimGateway):
    """One simulator Gateway in its own Compose project (testkit.gateway.SimGateway, `zt-bench-...`),
    logging in `login_delay` s after its start and recording when in SIM_STATE_PATH; nothing
    exists until someone `up`s it. `sim`: extra SIM_* settings, without the prefix."""

    login_delay: float
    variant: str = "sim"  # a key of VARIANTS: which Docker healthcheck the container has
    project: str = field(default_factory=lambda: unique_project(PROJECT_PREFIX), kw_only=True)

    def __post_init__(self) -> None:
        self.sim = {"login_delay": f"{self.login_delay:g}", "state_file": SIM_STATE_PATH, **self.sim}
        self.files = tuple(str(f) for f in VARIANTS[self.variant])

    @property
    def healthcheck(self) -> bool:
        return self.variant != "no-healthcheck"

    def up(self, wait_logged_in: bool = True, timeout: float = 120) -> None:  # type: ignore[override]
        """Create and start it (never builds or pulls); optionally wait until the simulator logged in."""
        super().up(healthy_within=None, timeout=timeout)
        if wait_logged_in:
            deadline = time.monotonic() + self.login_delay + timeout
            while self.logged_in_at() is None:
                if time.monotonic() > deadline:
                    raise BenchError(f"{self.container} did not log in within {self.login_delay + timeout:g} s")
                time.sleep(0.2)
            if self.healthcheck:
                while (self.state() or {}).get("Health", {}).get("Status") != "healthy":
                    if time.monotonic() > deadline:
                        raise BenchError(f"{self.container} not healthy in time: {self.state()}")
                    time.sleep(0.1)

    def healthy_at(self, timeout: float) -> float | None:
        """When Docker's healthcheck first passed (the end of that probe, from State.Health.Log),
        waiting up to `timeout` for it; None without a healthcheck or if it did not pass in time."""
        if not self.healthcheck:
            return None
        deadline = time.monotonic() + timeout
        while True:
            health = (self.state() or {}).get("Health") or {}
            entries = sorted((e for e in health.get("Log") or [] if e.get("End")), key=lambda e: parse_utc(e["End"]))
            first = next((i for i, e in enumerate(entries) if e.get("ExitCode") == 0), None)
            if health.get("Status") == "healthy" and first is not None:
                # Docker keeps the last 5 probes: a pass that is the oldest of a full log may not be the first
                return parse_utc(entries[first]["End"]) if first > 0 or len(entries) < 5 else None
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)

    def logged_in_at(self) -> float | None:
        """The simulator's own login moment (time.time() in the container), or None before login."""
        result = docker("exec", self.container, "cat", SIM_STATE_PATH, check=False, timeout=20)
        if result.returncode != 0:
            return None
        try:
            return float(json.loads(result.stdout)["logged_in_at"])
        except (ValueError, KeyError, TypeError):
            return None

    def host_connections_before_login(self) -> int:
        """Connections to the API port that came from the host (via Docker's port publishing),
        before the simulator logged in. The container's own healthcheck connects from 127.0.0.1
        inside the container and is not counted."""
        count = 0
        for line in self.logs().splitlines():
            if "IBC: Login has completed" in line:
                break
            if "API: connection from " in line and "connection from 127.0.0.1:" not in line:
                count += 1
        return count


# --- run directories --------------------------------------------------------------------

@dataclass(frozen=True)
class RunDir(BaseRunDir):
    """One contender run's own state/, logs/ and plan (testkit.rundir.RunDir): nothing is shared between runs."""

    @classmethod
    def make(cls, parent: Path, name: str) -> RunDir:
        run = cls(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=parent)))
        run.prepare()
        return run

    @property
    def events(self) -> Path:
        return self.root / "events.json"


def bot_args(gateway: Gateway, run: RunDir) -> list[str]:
    """Exactly the arguments the orchestrator gives the bot (src/orchestration/startup.py _start_bot)."""
    defaults = OrchestrationConfig
    return ["--gateway-host", "127.0.0.1", "--gateway-port", str(gateway.port), "--gameplan", str(run.plan),
            "--log-level", defaults.bot_log_level, "--client-id", str(defaults.bot_client_id),
            "--health-client-id", str(defaults.gateway_health_client_id), "--state-dir", str(run.state)]


def wait_ready(state_dir: Path, pid: int | None, timeout: float = BOT_GRACE) -> dict[str, Any] | None:
    """The bot's readiness record, waiting up to `timeout` while the bot is alive."""
    deadline = time.monotonic() + timeout
    while True:
        record = read_ready_record(state_dir)
        if record is not None:
            return record
        if pid is None or not pid_alive(pid) or time.monotonic() > deadline:
            return read_ready_record(state_dir)
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(pid: int | None, timeout: float = 10.0) -> None:
    """SIGTERM a bot this bench started (by its PID), wait, SIGKILL if it lingers."""
    if not pid or pid <= 0 or not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            return
        time.sleep(0.02)


def bot_pid_in(state_dir: Path) -> int | None:
    """The PID written in state/bot.pid (the bot writes it under its flock), if any."""
    try:
        text = (state_dir / BOT_PID_FILE).read_text(encoding="ascii").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


# --- measured processes -----------------------------------------------------------------------

@dataclass
class Measured:
    """One contender process: wall-clock start/end, exit code, rusage, optional samples."""

    t0: float
    t_end: float
    code: int
    user: float  # CPU seconds of the process and every descendant it waited for (rusage)
    system: float
    maxrss_mb: float  # rusage ru_maxrss; NOT a memory figure to report: it includes the bench's own
    # pages the child had between fork and exec (peak RSS comes from VmHWM, see _Sampler)
    samples: list[tuple[float, ...]] = field(default_factory=list)  # (t, cpu tree, rss own, rss tree, cpu own)
    hwm_mb: float | None = None  # VmHWM of the process itself (its own peak RSS)
    timed_out: bool = False

    @property
    def wall(self) -> float:
        return self.t_end - self.t0

    def cpu_between(self, a: float, b: float, own: bool = False) -> float | None:
        """CPU seconds of the whole process tree (or of the process alone) between wall-clock
        instants a and b, interpolated between samples."""
        if len(self.samples) < 2:
            return None
        col = 4 if own else 1
        return _interp(self.samples, b, col) - _interp(self.samples, a, col)

    def peak_tree_mb(self, a: float | None = None, b: float | None = None) -> float | None:
        values = [s[3] for s in self.samples if (a is None or s[0] >= a) and (b is None or s[0] <= b)]
        return max(values) if values else None


def _interp(samples: list[tuple[float, ...]], t: float, col: int = 1) -> float:
    if t <= samples[0][0]:
        return samples[0][col]
    for s1, s2 in itertools.pairwise(samples):
        (t1, c1), (t2, c2) = (s1[0], s1[col]), (s2[0], s2[col])
        if t1 <= t <= t2:
            return c1 if t2 == t1 else c1 + (c2 - c1) * (t - t1) / (t2 - t1)
    return samples[-1][col]


class _Sampler(threading.Thread):
    """Samples a process tree's cumulative CPU time and RSS every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, ...]] = []
        self.hwm_mb: float | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._halt.is_set():
            try:
                with root.oneshot():
                    t = root.cpu_times()
                    cpu_own = t.user + t.system
                    cpu = cpu_own + t.children_user + t.children_system
                    rss_own = root.memory_info().rss
                kids = root.children(recursive=True)
                rss_tree = rss_own
                for kid in kids:
                    with contextlib.suppress(psutil.Error):
                        k = kid.cpu_times()
                        cpu += k.user + k.system + k.children_user + k.children_system
                        rss_tree += kid.memory_info().rss
                self.samples.append((time.time(), cpu, rss_own / 2**20, rss_tree / 2**20, cpu_own))
                self.hwm_mb = _vm_hwm_mb(self.pid) or self.hwm_mb
            except psutil.Error:
                return
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_measured(cmd: list[str], *, env: Mapping[str, str], cwd: Path, timeout: float, out: Path,
                 sample: bool = False) -> Measured:
    """Run `cmd` in its own session, output to `out`; its end is seen at once (pidfd), its
    rusage read with wait4. On timeout the whole process group is killed."""
    with open(out, "ab") as log:
        t0 = time.time()
        proc = subprocess.Popen(cmd, env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    sampler = _Sampler(proc.pid) if sample else None
    if sampler:
        sampler.start()
    timed_out = False
    try:
        fd = os.pidfd_open(proc.pid)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if not poller.poll(timeout * 1000):
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        finally:
            os.close(fd)
        _, status, usage = os.wait4(proc.pid, 0)
        t_end = time.time()
    finally:
        if sampler:
            sampler.stop()
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped here: keep Popen from trying again
    return Measured(t0, t_end, code, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024,
                    sampler.samples if sampler else [], sampler.hwm_mb if sampler else None, timed_out)


def base_env() -> dict[str, str]:
    """This process's environment without anything that would steer a contender elsewhere: no setting
    the project declares, nothing the simulator, Compose or systemd's notify socket would read."""
    drop = ("SIM_", "COMPOSE_", "GATEWAY_", "BOT_", "DISCORD_", "NOTIFY_SOCKET")
    names = {s.name for s in SETTINGS}
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k not in names}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(off_calendar())  # IBKR's reset windows must not change a measurement by the hour it runs
    return hide_repo_dotenv(env)  # nor anything the developer's own .env says


@contextlib.contextmanager
def workspace(keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="zt-bench-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
