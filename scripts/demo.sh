#!/usr/bin/env bash
# The newcomer's first command: set everything up, then run the real orchestrator against the
# gateway simulator (a TWS API server in a container standing in for IB Gateway) with a
# realistic login delay and a valid gameplan for today. Ends with the bot running, exit 0.
#
#   bash scripts/demo.sh            # SIM_LOGIN_DELAY=8 by default: watch the wait, then the handshake
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

bash scripts/setup.sh || exit 1
bash scripts/provision-docker.sh || exit 1

PY="$ROOT/.venv/bin/python"
PLAN="$ROOT/state/demo_gameplan.json"
mkdir -p "$ROOT/state" "$ROOT/logs"
# The example plan, dated for today's trading date (America/New_York).
"$PY" -m testkit.plans "$PLAN" >/dev/null || exit 1

export COMPOSE_FILE=docker-compose.yml:docker-compose.sim.yml
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-ibkr-demo}
export SIM_LOGIN_DELAY=${SIM_LOGIN_DELAY:-8}
export GATEWAY_HOST=127.0.0.1
export GATEWAY_PORT=${GATEWAY_PORT:-4002}
export GAMEPLAN_PATH=$PLAN

echo
echo "demo: running the orchestrator (Gateway = simulator, login delay ${SIM_LOGIN_DELAY}s, gameplan $PLAN)"
echo "----------------------------------------------------------------------------------------"
"$PY" -m src.orchestration.startup
code=$?
echo "----------------------------------------------------------------------------------------"
echo "demo: the orchestrator exited with code $code (0 = bot running on today's gameplan, 2 = Strategy C, 1 = failure)"
DEMO_ENV="COMPOSE_FILE=$COMPOSE_FILE COMPOSE_PROJECT_NAME=$COMPOSE_PROJECT_NAME GATEWAY_HOST=127.0.0.1 GATEWAY_PORT=$GATEWAY_PORT"
cat <<HELP

What next (from $ROOT):
  bot log:            tail -f \$(ls -t logs/bot_*.log | head -1)
  run journal:        tail -n 1 state/runs.jsonl | python3 -m json.tool
  status:             $DEMO_ENV .venv/bin/python -m src.orchestration.startup --status
  rerun (idempotent): $DEMO_ENV GAMEPLAN_PATH=$PLAN .venv/bin/python -m src.orchestration.startup
                      -> exit 1 "the bot is already running (PID ...)", nothing touched
  try Strategy C:     .venv/bin/python -m src.orchestration.ops.shutdown      # stop the bot, keep the Gateway
                      $DEMO_ENV .venv/bin/python -m src.orchestration.startup
                      -> no GAMEPLAN_PATH: the bot runs with NO trading authority, exit 2
  stop everything:    $DEMO_ENV .venv/bin/python -m src.orchestration.ops.shutdown --gateway
                      (cd docker/gateway && $DEMO_ENV docker compose down)   # also remove the container
HELP
exit $code
