#!/usr/bin/env bash
# Common practice, for its timing: bring the Gateway up, sleep a fixed time, start the bot.
#
#   docker compose up -d --wait gateway && sleep 30 && nohup python -m src.main ... &
#
# What users of the popular IB Gateway image do (it has no healthcheck of its own, so people
# wait a fixed time; ib_async's Watchdog waits a fixed appStartupTime of 30 s before its
# first probe). `--wait` makes Compose wait for the container's healthcheck when it has one
# (the simulator's is a real API handshake) and only for "running" when it has none.
# Nothing confirms the bot: the script is done when the bot is spawned.
#
# Environment (set by the benchmark): COMMON_SLEEP [30], COMMON_WAIT_TIMEOUT [120] (Compose's
# --wait-timeout), EVENTS (file for "name epoch-seconds" lines), BOT_PYTHON, BOT_LOG,
# REPO_ROOT, plus COMPOSE_FILE / COMPOSE_PROJECT_NAME / GATEWAY_* for Compose (cwd = the
# Compose directory). The bot's arguments are this script's arguments.
# Exit status: Compose's when it fails (nothing else is done), else 0.
set -euo pipefail
: "${EVENTS:?}" "${BOT_PYTHON:?}" "${BOT_LOG:?}" "${REPO_ROOT:?}"
event() { printf '%s %s\n' "$1" "${2:-$EPOCHREALTIME}" >>"$EVENTS"; }

event started
set +e
docker compose up -d --wait --wait-timeout "${COMMON_WAIT_TIMEOUT:-120}" gateway >/dev/null 2>&1
status=$?
set -e
event compose_done
if [ "$status" -ne 0 ]; then
    event compose_failed "$status"
    exit "$status"
fi
sleep "${COMMON_SLEEP:-30}"
event slept
cd "$REPO_ROOT"
setsid nohup "$BOT_PYTHON" -m src.main "$@" >>"$BOT_LOG" 2>&1 </dev/null &
event bot_pid "$!"
event bot_spawned
