"""The soak (issue "No silent stop"): `--supervise` against the simulator Gateway for MINUTES under random faults.

    bash scripts/soak.sh [--minutes 30] [--seed N] [--out docs/RELIABILITY.md] [--json FILE]

Real Docker, Compose, the simulator image, the firewall and the bot, as in tests/integration. This script plays
systemd's part: it relaunches the supervisor RESTART_SEC after an exit that `Restart=on-failure` restarts (not
76-78, which need a human). One fault at a time, chosen at random (seeded), then watched until the system is
up again (`--status` exits 0: Gateway, API through the firewall, bot ready) or WINDOW seconds pass:

* recovered by itself: up again with no alert; alerted: the operator was told (recovered or not);
* silent: neither up again nor alerted within WINDOW. The soak's verdict needs 0.

At the end: the supervisor stopped (SIGTERM), then orphans (a process still running with this soak's STATE_DIR,
must be 0) and unparseable lines in every journal under state/ and logs/ (must be 0). The results go to `--json`
and, with `--out`, into the report's soak section.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.report import replace_section  # noqa: E402
from src.orchestration.machine.bot import running_bot  # noqa: E402
from src.core.statefiles import read_ready_record  # noqa: E402
from testkit.docker import docker  # noqa: E402
from testkit.stack import Stack  # noqa: E402
from testkit.webhook import WebhookReceiver  # noqa: E402

RESTART_SEC = 5.0  # the unit's RestartSec, shortened: the soak measures recovery, not waiting
WINDOW = 240.0  # seconds a fault has to be recovered from, or alerted, before it counts as silent
SETTLE = 10.0  # quiet seconds between one fault's end and the next
NO_RESTART = {76, 77, 78}
START, END = "<!-- soak:start -->", "<!-- soak:end -->"
SETTINGS = {  # the supervised run's: every fault costs something a week would not, so budgets are wide
    "TRADING_CALENDAR": "ALWAYS", "GATEWAY_DOWN_ALERT_AFTER": "30", "GATEWAY_LOGIN_BUDGET": "20",
    "GATEWAY_SOFT_RESTART_BUDGET": "20", "GATEWAY_HEALTH_TIMEOUT": "60", "BOT_READY_TIMEOUT": "30",
}


@dataclass
class Fault:
    name: str
    at: float  # monotonic
    alerts_before: int
    detail: str = ""
    recovered_after: float | None = None
    alerts: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return classify(self.recovered_after is not None, bool(self.alerts))


def classify(recovered: bool, alerted: bool) -> str:
    """One fault's outcome: the operator is told, or the system heals itself, or it is silent."""
    if alerted:
        return "alerted"
    return "recovered" if recovered else "silent"


