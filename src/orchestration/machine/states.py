"""The startup machine's states (the table that joins them is in startup.py)."""

from __future__ import annotations

from enum import Enum


class StartupState(Enum):
    INITIALIZING = "initializing"
    GATEWAY_STARTING = "gateway_starting"
    GATEWAY_WAITING = "gateway_waiting"
    GATEWAY_VALIDATED = "gateway_validated"
    GAMEPLAN_LOADING = "gameplan_loading"
    BOT_STARTING = "bot_starting"
    BOT_RUNNING = "bot_running"
    SUCCESS = "success"
    FAILURE = "failure"
    # failure paths of spec §4, and the ones live accounts need
    GATEWAY_TIMEOUT = "gateway_timeout"
    GATEWAY_UNHEALTHY = "gateway_unhealthy"
    GAMEPLAN_INVALID = "gameplan_invalid"
    GAMEPLAN_MISSING = "gameplan_missing"
    BOT_START_FAILED = "bot_start_failed"
    DOCKER_UNAVAILABLE = "docker_unavailable"
    ALREADY_RUNNING = "already_running"  # the bot is up: nothing to do, nobody to alert
    ADOPTING = "adopting"  # --supervise relaunched with our bot running: take it over, after checks
    NOT_ADOPTED = "not_adopted"  # our bot runs but the Gateway or the plan does not check out: operator needed
    CONFIG_INVALID = "config_invalid"  # e.g. BOT_STRATEGY does not import
    WRONG_ACCOUNT = "wrong_account"  # logged in, but not to what TRADING_MODE / EXPECTED_ACCOUNTS say
    GATEWAY_LOGIN_FAILED = "gateway_login_failed"  # IBC says a human must act: never restarted
    LOGIN_BUDGET_SPENT = "login_budget_spent"  # GATEWAY_LOGIN_BUDGET logins in 24 h: touch nothing
    LOGIN_BUDGET_STILL_SPENT = "login_budget_still_spent"  # the same exhaustion, alerted already


S = StartupState
