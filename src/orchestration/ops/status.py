"""Is the trading system up right now, and what did the last run do?

    python -m src.orchestration.ops.status [--json]      (also: python -m src.orchestration.startup --status)

For humans first (a compact table), `--json` for scripts: the Gateway and its API, the bot and its
connection, the plan in force (date, strategy, authority, sha256, from the bot's readiness record),
the next IBKR reset window (AUTO_RESTART_TIME's included), the next daily cycle and weekly login
(acted on by --supervise), what the supervisor last decided, the login budget left, the last alert
(the start-up's or the supervisor's, whichever is later) and the last run. Exit 0 only when the
Gateway container is up and healthy, the API handshake succeeds, and the bot
holds its lock with a matching readiness record; 1 otherwise, and for a usage or
configuration error (one line on stderr). What Docker and the Gateway said is shown
as they said it, but never a secret (config.secrets): those are masked as ***.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from src.core import cli, schedule
from src.core.journal import read_lines, read_runs
from src.core.redaction import redact
from src.core.resetwindows import ResetWindow, new_york_time, next_window, next_window_end
from src.core.statefiles import (
    FIREWALL_DECISIONS_FILE,
    PLAN_FILE,
    SUPERVISOR_LOG,
    firewall_session_since,
    read_ready_record,
)
from src.firewall.decisions import read_recent
from src.firewall.plan import plan_in_force_now
from src.notifications.dedupe import describe_duration
from src.orchestration.config import OrchestrationConfig, config_for_cli
from src.orchestration.gateway.bringup import login_hours_begin
from src.orchestration.gateway.docker import DockerClient, DockerError, pinned_digest, running_digest
from src.orchestration.gateway.logins import LoginBudget
from src.orchestration.health import GatewayHealthChecker
from src.orchestration.machine.bot import running_bot


def collect(config: OrchestrationConfig, docker: DockerClient | None = None,
            checker: GatewayHealthChecker | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Everything --status reports, as data, with every secret masked (`now`: an aware instant, for
    the reset window)."""
    now = now or datetime.now(UTC)
    docker = docker or DockerClient.from_config(config, timeout=10)
    checker = checker or GatewayHealthChecker(config.gateway_host, config.gateway_port,
                                              config.health_check_timeout, config.gateway_health_client_id)
    try:
        state = docker.inspect()
        container = {"name": config.gateway_container, "state": state.describe() if state else "absent",
                     "up": bool(state and state.up and state.health in (None, "healthy")),
                     "image": state.image if state else None, "image_id": state.image_id if state else None,
                     "memory_mb": _memory(docker) if state and state.up else None,
                     "digest": _digest(docker, state.image, state.image_id) if state and state.image_id else None}
    except DockerError as exc:
        container = {"name": config.gateway_container, "state": f"unknown: {exc.message}", "up": False,
                     "image": None, "image_id": None, "memory_mb": None, "digest": None}
    container["pin"] = pinned_digest(config.gateway_image) if config.gateway_image else None
    container["read_only_api"] = config.read_only_api
    container["memory_alert_mb"] = config.gateway_memory_alert_mb
    probe = checker.check_handshake()
    pid = running_bot(config.state_dir)
    ready = read_ready_record(config.state_dir) if config.bot_ready == "notify" else _session_record(config, pid)
    bot = {"pid": pid, "ready": bool(pid and ready and ready.get("pid") == pid),
           "strategy": ready.get("strategy") if ready else None,
           "trading_authorized": ready.get("trading_authorized") if ready else None,
           "gameplan": ready.get("gameplan") if ready else None, "since": ready.get("started_at") if ready else None,
           "connection": ready.get("connection") if ready else None,
           "connection_reason": ready.get("connection_reason") if ready else None}
    plan = _plan(ready, in_force=bool(bot["ready"]))
    runs = list(read_runs(config.state_dir))
    decisions = list(read_lines(config.state_dir / SUPERVISOR_LOG))
    last = runs[-1] if runs else None
    last_run = {k: last.get(k) for k in ("run_id", "outcome", "exit_code", "ended_at", "reason")} if last else None
    up = container["up"] and probe.ok and bot["ready"]
    try:
        view = LoginBudget(config.state_dir, config.gateway_login_budget).view()
        logins: dict[str, Any] = {"left": view.left, "limit": view.limit, "frees_at": view.frees_at,
                                  "text": view.describe()}
    except OSError as exc:
        logins = {"left": None, "limit": config.gateway_login_budget, "frees_at": None,
                  "text": f"unknown: cannot read the login record: {exc.strerror or exc}"}
    status = {"up": up, "gateway": {**container, "api": probe.describe(), "api_ok": probe.ok},
              "bot": bot, "plan": plan, "reset_window": reset_window(now, config.reset_windows),
              "daily_cycle": daily_cycle(now, config), "weekly_login": weekly_login(now, config),
              "login_hours": login_hours(now, config.gateway_login_hours),
              "supervisor": last_decision(decisions), "login_budget": logins,
              "last_alert": last_alert(runs, decisions), "last_run": last_run,
              "firewall": firewall_summary(config.state_dir, schedule.trading_date(now))}
    masked: dict[str, Any] = _masked(status, config.secrets)
    return masked