class Soak:
    def __init__(self, stack: Stack, rng: random.Random) -> None:
        self.stack, self.rng = stack, rng
        self.proc: subprocess.Popen[str] | None = None
        self.exits: list[int] = []
        self.faults: list[Fault] = []
        self.gave_up: str | None = None
        self.injected_lines: dict[str, int] = {}  # journal lines the soak itself wrote as garbage, by file

    # --- systemd's part ------------------------------------------------------------------------------

    def launch(self) -> None:
        self.proc = self.stack.launch("--supervise", **SETTINGS)

    def keep_running(self) -> None:
        if self.proc is None or self.proc.poll() is None:
            return
        code = self.proc.returncode
        self.exits.append(code)
        said = self.proc.stderr.read().strip().splitlines()[-1:] if self.proc.stderr is not None else []
        if code in NO_RESTART:
            self.gave_up = f"the supervisor exited {code}: a human is needed (not restarted): {said}"
            self.proc = None
            return
        time.sleep(RESTART_SEC)
        self.launch()

    def up(self) -> bool:
        result = subprocess.run([sys.executable, "-m", "src.orchestration.startup", "--status"], cwd=ROOT,
                                env=self.stack.env(**SETTINGS), capture_output=True, text=True, timeout=60)
        return result.returncode == 0

    # --- the faults ------------------------------------------------------------------------------------

    def faults_available(self) -> dict[str, Callable[[], str]]:
        faults: dict[str, Callable[[], str]] = {
            "gateway killed": lambda: self._docker_kill(self.stack.container),
            "firewall killed": lambda: self._docker_kill(self.stack.gateway.firewall),
            "bot killed": self._kill_bot,
            "API frozen": lambda: self._outage("freeze", self.rng.randint(60, 180)),
            "IBKR link lost (1100)": lambda: self._outage("ib-lost", self.rng.randint(60, 180)),
            "API closed": lambda: self._outage("closed", self.rng.randint(20, 90)),
            "state file corrupted": self._corrupt_state,
        }
        if os.geteuid() == 0:
            faults["state disk full"] = self._disk_full
        return faults

    def _docker_kill(self, container: str) -> str:
        docker("kill", container, check=False)
        return container

    def _kill_bot(self) -> str:
        record = read_ready_record(self.stack.state_dir) or {}
        pid = running_bot(self.stack.state_dir)
        if pid is None:
            return "no bot running (nothing killed)"
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return f"PID {pid} ({record.get('connection', '?')})"

    def _outage(self, kind: str, seconds: int) -> str:
        script = f"exec 3<>/dev/tcp/127.0.0.1/7462; echo 'SIMOUTAGE {kind} {seconds}' >&3; head -n1 <&3"
        said = docker("exec", self.stack.container, "bash", "-c", script, check=False).stdout.strip()
        return f"{kind} for {seconds} s: {said}"

    def _corrupt_state(self) -> str:
        names = sorted(p.name for p in self.stack.state_dir.iterdir() if p.is_file())
        name = self.rng.choice(names)
        garbage = self.rng.choice([b"", b"\x00" * 64, b"{not json", os.urandom(200), b'{"pid": "1"}\n'])
        (self.stack.state_dir / name).write_bytes(garbage)
        if name.endswith(".jsonl") and garbage.strip():  # not the system's lines: excluded from the verdict
            self.injected_lines[name] = self.injected_lines.get(name, 0) + len(garbage.splitlines())
        return f"{name} <- {garbage[:16]!r}"

    def _disk_full(self) -> str:
        filler = self.stack.state_dir / "soak-filler"
        with contextlib.suppress(OSError), open(filler, "wb") as out:
            while True:
                out.write(b"\0" * (1 << 20))
        self._filler = filler
        return "state/ tmpfs filled for 45 s"

    def after_fault(self, fault: Fault) -> None:
        if fault.name == "state disk full":
            time.sleep(45)
            self._filler.unlink(missing_ok=True)

    # --- the run -----------------------------------------------------------------------------------------

    def watch(self, fault: Fault) -> None:
        deadline = fault.at + WINDOW
        time.sleep(3)  # let the fault land before looking for its recovery
        while time.monotonic() < deadline:
            self.keep_running()
            if self.gave_up:
                break
            if self.up():
                fault.recovered_after = time.monotonic() - fault.at
                break
            time.sleep(2)
        time.sleep(5)  # an alert on its way
        fault.alerts = self.stack.alerts(fault.alerts_before)

    def run(self, minutes: float, log: Callable[[str], None]) -> None:
        self.launch()
        wait_up = time.monotonic() + 180
        while not self.up():
            self.keep_running()
            if time.monotonic() > wait_up or self.gave_up:
                raise RuntimeError(f"the supervised system never came up: {self.gave_up or 'timeout'}")
            time.sleep(2)
        log("up: injecting faults")
        end = time.monotonic() + minutes * 60
        available = self.faults_available()
        while time.monotonic() < end and not self.gave_up:
            name = self.rng.choice(sorted(available))
            fault = Fault(name, time.monotonic(), len(self.stack.hook.received))
            fault.detail = available[name]()
            self.after_fault(fault)
            self.watch(fault)
            self.faults.append(fault)
            log(f"{name} ({fault.detail}): {fault.verdict}"
                + (f" after {fault.recovered_after:.0f} s" if fault.recovered_after is not None else "")
                + (f"; alerts: {[a[:60] for a in fault.alerts]}" if fault.alerts else ""))
            time.sleep(SETTLE)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        return self.proc.returncode


def orphans(state_dir: Path) -> list[str]:
    """Processes still running with this soak's STATE_DIR (the supervisor, its bot, a docker CLI it ran)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid != os.getpid() and proc.environ().get("STATE_DIR") == str(state_dir):
                found.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])[:80]}")
    return found


def unparseable(*dirs: Path) -> dict[str, int]:
    """Journal lines (*.jsonl) that are not one JSON object each, by file."""
    bad: dict[str, int] = {}
    for directory in dirs:
        for path in sorted(directory.glob("*.jsonl")):
            for line in path.read_bytes().splitlines():
                try:
                    ok = isinstance(json.loads(line), dict)
                except ValueError:
                    ok = False
                if not ok:
                    bad[path.name] = bad.get(path.name, 0) + 1
    return bad


def system_written(unparseable: dict[str, int], injected: dict[str, int]) -> int:
    """Unparseable journal lines the system wrote: the soak's own corrupted lines are not counted."""
    return sum(max(0, n - injected.get(name, 0)) for name, n in unparseable.items())


