"""The generated unit under a real systemd: systemd 252 as PID 1 in a container, driving the host's Docker.

The container (`local/systemd-init:<codename>`, scripts/provision/systemd-image.sh) starts as
../shared/spec/FACTS.md section 5 says works on these machines; the repository, its Python, the Docker
CLI with Compose and the Docker socket are bind-mounted at their own paths, so the unit
`--print-systemd-unit` generates runs there unchanged and starts the simulator Gateway on the host's
Docker. Its environment is a drop-in of `Environment=` lines (the test's Stack: state/, the webhook, the
simulator's Compose project); a second drop-in holds what one case changes.

One host, the cases in order, each what an operator would notice (`systemctl show`, the webhook, the
containers): boot is not held up by a start-up that holds for the login hours; a hold longer than
TimeoutStartSec, then a slow login, completes; `active` comes with the bot's readiness; a stop is
graceful and within TimeoutStopSec; 76 and 78 are not restarted and alert once; a retryable failure is
restarted until the start limit, and then the operator is told; a stop during the start-up is clean.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from src.orchestration.ops.deploy import BOOT_UNIT, FAILURE_UNIT
from src.core.journal import read_runs
from src.core.resetwindows import NEW_YORK
from src.core.statefiles import read_ready_record
from testkit.docker import container_state, docker
from testkit.stack import REPO_ROOT, Stack, wait_until
from tests.helpers.ci import skip_or_fail

pytestmark = pytest.mark.docker

UNIT = "ibkr-zero-touch.service"
UNIT_DIR = Path("/etc/systemd/system")
PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins", "/usr/lib/docker/cli-plugins")
QUIET = {"TRADING_CALENDAR": "ALWAYS", "GATEWAY_DOWN_ALERT_AFTER": "300"}


def _codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    return "none"


IMAGE = f"local/systemd-init:{_codename()}"


def env_line(name: str, value: str) -> str:
    """One `Environment=` line that systemd reads back as exactly NAME=value (quotes, backslashes, %)."""
    quoted = f"{name}={value}".replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'Environment="{quoted}"\n'


class SystemdHost:
    """A container whose PID 1 is systemd; `run` is `docker exec`."""

    def __init__(self, name: str, mounts: list[str]) -> None:
        self.name, self.mounts = name, mounts

    def start(self) -> None:
        docker("run", "-d", "--name", self.name, "--stop-signal", "SIGRTMIN+3",
               "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
               "--security-opt", "apparmor=unconfined", "--cgroupns=private", "--network", "host",
               "--tmpfs", "/run", "--tmpfs", "/run/lock", *[a for m in self.mounts for a in ("-v", m)], IMAGE)
        self.wait_booted()

    def wait_booted(self, timeout: float = 60) -> str:
        """`is-system-running` once boot is over (running, or degraded: some unit of the image failed)."""
        states: list[str] = []

        def booted() -> bool:
            states.append(self.run("systemctl", "is-system-running", check=False).stdout.strip())
            return states[-1] in ("running", "degraded")

        try:
            wait_until(booted, timeout, "systemd to finish booting")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last: {states[-1:]}") from None
        return states[-1]

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.name, *args, check=check, timeout=timeout)

    def write(self, path: Path, text: str) -> None:
        subprocess.run(["docker", "exec", "-i", self.name, "sh", "-c", f"mkdir -p '{path.parent}' && cat > '{path}'"],
                       input=text, text=True, check=True, capture_output=True, timeout=30)

    def show(self, unit: str = UNIT) -> dict[str, str]:
        props = "ActiveState,SubState,Result,StatusText,NRestarts,ExecMainStatus,ExecMainCode"
        out = self.run("systemctl", "show", unit, "-p", props).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def reload(self) -> None:
        self.run("systemctl", "daemon-reload")

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)


@contextmanager
def systemd_host(tmp: Path) -> Iterator[SystemdHost]:
    problem = _unavailable()
    if problem:
        skip_or_fail(problem)
    python_prefix = Path(sys.base_prefix).resolve()
    plugin = _compose_plugin()
    mounts = ["/var/run/docker.sock:/var/run/docker.sock",
              f"{Path(shutil.which('docker') or 'docker').resolve()}:/usr/local/bin/docker:ro",
              *([f"{plugin}:{PLUGIN_DIRS[0]}/docker-compose:ro"] if plugin else []),
              f"{python_prefix}:{python_prefix}:ro", f"{REPO_ROOT}:{REPO_ROOT}:ro", f"{tmp}:{tmp}"]
    host = SystemdHost(f"zt-test-systemd-{uuid.uuid4().hex[:10]}", mounts)
    try:
        host.start()
        yield host
    finally:
        host.run("systemctl", "stop", UNIT, check=False, timeout=120)
        host.remove()


def _compose_plugin() -> Path | None:
    """The host's Compose v2 plugin, its link resolved (scripts/provision/engine.sh may link it into a venv)."""
    for d in (*PLUGIN_DIRS, str(Path.home() / ".docker" / "cli-plugins")):
        if (Path(d) / "docker-compose").exists():
            return (Path(d) / "docker-compose").resolve()
    return None


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the systemd host runs the unit as root (the unit's User= is this user): run as root"
    if shutil.which("docker") is None or docker("image", "inspect", IMAGE, check=False).returncode != 0:
        return f"no {IMAGE}: provision it with: bash scripts/provision-docker.sh"
    return None


def generated(stack: Stack, flag: str, env: Mapping[str, str]) -> str:
    """What `--print-systemd-unit` / `--print-failure-unit` prints for this configuration."""
    result = subprocess.run([sys.executable, "-m", "src.orchestration.startup", flag], cwd=REPO_ROOT,
                            env={**os.environ, **stack.env(**env)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def install(host: SystemdHost, stack: Stack, case: Mapping[str, str], unit_lines: str = "", **env: str) -> None:
    """The generated units, the Stack's environment for both, and this case's changes; then daemon-reload."""
    environment = stack.env(**QUIET, **env)
    host.write(UNIT_DIR / UNIT, generated(stack, "--print-systemd-unit", {**QUIET, **env}))
    host.write(UNIT_DIR / FAILURE_UNIT, generated(stack, "--print-failure-unit", {**QUIET, **env}))
    host.write(UNIT_DIR / BOOT_UNIT, generated(stack, "--print-boot-unit", {**QUIET, **env}))
    lines = "".join(env_line(k, v) for k, v in sorted(environment.items()))
    for unit in (UNIT, FAILURE_UNIT):
        host.write(UNIT_DIR / f"{unit}.d" / "10-test.conf", "[Service]\n" + lines)
    case_lines = "".join(env_line(k, v) for k, v in case.items())
    host.write(UNIT_DIR / f"{UNIT}.d" / "20-case.conf", unit_lines + "[Service]\n" + case_lines)
    host.reload()


def wait_show(host: SystemdHost, what: str, condition, timeout: float) -> dict[str, str]:  # noqa: ANN001
    seen: list[dict[str, str]] = []

    def check() -> bool:
        seen.append(host.show())
        return bool(condition(seen[-1]))

    try:
        wait_until(check, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen[-1:]}") from None
    return seen[-1]


def next_minute_at_least(seconds: float) -> datetime:
    """The first New York minute boundary at least `seconds` from now."""
    now = datetime.now(NEW_YORK)
    boundary = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return boundary if (boundary - now).total_seconds() >= seconds else boundary + timedelta(minutes=1)


def test_the_generated_unit_under_a_real_systemd(stack: Stack) -> None:
    stack.sim = {"login_delay": 6}  # a slow login, as a 2FA approval is
    with systemd_host(stack.tmp) as host:
        # --- boot is not held up by a start-up that holds for the login hours, and a stop the operator asks
        # for during that start-up is clean: no failure, no alert
        later = datetime.now(NEW_YORK) + timedelta(hours=3)
        install(host, stack, {}, GATEWAY_LOGIN_HOURS=f"daily {later:%H:%M}-{later + timedelta(hours=1):%H:%M}")
        host.run("systemctl", "enable", UNIT)
        docker("restart", "-t", "20", host.name, timeout=60)  # a reboot, with the unit enabled
        host.wait_booted()  # boot is over ...
        wait_show(host, "the start-up holding", lambda s: s["ActiveState"] == "activating"
                  and "GATEWAY_LOGIN_HOURS" in s["StatusText"], 30)  # ... and the hold is not
        assert host.run("systemctl", "is-system-running", check=False).stdout.strip() in ("running", "degraded")
        before = len(stack.hook.received)
        host.run("systemctl", "stop", UNIT, timeout=120)
        shown = host.show()
        assert shown["ActiveState"] == "inactive" and shown["Result"] == "success", shown
        time.sleep(2)  # an OnFailure alert would come now
        assert not any("gave up" in a or "FAILED" in a for a in stack.alerts(before)), stack.alerts(before)

        # --- a hold longer than TimeoutStartSec, then a slow login, complete; `active` comes with the bot's
        # readiness
        opens = next_minute_at_least(8)
        hours = f"daily {opens:%H:%M}-{opens + timedelta(hours=2):%H:%M}"
        install(host, stack, {}, "[Service]\nTimeoutStartSec=4\n", GATEWAY_LOGIN_HOURS=hours,
                GATEWAY_LOGIN_BUDGET="1")
        host.run("systemctl", "start", "--no-block", UNIT)
        wait_show(host, "the hold in the status text", lambda s: "GATEWAY_LOGIN_HOURS" in s["StatusText"], 20)
        shown = wait_show(host, "the unit active", lambda s: s["ActiveState"] != "activating",
                          (opens - datetime.now(NEW_YORK)).total_seconds() + 90)
        assert shown["ActiveState"] == "active" and shown["NRestarts"] == "0", shown
        assert (read_ready_record(stack.state_dir) or {}).get("connection") == "connected"
        assert "bot" in shown["StatusText"] and "FAILED" not in shown["StatusText"], shown

        # --- a stop is graceful, within TimeoutStopSec, and nobody is alerted as of a failure
        before = len(stack.hook.received)
        stop_sec = int(re.search(r"^TimeoutStopSec=(\d+)$", generated(stack, "--print-systemd-unit", QUIET),
                                 re.M).group(1))  # type: ignore[union-attr]
        started = time.monotonic()
        host.run("systemctl", "stop", UNIT, timeout=180)
        took = time.monotonic() - started
        shown = host.show()
        assert shown["ActiveState"] == "inactive" and shown["Result"] == "success", shown
        assert took < stop_sec, (took, stop_sec)
        assert not any("FAILED" in a or "gave up" in a or "DOWN" in a for a in stack.alerts(before))

        # --- 76 (the login budget spent: the Gateway is gone and the one login of the day was spent) is not
        # restarted, and alerted once: by the orchestrator, not again by the OnFailure unit
        docker("rm", "-f", stack.container)
        install(host, stack, {}, GATEWAY_LOGIN_BUDGET="1")
        before = len(stack.hook.received)
        host.run("systemctl", "start", "--no-block", UNIT)
        shown = wait_show(host, "exit 76", lambda s: s["ActiveState"] == "failed", 90)
        assert shown["ExecMainStatus"] == "76" and shown["NRestarts"] == "0", shown
        assert "exit 76" in shown["StatusText"], shown
        time.sleep(3)  # the OnFailure unit runs now: the behaviour under test is that it adds no alert
        said = stack.alerts(before)
        assert sum("budget" in a for a in said) == 1 and not any("gave up" in a for a in said), said
        assert container_state(stack.container) is None  # no login was attempted

        # --- 78 (a bad setting) is not restarted; the status text names what to fix
        host.run("systemctl", "reset-failed", UNIT)
        install(host, stack, {"GATEWAY_DOWN_ALERT_AFTER": "soon"})
        host.run("systemctl", "start", "--no-block", UNIT)
        shown = wait_show(host, "exit 78", lambda s: s["ActiveState"] == "failed", 60)
        assert shown["ExecMainStatus"] == "78" and shown["NRestarts"] == "0", shown
        assert "GATEWAY_DOWN_ALERT_AFTER" in shown["StatusText"], shown

        # --- a retryable failure (the bot dies at once) is restarted until the start limit; then the
        # OnFailure unit tells the operator that systemd gave up
        host.run("systemctl", "reset-failed", UNIT)
        install(host, stack, {"BOT_COMMAND": "/bin/false", "GATEWAY_LOGIN_BUDGET": "10"},
                "[Unit]\nStartLimitIntervalSec=600\nStartLimitBurst=2\n[Service]\nRestartSec=1\n")
        before = len(stack.hook.received)
        host.run("systemctl", "start", "--no-block", UNIT)
        # (systemd keeps the first failure's Result, exit-code: failed, and no restart pending, is the limit)
        shown = wait_show(host, "the start limit", lambda s: s["ActiveState"] == "failed"
                          and s["SubState"] == "failed", 150)
        assert shown["ExecMainStatus"] == "1" and int(shown["NRestarts"]) >= 1, shown
        runs = [r for r in read_runs(stack.state_dir) if "the bot did not start" in str(r.get("reason"))]
        seen = [(r["started_at"], r["exit_code"], str(r["reason"])[:50]) for r in runs]
        assert len(runs) == 2, seen  # StartLimitBurst=2: the start and one restart ran, the next was refused
        wait_until(lambda: any("systemd stopped restarting" in a for a in stack.alerts(before)), 30,
                   "the OnFailure alert")
