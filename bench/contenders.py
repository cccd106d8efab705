"""Run one contender once against one Gateway and say what happened, as a flat dict (a "sample").

Contenders:
  project  `python -m src.orchestration.startup` (this project), default settings unless told
  handoff  `python -m bench.baselines.handoff` (the handoff's design, for its timing)
  common   `bash bench/baselines/common_practice.sh` (compose up --wait + fixed sleep + bot)

Every sample carries wall-clock instants (time.time(), one clock for host and containers):
  t0            the contender process was started
  t_end         it exited (for a supervisor, that is when the design says "done")
  detected_at   when the design decided the Gateway was ready (project: its GATEWAY_VALIDATED
                transition; handoff: its wait loop saw Docker health + an open port; common:
                its fixed sleep ended)
  bot_ready_at  when the bot itself wrote state/bot_ready.json (it does so only once ib_async
                is connected): the moment the bot can really trade
  ready_at_claim  whether that record existed when the design said "done"
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.env import (
    BOT_GRACE,
    REPO_ROOT,
    Gateway,
    Measured,
    RunDir,
    base_env,
    bot_args,
    bot_pid_in,
    parse_utc,
    pid_alive,
    run_measured,
    stop_pid,
    wait_ready,
)
from src.core.settings import CONFIG_SETTINGS
from src.core.statefiles import EMERGENCY_PLAN_FILE, RUNS_FILE, read_ready_record
from testkit.gateway import COMPOSE_DIR
from testkit.schedule import off_calendar

COMMON_SCRIPT = REPO_ROOT / "bench" / "baselines" / "common_practice.sh"
LABELS = {
    "project": "this project",
    "handoff": "handoff design",
    "common": "common practice",
    "watchdog": "ib_async Watchdog (defaults)",  # scenario 7's baseline: bench/baselines/watchdog.py
}

# Every variable the orchestrator reads (not Compose's own, which Gateway.compose_env sets): those the
# bench does not set are set empty (= default), so a developer's .env cannot change what is measured.
_ORCH_VARS = tuple(s.name for s in CONFIG_SETTINGS)


def _sample(contender: str, gw: Gateway, m: Measured, **fields: Any) -> dict[str, Any]:
    return {"contender": contender, "login_delay": gw.login_delay, "healthcheck": gw.healthcheck,
            "compose_project": gw.project,
            "t0": m.t0, "t_end": m.t_end, "wall": m.wall, "exit_code": m.code, "timed_out": m.timed_out,
            "cpu_s": m.user + m.system, "maxrss_mb": m.maxrss_mb, **fields}


def _bot_outcome(run: RunDir, pid: int | None, claimed: bool, grace: float = BOT_GRACE) -> dict[str, Any]:
    """Was the bot ready when the design said done, and (within `grace`) at all?"""
    at_claim = read_ready_record(run.state)
    record = at_claim if at_claim is not None else (wait_ready(run.state, pid, grace) if claimed else None)
    return {
        "bot_pid": pid,
        "ready_at_claim": at_claim is not None,
        "bot_ready_at": parse_utc(record["started_at"]) if record else None,
        "bot_alive": bool(pid and pid_alive(pid)),
    }


def stop_bots(run: RunDir, *pids: int | None) -> None:
    """Stop every bot this run started: the PIDs the design reported and the one holding bot.pid."""
    for pid in {*pids, bot_pid_in(run.state)}:
        stop_pid(pid)


# --- this project -----------------------------------------------------------------------------

def project_env(gw: Gateway, run: RunDir, settings: dict[str, str] | None = None) -> dict[str, str]:
    env = gw.compose_env(base_env())
    env.update({name: "" for name in _ORCH_VARS})
    env.update(off_calendar())  # base_env's, which the line above just emptied: no reset window by the hour
    env.update(GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(gw.port), GATEWAY_CONTAINER=gw.container,
               GATEWAY_SERVICE="gateway", DOCKER_COMPOSE_DIR=str(COMPOSE_DIR),
               STATE_DIR=str(run.state), LOG_DIR=str(run.logs),
               EMERGENCY_GAMEPLAN_PATH=str(run.state / EMERGENCY_PLAN_FILE), GAMEPLAN_PATH=str(run.plan),
               DISCORD_WEBHOOK_URL="")  # alerts to the log only: nothing leaves this machine
    env.update(settings or {})
    return env


def last_run(state_dir: Path) -> dict[str, Any]:
    try:
        lines = (state_dir / RUNS_FILE).read_text(encoding="utf-8").splitlines()
        return json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}


def transition_at(record: dict[str, Any], to: str, nth: int = 0) -> float | None:
    hits = [t for t in record.get("transitions", []) if t.get("to") == to]
    return parse_utc(hits[nth]["at"]) if len(hits) > nth else None


def run_project(gw: Gateway, run: RunDir, *, timeout: float, settings: dict[str, str] | None = None,
                sample: bool = False, label: str = "project") -> dict[str, Any]:
    m = run_measured([sys.executable, "-m", "src.orchestration.startup"], env=project_env(gw, run, settings),
                     cwd=run.root, timeout=timeout, out=run.root / "orchestrator.out", sample=sample)
    record = last_run(run.state)
    pid = record.get("bot_pid")
    waits = [t["seconds"] for t in record.get("transitions", []) if t.get("from") == "GATEWAY_WAITING"]
    waiting_at = transition_at(record, "GATEWAY_WAITING")
    validated_at = transition_at(record, "GATEWAY_VALIDATED")
    out = _sample(label, gw, m, settings=settings or {}, outcome=record.get("outcome"),
                  reason=record.get("reason"), detected_at=validated_at, wait_started_at=waiting_at,
                  waits=waits, path=[t["to"] for t in record.get("transitions", [])],
                  **_bot_outcome(run, pid, m.code in (0, 2)))
    if sample:
        _cost(out, m, waiting_at, validated_at)
    return out


# --- the handoff's design ---------------------------------------------------------------------------

def run_handoff(gw: Gateway, run: RunDir, *, timeout: float, health_timeout: float = 120, interval: float = 5,
                sample: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.baselines.handoff", "--host", "127.0.0.1", "--port", str(gw.port),
           "--container", gw.container, "--compose-dir", str(COMPOSE_DIR), "--timeout", f"{health_timeout:g}",
           "--interval", f"{interval:g}", "--gameplan", str(run.plan), "--state-dir", str(run.state),
           "--log-dir", str(run.logs), "--events", str(run.events)]
    m = run_measured(cmd, env=gw.compose_env(base_env()), cwd=run.root, timeout=timeout,
                     out=run.root / "handoff.out", sample=sample)
    try:
        ev = json.loads(run.events.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        ev = {}
    waits = ev.get("waits", [])
    out = _sample("handoff", gw, m, outcome="success" if m.code == 0 else "failure", reason=ev.get("reason"),
                  detected_at=ev.get("validated"), wait_started_at=waits[0]["start"] if waits else None,
                  waits=[w["end"] - w["start"] for w in waits if w.get("end")],
                  attempts=[w["attempts"] for w in waits], bot_spawned_at=ev.get("bot_spawned"),
                  **_bot_outcome(run, ev.get("bot_pid"), m.code == 0))
    if sample:
        _cost(out, m, out["wait_started_at"], ev.get("validated"))
    return out


# --- common practice ------------------------------------------------------------------------------------

def read_events(path: Path) -> dict[str, float]:
    events: dict[str, float] = {}
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition(" ")
            events[name] = float(value.replace(",", "."))
    except (OSError, ValueError):
        pass
    return events


def run_common(gw: Gateway, run: RunDir, *, timeout: float, sleep: float = 30, wait_timeout: float = 120,
               sample: bool = False, wait_bot_exit: bool = False) -> dict[str, Any]:
    env = gw.compose_env(base_env())
    env.update(COMMON_SLEEP=f"{sleep:g}", COMMON_WAIT_TIMEOUT=f"{wait_timeout:g}", EVENTS=str(run.events),
               BOT_PYTHON=sys.executable, BOT_LOG=str(run.logs / "bot_common.log"), REPO_ROOT=str(REPO_ROOT))
    m = run_measured(["bash", str(COMMON_SCRIPT), *bot_args(gw, run)], env=env, cwd=COMPOSE_DIR,
                     timeout=timeout, out=run.root / "common.out", sample=sample)
    ev = read_events(run.events)
    pid = int(ev["bot_pid"]) if "bot_pid" in ev else None
    out = _sample("common", gw, m, sleep=sleep, outcome="success" if m.code == 0 else "failure",
                  reason=None if m.code == 0 else f"docker compose up --wait exited {m.code}",
                  detected_at=ev.get("slept"), wait_started_at=ev.get("started"),
                  compose_done_at=ev.get("compose_done"), bot_spawned_at=ev.get("bot_spawned"),
                  waits=[ev["compose_done"] - ev["started"]] if "compose_done" in ev and "started" in ev else [],
                  **_bot_outcome(run, pid, m.code == 0))
    if wait_bot_exit and pid:  # repeat run: the only thing that refuses is the duplicate bot itself
        deadline = time.monotonic() + BOT_GRACE
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        out["bot_exited_at"] = None if pid_alive(pid) else time.time()
    if sample:
        _cost(out, m, ev.get("started"), ev.get("compose_done"))
    return out


def _cost(out: dict[str, Any], m: Measured, a: float | None, b: float | None) -> None:
    """CPU and memory of the contender's process tree while it waited for the Gateway ([a, b])."""
    if a is None or b is None or b <= a:
        return
    cpu = m.cpu_between(a, b)
    own = m.cpu_between(a, b, own=True)
    out.update(wait_window_s=b - a, wait_cpu_s=cpu, wait_cpu_per_min=None if cpu is None else cpu * 60 / (b - a),
               wait_cpu_own_per_min=None if own is None else own * 60 / (b - a),
               peak_rss_own_mb=m.hwm_mb, peak_rss_tree_mb=m.peak_tree_mb(a, b), samples_n=len(m.samples))


def run(contender: str, gw: Gateway, rd: RunDir, **kwargs: Any) -> dict[str, Any]:
    return {"project": run_project, "handoff": run_handoff, "common": run_common}[contender](gw, rd, **kwargs)