def _masked(value: Any, secrets: tuple[str, ...]) -> Any:
    """`value` with each secret in any of its strings, however deep, replaced by ***: an error text
    from Docker or a reply from the Gateway may quote one (a password, the webhook URL)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: _masked(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item, secrets) for item in value]
    return value


def _memory(docker: DockerClient) -> float | None:
    try:
        used = docker.memory_mb()
    except DockerError:
        return None
    return round(used, 1) if used is not None else None


def _digest(docker: DockerClient, image: str, image_id: str) -> str | None:
    """The running image's registry digest; None when it has none (built here) or Docker does not say."""
    try:
        return running_digest(image, docker.repo_digests(image_id))
    except DockerError:
        return None


def _render_gateway_image(gw: dict[str, Any]) -> str:
    """The image the Gateway runs: its name, the digest it runs (what a pin names), whether that is pinned."""
    if not gw.get("image"):
        return "-"
    image, digest, pin = str(gw["image"]), gw.get("digest"), gw.get("pin")
    name = image.partition("@")[0]
    if digest:
        text = f"{name}, digest {digest[:23]}…"
    else:
        text = f"{name}, no registry digest (built here: image id {(gw.get('image_id') or '')[7:19]})"
    if digest and not pinned_digest(image):
        text += "; NOT pinned by digest: set GATEWAY_IMAGE (docs/OPERATIONS.md)"
    if pin and digest and pin != digest:
        text += f"; GATEWAY_IMAGE pins {pin[:23]}…: it runs once the Gateway is re-created (a cold login)"
    memory = gw.get("memory_mb")
    if memory is not None:
        text += f"; memory {memory:.0f} MB"
        if gw.get("memory_alert_mb") and memory > gw["memory_alert_mb"]:
            text += f" (above GATEWAY_MEMORY_ALERT_MB={gw['memory_alert_mb']})"
    return text


def _session_record(config: OrchestrationConfig, pid: int | None) -> dict[str, Any] | None:
    """For a BOT_COMMAND bot (BOT_READY=api), what the runtime's readiness record says, from what the order
    firewall sees: its client id's session through it, and the plan in force as the firewall reads it."""
    since = firewall_session_since(config.state_dir, config.bot_client_id)
    if pid is None:
        return None
    in_force = plan_in_force_now(config.state_dir)
    authority = in_force.authority
    return {"pid": pid if since is not None else None,
            "started_at": datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds") if since else None,
            "connection": "connected" if since is not None else "disconnected",
            "connection_reason": f"client id {config.bot_client_id} "
                                 + ("in session through the order firewall" if since is not None
                                    else "has no session through the order firewall"),
            "plan_date": authority.trading_date.isoformat() if authority else None,
            "strategy": authority.strategy if authority else None,
            "trading_authorized": authority.authorized if authority else False,
            "gameplan_sha256": in_force.sha256, "gameplan": str(config.state_dir / PLAN_FILE)}


def _plan(ready: dict[str, Any] | None, *, in_force: bool) -> dict[str, Any] | None:
    """The plan the bot recorded it trades under; `in_force` only while that bot is running and ready."""
    if not ready:
        return None
    return {"in_force": in_force, "date": ready.get("plan_date"), "strategy": ready.get("strategy"),
            "trading_authorized": ready.get("trading_authorized"), "sha256": ready.get("gameplan_sha256"),
            "path": ready.get("gameplan")}


