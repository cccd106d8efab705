"""Command-line helpers shared by every CLI of the project: standard library only.

Exit 2 is reserved across the project for "bot running under Strategy C", and
argparse's own usage error exits 2 with two lines (usage, then the message). So
`ArgumentParser` here reports a usage error as ONE line on stderr and exits 1
(exitcodes.FAILURE), and the argument types check ranges at parse time, so a port
of 70000 or a timeout of -1 never becomes a wrapped port or a traceback later.

This module is copied into the simulator image next to health.py (its healthcheck
runs `python3 -m src.orchestration.health`): it must never import anything but the
standard library.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
from collections.abc import Callable
from typing import NoReturn

USAGE_ERROR = 1  # = exitcodes.FAILURE (not imported: this module stays self-contained)
MAX_CLIENT_ID = 2**31 - 1  # the TWS API's client id is a signed 32-bit integer
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line `prog: error: ... (see --help)` and exit 1, never 2."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(USAGE_ERROR, f"{self.prog}: error: {text} (see --help)\n")


def is_host(value: str) -> bool:
    """True for an IPv4/IPv6 address or a DNS host name (labels of 1..63 letters, digits, '-', '_')."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if all(label.isdigit() for label in labels):  # 999.1.1.1 is neither an address nor a name
        return False
    return all(_LABEL.match(label) for label in labels)


def host(value: str) -> str:
    """argparse type: a host name or IP address."""
    if not is_host(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a host name or IP address")
    return value


def int_range(low: int, high: int) -> Callable[[str], int]:
    """argparse type: an integer from low to high inclusive."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{value!r} is not an integer from {low} to {high}")
        return number

    return parse


def seconds(high: float, *, zero: bool = False) -> Callable[[str], float]:
    """argparse type: seconds, a finite number > 0 (>= 0 with zero=True) and <= high."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        low_ok = number >= 0 if zero else number > 0
        if not (math.isfinite(number) and low_ok and number <= high):
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a number of seconds {'>=' if zero else '>'} 0 and <= {high:g}")
        return number

    return parse


port = int_range(1, 65535)
client_id = int_range(0, MAX_CLIENT_ID)

