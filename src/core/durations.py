"""How long the orchestrator gives things that the start-up, the supervisor and the systemd unit all rely on.

One place for each, below every module that uses them: the unit's TimeoutStopSec (deploy) is computed from the
same values the stop path (machine, supervise, cycle) waits.
"""

from __future__ import annotations

BOT_STOP_GRACE = 20.0  # SIGTERM to SIGKILL, when stopping the bot
ALERT_DRAIN = 5.0  # at exit, how long pending alerts may still take
