"""A fake IB Gateway speaking the TWS API text protocol, for tests and demos (standard library only)."""

from .market import FILL_POLICIES, UNIVERSE
from .server import (
    BEFORE_LOGIN_BEHAVIOURS,
    DEFAULT_ACCOUNTS,
    LOGIN_OUTCOMES,
    MODES,
    OUTAGE_KINDS,
    TWOFA_TIMEOUT_EXIT,
    GatewaySimulator,
    ListenError,
)

__all__ = [
    "BEFORE_LOGIN_BEHAVIOURS", "DEFAULT_ACCOUNTS", "FILL_POLICIES", "LOGIN_OUTCOMES", "MODES", "OUTAGE_KINDS",
    "TWOFA_TIMEOUT_EXIT", "UNIVERSE", "GatewaySimulator", "ListenError",
]
