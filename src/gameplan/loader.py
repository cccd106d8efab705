"""Read a gameplan file and decide whether the bot may use it today.

Fail closed: anything doubtful about the file (missing, unreadable, not a
regular file, too big, not UTF-8, not strict JSON, not the schema, not today's,
quarantined, self-contradictory) is a ``GameplanError`` whose ``kind`` says which,
and whose one-line ``reason`` names the field and what is wrong. The orchestrator
calls ``evaluate_gameplan``, which never raises: a plan that is not usable means
the Strategy C emergency plan is deployed instead. A descriptive field with a
value outside ``KNOWN_VALUES`` is accepted, with a warning on this module's logger.

CLI: ``python -m src.gameplan.loader FILE [--date YYYY-MM-DD]``; exit 0 when
usable (plus a ``NO TRADING AUTHORITY:`` line when the plan is a deliberate
Strategy C), 1 when not, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import stat
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from src.core.schedule import trading_date as trading_date  # one definition, the supervisor's too
from src.gameplan.schema import KNOWN_VALUES, Gameplan

log = logging.getLogger(__name__)

MARKET_TZ = ZoneInfo("America/New_York")
MAX_FILE_BYTES = 1024 * 1024

ErrorKind = Literal["not_configured", "missing", "unreadable", "invalid", "stale", "quarantined"]
PathArg = str | os.PathLike[str] | None


class GameplanError(Exception):
    """A gameplan that must not be used; ``kind`` classifies, ``reason`` explains in one line."""

    def __init__(self, kind: ErrorKind, reason: str) -> None:
        self.kind = kind
        self.reason = _one_line(reason)
        super().__init__(self.reason)


@dataclass(frozen=True)
class GameplanVerdict:
    """The orchestrator's answer: a usable plan, or why Strategy C is deployed instead.

    ``plan`` is set only when ``usable``, so nothing can trade on a rejected plan.
    ``reason`` is the one-line error, or for a usable plan a one-line summary.
    """

    usable: bool
    plan: Gameplan | None
    kind: Literal["ok"] | ErrorKind
    reason: str
    data: bytes | None = None  # the exact bytes validated, when usable: what the bot must be given

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else None

    def __post_init__(self) -> None:
        if not self.usable == (self.plan is not None) == (self.kind == "ok"):
            raise ValueError("a verdict is usable exactly when it has a plan and kind 'ok'")


def load_gameplan(path: PathArg, *, today: date | None = None) -> Gameplan:
    """The gameplan at ``path`` if the bot may trade on it today; else ``GameplanError``.

    ``today`` defaults to ``trading_date()``. A deliberate, non-quarantined
    Strategy C plan for today is returned too: it is valid and grants no authority.
    """
    return check_today(parse_gameplan(read_gameplan_bytes(path), path), today)


def check_today(plan: Gameplan, today: date | None = None) -> Gameplan:
    """``plan`` if it is today's and not quarantined; else ``GameplanError`` (stale, quarantined)."""
    today = trading_date() if today is None else today
    if plan.date != today:
        raise GameplanError(
            "stale", f"date: gameplan is for {plan.date}, today in {MARKET_TZ.key} is {today}"
        )
    if plan.data_quality.quarantine_active:
        stale = ", ".join(plan.data_quality.stale_fields) or "none listed"
        raise GameplanError(
            "quarantined", f"data_quality.quarantine_active: data quarantine is active (stale fields: {stale})"
        )
    return plan


def load_emergency_plan(path: PathArg) -> Gameplan:
    """The Strategy C plan at ``path``, verified to be valid and to grant no trading authority.

    Unlike ``load_gameplan`` it accepts quarantine (every emergency plan has it)
    and any date: staleness only matters for authority, which Strategy C never
    has, and a plan written at 23:59 must still work a minute later.
    """
    return check_emergency(parse_gameplan(read_gameplan_bytes(path), path))


def read_emergency_plan(path: PathArg) -> tuple[Gameplan, bytes]:
    """``load_emergency_plan`` and the exact bytes it validated (for the plan snapshot)."""
    data = read_gameplan_bytes(path)
    return check_emergency(parse_gameplan(data, path)), data


def check_emergency(plan: Gameplan) -> Gameplan:
    """``plan`` if it is a Strategy C plan granting no authority; else ``GameplanError``."""
    if plan.strategy != "C" or plan.trading_authorized:
        raise GameplanError("invalid", f"strategy: an emergency plan must be strategy C (got {plan.strategy})")
    return plan


def check_in_force(plan: Gameplan, today: date | None = None) -> Gameplan:
    """``plan`` if it may be in force: today's usable plan, or a Strategy C plan (no authority, any date).
    Else ``GameplanError``, with today's check's reason (the one that says what is wrong with the plan)."""
    try:
        return check_today(plan, today)
    except GameplanError as error:
        try:
            return check_emergency(plan)
        except GameplanError:
            raise error from None


def evaluate_gameplan(path: PathArg, *, today: date | None = None) -> GameplanVerdict:
    """``load_gameplan`` as a verdict; never raises (unexpected errors make the plan unusable)."""
    try:
        data = read_gameplan_bytes(path)
        plan = check_today(parse_gameplan(data, path), today)
    except GameplanError as error:
        return GameplanVerdict(False, None, error.kind, error.reason)
    except Exception as error:  # fail closed on anything we did not foresee
        kind: ErrorKind = "unreadable" if isinstance(error, OSError) else "invalid"
        return GameplanVerdict(False, None, kind, _one_line(f"unexpected {type(error).__name__}: {error}"))
    return GameplanVerdict(True, plan, "ok", _summary(plan), data)


