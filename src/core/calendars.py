"""The trading calendars TRADING_CALENDAR names: which days the supervisor's daily cycle runs.

A module of its own, standard library only: the settings (which the simulator image's healthcheck imports
without the schedule) and the schedule (which implements them) both read it, neither importing the other.
"""

from __future__ import annotations

TRADING_CALENDARS = ("XNYS", "ALWAYS")  # NYSE trading days; every day (src.core.schedule)
