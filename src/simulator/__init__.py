"""A fake IB Gateway speaking the TWS API text protocol, for tests and demos (standard library only)."""

from .server import (
    BEFORE_LOGIN_BEHAVIOURS,
    DEFAULT_ACCOUNTS,
    LOGIN_OUTCOMES,
    MODES,
    TWOFA_TIMEOUT_EXIT,
    GatewaySimulator,
)

__all__ = [
    "BEFORE_LOGIN_BEHAVIOURS", "DEFAULT_ACCOUNTS", "LOGIN_OUTCOMES", "MODES", "TWOFA_TIMEOUT_EXIT",
    "GatewaySimulator",
]