def read_gameplan_bytes(path: PathArg) -> bytes:
    """The file's bytes, read once (at most MAX_FILE_BYTES, never blocking): validate and keep these."""
    if path is None or os.fspath(path) == "":
        raise GameplanError("not_configured", "no gameplan path is configured")
    return _read_bytes(Path(path))


def parse_gameplan(data: bytes, source: PathArg) -> Gameplan:
    """Decode, parse and validate gameplan bytes, without the date and quarantine checks."""
    text = _decode(data)
    _parse_strict_json(text)
    try:
        plan = Gameplan.model_validate_json(text)
    except ValidationError as error:
        raise GameplanError("invalid", _describe(error)) from None
    _warn_unknown_values(plan, source)
    return plan


def _warn_unknown_values(plan: Gameplan, path: PathArg) -> None:
    """Descriptive fields are free text: a value outside the documented ones is logged, not rejected."""
    for field, known in KNOWN_VALUES.items():
        value = getattr(plan, field)
        if value not in known:
            log.warning("gameplan %s: %s %s is not a known value (%s); accepted as free text, it decides nothing",
                        os.fspath(path) if path else "(bytes)", field, json.dumps(value, ensure_ascii=False),
                        ", ".join(known))


def _read_bytes(path: Path) -> bytes:
    """At most MAX_FILE_BYTES of a regular file; never blocks on FIFOs or devices.

    A file that changes while it is read (its size, mtime or ctime differ before and after, or
    fewer bytes came than it had) is rejected: the reads could have stitched two versions
    together into a plan nobody wrote.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        raise GameplanError("missing", f"gameplan file not found: {path}") from None
    except OSError as error:
        raise GameplanError("unreadable", f"cannot open {path}: {error.strerror or error}") from None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise GameplanError("unreadable", f"{path} is not a regular file ({_file_type(before.st_mode)})")
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES and (chunk := os.read(fd, MAX_FILE_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        after = os.fstat(fd)
    except OSError as error:
        raise GameplanError("unreadable", f"cannot read {path}: {error.strerror or error}") from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise GameplanError("invalid", f"{path} is larger than {MAX_FILE_BYTES} bytes (1 MiB)")
    if _version(before) != _version(after) or size != before.st_size:
        raise GameplanError("unreadable", f"{path} changed while it was being read (is it being written?)")
    return b"".join(chunks)


def _version(status: os.stat_result) -> tuple[int, int, int]:
    return status.st_size, status.st_mtime_ns, status.st_ctime_ns


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = f"0x{data[error.start]:02x}"
        raise GameplanError("invalid", f"not valid UTF-8: byte {bad} at offset {error.start}") from None


def _parse_strict_json(text: str) -> None:
    """Reject what pydantic's JSON parser would let through: duplicate keys, NaN/Infinity, non-objects."""
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys,
                           parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as error:
        raise GameplanError("invalid", f"not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except ValueError as error:  # raised by the hooks, or an integer with too many digits
        raise GameplanError("invalid", f"not strict JSON: {error}") from None
    except RecursionError:
        raise GameplanError("invalid", "not strict JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise GameplanError("invalid", f"the top level must be a JSON object (got {type(value).__name__})")


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _describe(error: ValidationError) -> str:
    """pydantic's first error as ``dotted.path: message (got value)``, plus how many more."""
    first = error.errors(include_url=False)[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    reason = f"{where or 'gameplan'}: {first['msg']}"
    if first["type"] != "missing" and first["loc"]:
        got = json.dumps(first["input"], default=str)
        reason += f" (got {got if len(got) <= 60 else got[:57] + '...'})"
    if error.error_count() > 1:
        reason += f" (+{error.error_count() - 1} more)"
    return reason


def _summary(plan: Gameplan) -> str:
    count = len(plan.symbols)
    return (f"strategy {plan.strategy}, {count} symbol{'' if count == 1 else 's'}, "
            f"multiplier {plan.position_size_multiplier}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """CLI: check one gameplan file the way the orchestrator would; one verdict line, plus one when a
    usable plan grants no trading authority. Warnings (unknown descriptive values) go to stderr."""
    parser = argparse.ArgumentParser(
        prog="python -m src.gameplan.loader",
        description="Check a gameplan file the way the orchestrator would.",
    )
    parser.add_argument("file", help="path of the gameplan JSON file")
    parser.add_argument("--date", type=_iso_date, metavar="YYYY-MM-DD",
                        help="the trading date to check against (default: today in America/New_York)")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    verdict = evaluate_gameplan(args.file, today=args.date)
    if verdict.usable:
        print(_one_line(f"OK: gameplan {args.file} usable: {verdict.reason}"))
        if verdict.plan is not None and not verdict.plan.trading_authorized:
            print(f"NO TRADING AUTHORITY: the plan is strategy {verdict.plan.strategy} (no trading) — the bot "
                  "would run it and place no orders; the orchestrator would exit 2")
        return 0
    print(f"INVALID ({verdict.kind}): {verdict.reason} — the orchestrator would deploy Strategy C")
    return 1


def _iso_date(text: str) -> date:
    try:
        value = date.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.isoformat() != text:  # fromisoformat also takes 20260210
        raise argparse.ArgumentTypeError(f"not a date in the form YYYY-MM-DD: {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
