"""Is the trading system up right now, and what did the last run do?

    python -m src.orchestration.status [--json]      (also: python -m src.orchestration.startup --status)

For humans first (a compact table), `--json` for scripts. Exit 0 only when the
Gateway container is up and healthy, the API handshake succeeds, and the bot
holds its lock with a matching readiness record; 1 otherwise, and for a usage or
configuration error (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from src.orchestration import cli
from src.orchestration.bot import read_ready_record, running_bot
from src.orchestration.config import ConfigError, OrchestrationConfig
from src.orchestration.docker import DockerClient, DockerError
from src.orchestration.health import GatewayHealthChecker
from src.orchestration.journal import read_runs
from src.orchestration.logins import LoginBudget


def collect(config: OrchestrationConfig, docker: DockerClient | None = None,
            checker: GatewayHealthChecker | None = None) -> dict[str, Any]:
    """Everything --status reports, as data."""
    docker = docker or DockerClient.from_config(config, timeout=10)
    checker = checker or GatewayHealthChecker(config.gateway_host, config.gateway_port,
                                              config.health_check_timeout, config.gateway_health_client_id)
    try:
        state = docker.inspect()
        container = {"name": config.gateway_container, "state": state.describe() if state else "absent",
                     "up": bool(state and state.up and state.health in (None, "healthy"))}
    except DockerError as exc:
        container = {"name": config.gateway_container, "state": f"unknown: {exc.message}", "up": False}
    probe = checker.check_handshake()
    pid = running_bot(config.state_dir)
    ready = read_ready_record(config.state_dir)
    bot = {"pid": pid, "ready": bool(pid and ready and ready.get("pid") == pid),
           "strategy": ready.get("strategy") if ready else None,
           "trading_authorized": ready.get("trading_authorized") if ready else None,
           "gameplan": ready.get("gameplan") if ready else None, "since": ready.get("started_at") if ready else None}
    runs = list(read_runs(config.state_dir))
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
    return {"up": up, "gateway": {**container, "api": probe.describe(), "api_ok": probe.ok},
            "bot": bot, "login_budget": logins, "last_run": last_run}


def render(status: dict[str, Any]) -> str:
    """A compact table for a terminal."""
    gw, bot, last, logins = status["gateway"], status["bot"], status["last_run"], status["login_budget"]
    mark = {True: "OK  ", False: "DOWN"}
    authority = {True: "trading authorized", False: "NO trading authority", None: "-"}[bot["trading_authorized"]]
    rows = [
        (mark[gw["up"]], "gateway container", f"{gw['name']}: {gw['state']}"),
        (mark[gw["api_ok"]], "gateway API", gw["api"]),
        (mark[bot["ready"]], "bot", f"PID {bot['pid']}, ready since {bot['since']}" if bot["ready"]
         else (f"PID {bot['pid']} (no readiness record)" if bot["pid"] else "not running")),
        ("    ", "gameplan in force", f"{bot['gameplan']} (strategy {bot['strategy']}, {authority})"
         if bot["gameplan"] else "-"),
        ("    " if logins["left"] else "LOW ", "login budget", logins["text"]),
        ("    ", "last run", f"{last['outcome']} (exit {last['exit_code']}) at {last['ended_at']}: "
         f"{last['reason'] or 'no problem'}" if last else "no run recorded"),
    ]
    width = max(len(r[1]) for r in rows)
    lines = [f"{m} {name:<{width}}  {value}" for m, name, value in rows]
    lines.append(f"=> {'UP' if status['up'] else 'NOT UP'}")
    return "\n".join(lines)


def report(config: OrchestrationConfig, as_json: bool) -> int:
    """Print the status (a table, or JSON); 0 when everything is up, else 1."""
    status = collect(config)
    print(json.dumps(status, indent=2) if as_json else render(status))
    return 0 if status["up"] else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.ArgumentParser(
        prog="python -m src.orchestration.status",
        description="Report the Gateway container and its API handshake, the bot and its readiness, the gameplan "
                    "in force, the login budget and the last run. Configuration as for startup (environment and "
                    ".env).",
        epilog="exit codes: 0 everything is up, 1 otherwise (or a usage or configuration error)",
    )
    parser.add_argument("--json", action="store_true", help="JSON for scripts")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """CLI entry point: the report, or one line on stderr for a bad configuration; exit 0 or 1."""
    args = parse_args(argv)
    try:
        config = OrchestrationConfig.from_env(environ)
    except ConfigError as exc:
        print(f"status: configuration error: {exc}", file=sys.stderr)
        return 1
    return report(config, args.json)


if __name__ == "__main__":
    sys.exit(main())
