"""The IBC log excerpts of tests/fixtures/ibc: read them, and reduce lines to comparable messages."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ibc"
# IBC's timestamp (Utils.java:35): yyyy-MM-dd HH:mm:ss:SSS
IBC_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}:\d{3} ")


def fixture_names() -> list[str]:
    return sorted(path.stem for path in FIXTURES.glob("*.log"))


def load(name: str) -> str:
    """A fixture's log lines, its '#' comment lines left out."""
    text = (FIXTURES / f"{name}.log").read_text(encoding="utf-8")
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))


def messages(log: str) -> list[str]:
    """Each line without IBC's timestamp and with its numbers as 'N' (seconds, attempt numbers differ)."""
    return [re.sub(r"\d+", "N", IBC_TIMESTAMP.sub("", line.rstrip("\r\n"))) for line in log.splitlines() if line]


def message_without_timestamp(line: str) -> str:
    return IBC_TIMESTAMP.sub("", line.rstrip("\r\n"))


def timestamp(line: str) -> datetime:
    """When IBC (or the simulator, in IBC's format) printed `line`."""
    found = IBC_TIMESTAMP.match(line)
    if found is None:
        raise ValueError(f"no IBC timestamp in {line!r}")
    return datetime.strptime(found.group().strip(), "%Y-%m-%d %H:%M:%S:%f")


def shapes(log: str) -> set[tuple[bool, str]]:
    """(has IBC's timestamp, message as `messages` gives it) for each line: what a line says, and how."""
    lines = [line for line in log.splitlines() if line]
    pairs = zip(lines, messages(log), strict=True)
    return {(IBC_TIMESTAMP.match(line) is not None, message) for line, message in pairs}