def reset_window(now: datetime, windows: Sequence[ResetWindow]) -> dict[str, Any]:
    """The IBKR reset window `now` is in, else the next one; times in UTC (ISO) and New York."""
    found = next_window(now, windows)
    if found is None:
        return {"window": None, "active": False, "start": None, "end": None,
                "text": "none configured (IBKR_RESET_WINDOWS=none)"}
    if found.active:
        until = next_window_end(now, windows) or found.end  # windows that touch are one period
        text = f"NOW: {found.window.describe()}, until {new_york_time(until)} (in {_until(now, until)})"
    else:
        until = found.end
        text = f"{found.window.describe()}: from {new_york_time(found.start)} (in {_until(now, found.start)})"
    return {"window": found.window.describe(), "active": found.active, "start": _iso(found.start),
            "end": _iso(until), "text": text}


def daily_cycle(now: datetime, config: OrchestrationConfig) -> dict[str, Any]:
    """When --supervise next re-evaluates the gameplan and restarts the bot on it."""
    at = schedule.next_daily_cycle(now, config.daily_cycle_time, config.trading_calendar)
    return {"next": _iso(at), "calendar": config.trading_calendar,
            "text": f"{new_york_time(at)} (in {_until(now, at)}; {config.trading_calendar} trading days, "
                    f"DAILY_CYCLE_TIME {config.daily_cycle_time:%H:%M:%S}, with --supervise)"}


def weekly_login(now: datetime, config: OrchestrationConfig) -> dict[str, Any]:
    """The planned weekly login (WEEKLY_LOGIN_TIME) and its heads-up, or the Sunday heads-up alone."""
    heads_up = schedule.next_heads_up(now, config.weekly_login)
    if config.weekly_login is None:
        return {"next": None, "heads_up": _iso(heads_up),
                "text": f"not planned (WEEKLY_LOGIN_TIME unset); heads-up {new_york_time(heads_up)}"}
    at = schedule.next_weekly(now, config.weekly_login)
    return {"next": _iso(at), "heads_up": _iso(heads_up),
            "text": f"{new_york_time(at)} (in {_until(now, at)}); heads-up {new_york_time(heads_up)}"}


def login_hours(now: datetime, hours: tuple[ResetWindow, ...] | None) -> dict[str, Any]:
    """GATEWAY_LOGIN_HOURS: whether a login the system causes by itself may happen now, else when."""
    if not hours:
        return {"hours": None, "open": True, "opens": None, "text": "any hour (GATEWAY_LOGIN_HOURS unset)"}
    described = "; ".join(w.describe() for w in hours)
    opens = login_hours_begin(now, hours)
    if opens is None:
        return {"hours": described, "open": True, "opens": None, "text": f"{described}: open now"}
    return {"hours": described, "open": False, "opens": _iso(opens),
            "text": f"{described}: closed; a login waits until {new_york_time(opens)} (in {_until(now, opens)})"}


def firewall_summary(state_dir: Path, today: date) -> dict[str, Any]:
    """Today's order decisions of the firewall (its journal's tail, bounded): counts and the last refusal."""
    allowed = refused = 0
    last: dict[str, Any] | None = None
    for record in read_recent(state_dir / FIREWALL_DECISIONS_FILE):
        if record.get("day") != today.isoformat():
            continue
        if record.get("decision") == "allowed":
            allowed += 1
        elif record.get("decision") == "refused":
            refused += 1
            last = {"at": record.get("at"), "reason": str(record.get("reason", ""))[:200]}
    text = f"today {allowed} allowed, {refused} refused"
    if last is not None:
        text += f"; last refused: {last['reason']}"
    return {"allowed": allowed, "refused": refused, "last_refused": last, "text": text}


def last_decision(decisions: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The supervisor's last recorded decision (state/supervisor.jsonl)."""
    if not decisions:
        return None
    last = decisions[-1]
    return {"at": last.get("at"), "event": last.get("event"), "detail": last.get("detail")}


def last_alert(runs: Iterable[dict[str, Any]], decisions: Sequence[dict[str, Any]] = ()) -> dict[str, Any] | None:
    """The last alert: journalled with its run (runs.jsonl), or sent by the supervisor (supervisor.jsonl)."""
    found: dict[str, Any] | None = None
    for run in reversed(list(runs)):
        alerts = [a for a in run.get("alerts") or [] if isinstance(a, dict) and a.get("message")]
        if alerts:
            alert = alerts[-1]
            found = {"level": alert.get("level"), "message": alert.get("message"),
                     "delivered": alert.get("delivered"), "run_id": run.get("run_id"), "at": run.get("ended_at")}
            break
    sent = [d for d in decisions if d.get("event") == "alert" and isinstance(d.get("detail"), str)]
    if sent and (found is None or str(sent[-1].get("at")) > str(found["at"])):
        level, _, message = sent[-1]["detail"].partition(": ")
        return {"level": level, "message": message, "delivered": None, "run_id": sent[-1].get("run_id"),
                "at": sent[-1].get("at")}
    return found


def _until(now: datetime, then: datetime) -> str:
    return describe_duration(max(0.0, (then - now).total_seconds()))


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="seconds")


