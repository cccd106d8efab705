"""IBC's command server as the simulator plays it: one line in, one line out, IBC 3.24.x's words.

`answer(command)` is the pure part (no sockets): the reply line, IBC's log lines, and what the simulator
must then do. Commands (IBC's CommandDispatcher; the Gateway refuses ENABLEAPI):

* RESTART: the Gateway's own File > Restart; the API goes away for the restart delay and comes back
  logged in, without a second factor (the session is kept);
* STOP: a tidy close that logs out ("Login has completed: exiting via [File, Close] menu"); the
  simulated IBC exits 0;
* RECONNECTACCOUNT / RECONNECTDATA: answered OK; RECONNECTACCOUNT restores a lost link to IBKR;
* EXIT closes the channel; anything else is "ERROR Command invalid".

Not IBC's, the simulator's own (for the soak, scripts/soak.sh): ``SIMOUTAGE <kind> <seconds>`` starts an
outage of one of server.OUTAGE_KINDS now, as ``outage_after``/``outage_for`` would after login.
"""

from __future__ import annotations

from dataclasses import dataclass

RESTART, STOP, RECONNECT, CLOSE, NOTHING, OUTAGE = "restart", "stop", "reconnect", "close", "nothing", "outage"
OUTAGE_KINDS = ("ib-lost", "freeze", "closed")  # a hung Gateway, its API closed, its link to IBKR lost
MAX_OUTAGE = 86400.0


@dataclass(frozen=True)
class Answer:
    reply: str | None  # the line written back (None: nothing)
    logs: tuple[str, ...]  # IBC's log lines, in order
    action: str  # what the simulator does next (one of the constants above)
    outage: tuple[str, float] | None = None  # for OUTAGE: its kind and seconds


def answer(line: str) -> Answer:
    command = line.strip()
    received = f"IBC: CommandServer received command: {command}"
    verb = command.upper()
    if verb == "RESTART":
        return Answer("OK RESTART in progress", (received, "IBC: RestartTask: verb = RESTART"), RESTART)
    if verb == "STOP":
        return Answer("OK Shutting down: STOP command",
                      (received, "IBC: Login has completed: exiting via [File, Close] menu"), STOP)
    if verb == "RECONNECTACCOUNT":
        return Answer("OK ", (received,), RECONNECT)
    if verb == "RECONNECTDATA":
        return Answer("OK ", (received,), NOTHING)
    if verb == "ENABLEAPI":
        return Answer("ERROR ENABLEAPI is not valid for the IB Gateway", (received,), NOTHING)
    if verb == "EXIT":
        return Answer(None, (received,), CLOSE)
    words = command.split()
    if len(words) == 3 and words[0].upper() == "SIMOUTAGE" and words[1] in OUTAGE_KINDS:
        try:
            seconds = float(words[2])
        except ValueError:
            seconds = -1.0
        if 0 < seconds <= MAX_OUTAGE:
            return Answer(f"OK outage {words[1]} for {seconds:g}s", (received,), OUTAGE, (words[1], seconds))
    return Answer("ERROR Command invalid", (received, f"IBC: CommandServer: invalid command received: {command}"),
                  NOTHING)