def report(results: dict[str, Any]) -> str:
    counts, faults = results["counts"], results["faults"]
    injected = results.get("injected_unparseable", {})
    written = system_written(results["unparseable"], injected)
    def after(f: dict[str, Any]) -> str:
        return "" if f["recovered_after"] is None else f"{f['recovered_after']:.0f} s"

    rows = "\n".join(f"| {f['name']} | {f['detail']} | {f['verdict']} | {after(f)} | "
                     f"{'; '.join(a[:80].replace('|', '/') for a in f['alerts'][:2])} |" for f in faults)
    return "\n".join([
        START,
        "## The soak",
        "",
        f"_Generated by `bash scripts/soak.sh --minutes {results['minutes']:g} --seed {results['seed']}` on "
        f"{results['at']} (git {results['git']}): `--supervise` against the simulator Gateway (real Docker, "
        "Compose, firewall and bot) under one random fault at a time; the script relaunches the supervisor "
        f"{RESTART_SEC:g} s after an exit systemd would restart. A fault is **recovered** when `--status` exits 0 "
        f"again with no alert, **alerted** when the operator was told, **silent** when neither happened within "
        f"{WINDOW:g} s._",
        "",
        "| faults injected | recovered by themselves | alerted | silent (must be 0) | orphan processes (0) | "
        "unparseable journal lines (0) | supervisor exits (relaunched) | stop |",
        "|---|---|---|---|---|---|---|---|",
        f"| {counts['injected']} | {counts['recovered']} | {counts['alerted']} | **{counts['silent']}** | "
        f"{len(results['orphans'])} | {written} ({sum(injected.values())} more injected by the soak itself) | "
        f"{', '.join(map(str, results['exits'])) or 'none'} | exit {results['stop_exit']} |",
        "",
        "| fault | what was done | verdict | up again after | alerts (first two) |",
        "|---|---|---|---|---|",
        rows,
        "",
        *([f"Stopped early: {results['gave_up']}", ""] if results.get("gave_up") else []),
        END,
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bash scripts/soak.sh", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    p.add_argument("--json", type=Path, default=ROOT / "logs" / "soak.json")
    p.add_argument("--out", type=Path, help="the report whose soak section is (re)written (docs/RELIABILITY.md)")
    p.add_argument("--report-only", action="store_true", help="no run: the report from --json's results")
    args = p.parse_args(argv)
    if args.report_only:
        results = json.loads(args.json.read_text())
        if args.out:
            write_section(args.out, report(results))
        return verdict(results)

    def log(line: str) -> None:
        print(f"soak {datetime.now(UTC):%H:%M:%S}: {line}", flush=True)

    rng = random.Random(args.seed)  # noqa: S311 - which fault next, not a secret
    tmp = Path(tempfile.mkdtemp(prefix="zt-soak-"))
    state = tmp / "state"
    state.mkdir()
    mounted = False
    if os.geteuid() == 0:  # a small real disk for state/, so "disk full" is real
        mount = ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", str(state)]
        mounted = subprocess.run(mount, capture_output=True).returncode == 0  # noqa: S603
    with WebhookReceiver() as hook:
        stack = Stack(tmp, hook, sim={"login_delay": 1, "restart_delay": 2})
        soak = Soak(stack, rng)
        stop_exit = None
        try:
            soak.run(args.minutes, log)
        finally:
            stop_exit = soak.stop()
            time.sleep(2)
            left = orphans(stack.state_dir)
            bad = unparseable(stack.state_dir, stack.log_dir)
            stack.down()
            if mounted:
                subprocess.run(["umount", "-l", str(state)], capture_output=True)  # noqa: S607
    faults = [{"name": f.name, "detail": f.detail, "verdict": f.verdict, "recovered_after": f.recovered_after,
               "alerts": f.alerts} for f in soak.faults]
    counts = {"injected": len(faults), **{k: sum(f["verdict"] == k for f in faults)
                                          for k in ("recovered", "alerted", "silent")}}
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - the PATH's git
                         cwd=ROOT, capture_output=True, text=True)
    results = {"minutes": args.minutes, "seed": args.seed, "at": f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
               "git": git.stdout.strip() or "?", "counts": counts, "faults": faults, "exits": soak.exits,
               "stop_exit": stop_exit, "orphans": left, "unparseable": bad,
               "injected_unparseable": soak.injected_lines, "gave_up": soak.gave_up}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.out:
        write_section(args.out, report(results))
    code = verdict(results)
    log(f"{counts}; orphans {len(left)}; unparseable written {system_written(bad, soak.injected_lines)}: "
        f"{'PASS' if code == 0 else 'FAIL'}")
    return code


def verdict(results: dict[str, Any]) -> int:
    """0 when nothing was silent, nothing orphaned, and every journal line the system wrote parses."""
    counts = results["counts"]
    written = system_written(results["unparseable"], results.get("injected_unparseable", {}))
    return 0 if counts["silent"] == 0 and not results["orphans"] and written == 0 and counts["injected"] else 1


def write_section(path: Path, section: str) -> None:
    path.write_text(replace_section(path.read_text(), section, START, END))


if __name__ == "__main__":
    sys.exit(main())