def render(status: dict[str, Any]) -> str:
    """A compact table for a terminal."""
    gw, bot, last, logins = status["gateway"], status["bot"], status["last_run"], status["login_budget"]
    mark = {True: "OK  ", False: "DOWN"}
    if bot["ready"] and bot["connection"]:
        connection_mark = "OK  " if bot["connection"] == "connected" else "WARN"
        connection = f"{bot['connection']}: {bot['connection_reason'] or '-'}"
    else:
        connection_mark, connection = "    ", "-"
    rows = [
        (mark[gw["up"]], "gateway container", f"{gw['name']}: {gw['state']}"),
        (mark[gw["api_ok"]], "gateway API", gw["api"] + ("; READ-ONLY (READ_ONLY_API=yes): no order can trade"
                                                           if gw.get("read_only_api") else "")),
        ("    ", "gateway image", _render_gateway_image(gw)),
        (mark[bot["ready"]], "bot", f"PID {bot['pid']}, ready since {bot['since']}" if bot["ready"]
         else (f"PID {bot['pid']} (no readiness record)" if bot["pid"] else "not running")),
        (connection_mark, "bot connection", connection),
        ("    ", "plan in force", _render_plan(status["plan"])),
        ("    ", "next reset window", status["reset_window"]["text"]),
        ("    ", "next daily cycle", status["daily_cycle"]["text"]),
        ("    ", "weekly login", status["weekly_login"]["text"]),
        ("    ", "login hours", status["login_hours"]["text"]),
        ("    ", "supervisor", f"{sup['event']} at {sup['at']}: {sup['detail']}" if (sup := status["supervisor"])
         else "no decision recorded"),
        ("    " if logins["left"] else "LOW ", "login budget", logins["text"]),
        ("    ", "order firewall", status["firewall"]["text"]),
        ("    ", "last alert", _render_alert(status["last_alert"])),
        ("    ", "last run", f"{last['outcome']} (exit {last['exit_code']}) at {last['ended_at']}: "
         f"{last['reason'] or 'no problem'}" if last else "no run recorded"),
    ]
    width = max(len(r[1]) for r in rows)
    lines = [f"{m} {name:<{width}}  {value}" for m, name, value in rows]
    lines.append(f"=> {'UP' if status['up'] else 'NOT UP'}")
    return "\n".join(lines)


def _render_plan(plan: dict[str, Any] | None) -> str:
    if plan is None:
        return "- (no readiness record)"
    authority = {True: "trading authorized", False: "NO trading authority"}.get(plan["trading_authorized"], "-")
    text = (f"{plan['date'] or 'date unknown'}, strategy {plan['strategy']}, {authority}, "
            f"sha256 {plan['sha256'] or '-'} ({plan['path']})")
    return text if plan["in_force"] else f"none: the bot is not running (last recorded: {text})"


def _render_alert(alert: dict[str, Any] | None) -> str:
    if alert is None:
        return "no alert recorded"
    delivered = {True: "delivered", False: "NOT delivered"}.get(alert["delivered"], "delivery unknown")
    return f"{alert['level']}: {alert['message']} ({delivered}; run {alert['run_id']}, at {alert['at']})"


def report(config: OrchestrationConfig, as_json: bool) -> int:
    """Print the status (a table, or JSON); 0 when everything is up, else 1."""
    status = collect(config)
    print(json.dumps(status, indent=2) if as_json else render(status))
    return 0 if status["up"] else 1


DESCRIPTION = ("Report the Gateway container and its API handshake, the bot, its readiness and connection, the plan "
               "in force, the next IBKR reset window, the next daily cycle, the login budget, the last alert and "
               "the last run. Configuration as for startup (environment and .env).")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.ArgumentParser(prog="python -m src.orchestration.ops.status", description=DESCRIPTION,
                                epilog="exit codes: 0 everything is up, 1 otherwise (or a usage or config error)")
    parser.add_argument("--json", action="store_true", help="JSON for scripts")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """CLI entry point: the report, or one line on stderr for a bad configuration; exit 0 or 1."""
    args = parse_args(argv)
    config = config_for_cli("status", environ)
    if config is None:
        return 1
    return report(config, args.json)


if __name__ == "__main__":
    sys.exit(main())
