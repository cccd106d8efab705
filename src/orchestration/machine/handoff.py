"""Handing the validated plan to the bot, and holding the bot to it.

The orchestrator writes the exact bytes it validated to state/PLAN_FILE (atomically) and starts
the bot on that snapshot with its sha256 — never on the analyst's file, which may be rewritten
between validation and the bot's start. The bot's readiness record must then report that
sha256, strategy and authority; anything else is a mismatch that stops the bot.

By hand (a rollback, a test of a bot without the orchestrator), the same hand-over is a command:

    python -m src.orchestration.machine.handoff PLAN.json     # validate it for today, make it the plan in force

It prints the sha256 and exits 0, or one line and exit 1 (the plan in force is then left as it was).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from src.core.atomic_file import write_atomic
from src.core.statefiles import PLAN_FILE, PLAN_SHA256_FILE
from src.orchestration.config import OrchestrationConfig


def snapshot_plan(state_dir: Path, data: bytes) -> tuple[Path, str]:
    """Write the validated bytes to state/PLAN_FILE, then their sha256 beside them (PLAN_SHA256_FILE, which
    the order firewall holds the file to); return its path and sha256."""
    snapshot = state_dir / PLAN_FILE
    sha256 = hashlib.sha256(data).hexdigest()
    write_atomic(snapshot, data)
    write_atomic(state_dir / PLAN_SHA256_FILE, sha256 + "\n")
    return snapshot, sha256


def bot_args(config: OrchestrationConfig, snapshot: Path, sha256: str) -> list[str]:
    """The bot's command-line arguments for this configuration and plan snapshot."""
    return ["--gateway-host", config.gateway_host, "--gateway-port", str(config.gateway_port),
            "--gameplan", str(snapshot), "--gameplan-sha256", sha256, "--log-level", config.bot_log_level,
            "--client-id", str(config.bot_client_id), "--health-client-id", str(config.gateway_health_client_id),
            "--state-dir", str(config.state_dir), *(["--strategy", config.bot_strategy] if config.bot_strategy else [])]


def plan_env(config: OrchestrationConfig, snapshot: Path, sha256: str) -> dict[str, str]:
    """What any bot's environment says about the plan and the way in (docs/BOTS.md); the runtime gets the
    same as arguments."""
    return {"GATEWAY_HOST": config.gateway_host, "GATEWAY_PORT": str(config.gateway_port),
            "BOT_CLIENT_ID": str(config.bot_client_id), "PLAN_IN_FORCE": str(snapshot), "PLAN_SHA256": sha256,
            "STATE_DIR": str(config.state_dir)}


def plan_mismatch(record: dict[str, Any], sha256: str, strategy: str | None, authorized: bool) -> str | None:
    """How the bot's readiness record differs from the plan that was validated, or None."""
    expected = {"gameplan_sha256": sha256, "strategy": strategy, "trading_authorized": authorized}
    wrong = {k: record.get(k) for k, v in expected.items() if record.get(k) != v}
    if not wrong:
        return None
    return "a plan other than the one validated: " + ", ".join(
        f"{k} {v!r} (expected {expected[k]!r})" for k, v in wrong.items())


def main(argv: list[str] | None = None) -> int:
    from src.core import cli
    from src.gameplan.loader import evaluate_gameplan
    from src.orchestration.config import config_for_cli

    parser = cli.ArgumentParser(prog="python -m src.orchestration.machine.handoff",
                                description="Validate a gameplan for today and make it the plan in force "
                                            "(STATE_DIR), as the orchestrator does.")
    parser.add_argument("plan", type=Path)
    args = parser.parse_args(argv)
    config = config_for_cli("handoff")
    if config is None:
        return 1
    verdict = evaluate_gameplan(args.plan)
    if not verdict.usable or verdict.data is None:
        print(f"handoff: {args.plan} is not usable ({verdict.kind}: {verdict.reason}): the plan in force is "
              "unchanged", file=sys.stderr)
        return 1
    config.state_dir.mkdir(parents=True, exist_ok=True)
    snapshot, sha256 = snapshot_plan(config.state_dir, verdict.data)
    print(f"{snapshot}: in force, sha256 {sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
