"""Exit codes: the contract with whoever started us (a human, systemd, Task Scheduler)."""

SUCCESS = 0  # the bot is running on a validated gameplan
FAILURE = 1  # nothing is trading: see the reason (usage errors too: 2 is reserved for Strategy C)
STRATEGY_C = 2  # the bot is running with no trading authority
# Under --supervise only, for systemd's RestartPreventExitStatus=: failures no restart can fix.
LOGIN_BUDGET_SPENT = 76  # GATEWAY_LOGIN_BUDGET Gateway logins already caused in the last 24 h
LOGIN_BLOCKED = 77  # IBKR login rejected, second factor timed out, existing session
CONFIG = 78  # bad configuration (EX_CONFIG)
NO_RETRY = (LOGIN_BUDGET_SPENT, LOGIN_BLOCKED, CONFIG)
