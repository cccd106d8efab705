"""The gameplan loader: every way a file can be unusable, the trading date, the verdict, the CLI."""

import errno
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from src.gameplan import loader
from src.gameplan.generator import generate_strategy_c
from src.gameplan.loader import (
    MAX_FILE_BYTES,
    GameplanError,
    GameplanVerdict,
    evaluate_gameplan,
    load_emergency_plan,
    load_gameplan,
    trading_date,
)
from src.gameplan import schema
from src.gameplan.schema import KNOWN_VALUES, Gameplan
from testkit.plans import PLAN_DATE, strategy_c_plan, valid_plan

PROJECT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def write(directory: Path, content: dict | str | bytes, name: str = "gameplan.json") -> Path:
    path = directory / name
    if isinstance(content, dict):
        content = json.dumps(content)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def rejected(path, kind: str, today: date = PLAN_DATE) -> str:
    """Assert that load_gameplan and evaluate_gameplan both reject with ``kind``; the reason."""
    with pytest.raises(GameplanError) as caught:
        load_gameplan(path, today=today)
    verdict = evaluate_gameplan(path, today=today)
    assert (caught.value.kind, verdict.kind, verdict.usable, verdict.plan) == (kind, kind, False, None)
    assert verdict.reason == caught.value.reason == str(caught.value)
    assert "\n" not in verdict.reason and verdict.reason
    return verdict.reason


def returns_promptly(function, release=None, seconds: float = 5.0):
    """Run ``function`` in a thread; fail (and call ``release`` to unblock it) if it blocks."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", function()), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if release:
            release()
        pytest.fail(f"blocked for more than {seconds} s")
    return result["value"]


# --- usable plans ---------------------------------------------------------------------------------------


def test_valid_plan_is_usable_with_exact_values(tmp_path):
    path = write(tmp_path, valid_plan())

    plan = load_gameplan(path, today=PLAN_DATE)
    verdict = evaluate_gameplan(path, today=PLAN_DATE)

    assert plan == Gameplan.model_validate_json(json.dumps(valid_plan()))
    assert plan.symbols == ("SPY", "QQQ", "BRK.B") and plan.hard_limits.max_daily_loss_pct == 2.5
    assert verdict == GameplanVerdict(True, plan, "ok", "strategy A, 3 symbols, multiplier 0.75", path.read_bytes())
    assert verdict.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()  # what the bot will be held to


def test_deliberate_strategy_c_plan_is_usable_but_grants_no_authority(tmp_path):
    verdict = evaluate_gameplan(write(tmp_path, strategy_c_plan()), today=PLAN_DATE)
    assert (verdict.usable, verdict.plan.trading_authorized) == (True, False)
    assert verdict.reason == "strategy C, 0 symbols, multiplier 0.0"


def test_file_of_exactly_one_mebibyte_is_read(tmp_path):
    text = json.dumps(valid_plan())
    path = write(tmp_path, text + " " * (MAX_FILE_BYTES - len(text)))
    assert path.stat().st_size == MAX_FILE_BYTES
    assert load_gameplan(path, today=PLAN_DATE).strategy == "A"


def test_symlink_to_a_regular_file_is_followed(tmp_path):
    link = tmp_path / "today.json"
    link.symlink_to(write(tmp_path, valid_plan()))
    assert load_gameplan(link, today=PLAN_DATE).strategy == "A"


def test_default_today_is_the_new_york_trading_date(tmp_path):
    before = trading_date()
    verdict = evaluate_gameplan(write(tmp_path, valid_plan(before)))
    assert verdict.usable or trading_date() != before  # only a midnight crossing may change the answer


# --- not configured, missing, unreadable -----------------------------------------------------------------


@pytest.mark.parametrize("path", [None, ""])
def test_no_path_configured(path):
    assert rejected(path, "not_configured") == "no gameplan path is configured"


def test_missing_file(tmp_path):
    assert rejected(tmp_path / "nope.json", "missing") == f"gameplan file not found: {tmp_path / 'nope.json'}"


def test_path_below_a_regular_file_is_missing(tmp_path):
    rejected(write(tmp_path, "{}") / "gameplan.json", "missing")


def test_dangling_symlink_is_missing(tmp_path):
    link = tmp_path / "today.json"
    link.symlink_to(tmp_path / "gone.json")
    rejected(link, "missing")


def test_directory(tmp_path):
    assert rejected(tmp_path, "unreadable") == f"{tmp_path} is not a regular file (directory)"


def test_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "gameplan.json"
    os.mkfifo(fifo)

    def release():  # a writer end lets a blocked reader's open() return
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    verdict = returns_promptly(lambda: evaluate_gameplan(fifo, today=PLAN_DATE), release)
    assert (verdict.kind, verdict.reason) == ("unreadable", f"{fifo} is not a regular file (FIFO)")


def test_symlink_to_dev_zero_does_not_block(tmp_path):
    link = tmp_path / "gameplan.json"
    link.symlink_to("/dev/zero")
    verdict = returns_promptly(lambda: evaluate_gameplan(link, today=PLAN_DATE))
    assert (verdict.kind, verdict.reason) == ("unreadable", f"{link} is not a regular file (character device)")


def test_permission_denied_maps_to_unreadable(tmp_path, monkeypatch):
    """The errno mapping, whoever runs the tests (root reads any file)."""
    path = write(tmp_path, valid_plan())
    real_open = os.open

    def open_denied(file, flags, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(loader.os, "open", open_denied)
    assert rejected(path, "unreadable") == f"cannot open {path}: Permission denied"


def test_unreadable_file_as_an_unprivileged_user():
    """A real EACCES from the kernel: as root, a forked child drops to nobody first."""
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        readable = write(Path(directory), valid_plan(), "readable.json")
        locked = write(Path(directory), valid_plan(), "locked.json")
        os.chmod(readable, 0o644)
        os.chmod(locked, 0o000)
        if os.geteuid() != 0:
            kinds = [evaluate_gameplan(p, today=PLAN_DATE).kind for p in (readable, locked)]
        else:
            kinds = _verdict_kinds_as_nobody([readable, locked])
    assert kinds == ["ok", "unreadable"]  # the readable twin proves the child itself works


def _verdict_kinds_as_nobody(paths: list[Path]) -> list[str]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            answer = json.dumps([evaluate_gameplan(p, today=PLAN_DATE).kind for p in paths])
        except BaseException as error:
            answer = json.dumps(f"child failed: {error!r}")
        os.write(write_end, answer.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = json.loads(pipe.read())
    os.waitpid(pid, 0)
    return answer


# --- invalid content ---------------------------------------------------------------------------------------


def test_larger_than_one_mebibyte(tmp_path):
    path = write(tmp_path, b" " * MAX_FILE_BYTES + b"{")
    assert rejected(path, "invalid") == f"{path} is larger than {MAX_FILE_BYTES} bytes (1 MiB)"


def test_huge_file_is_not_read_whole(tmp_path, monkeypatch):
    path = tmp_path / "gameplan.json"
    with open(path, "wb") as file:
        file.truncate(64 * MAX_FILE_BYTES)  # sparse: costs no disk
    read_sizes = []
    real_read = os.read
    monkeypatch.setattr(loader.os, "read", lambda fd, n: read_sizes.append(n) or real_read(fd, n))
    with pytest.raises(GameplanError, match="larger than"):
        load_gameplan(path, today=PLAN_DATE)
    assert sum(read_sizes) <= MAX_FILE_BYTES + 1


INVALID_CONTENT = [
    ("invalid UTF-8", b'{"session_id": "\xff"}', "not valid UTF-8: byte 0xff at offset 16"),
    ("UTF-8 BOM", "\ufeff" + json.dumps(valid_plan()), "not JSON: Unexpected UTF-8 BOM"),
    ("empty file", b"", "not JSON: Expecting value at line 1 column 1"),
    ("truncated JSON", json.dumps(valid_plan())[:-1], "not JSON: Expecting ',' delimiter"),
    ("trailing garbage", json.dumps(valid_plan()) + "x", "not JSON: Extra data"),
    ("duplicate top-level key", '{"strategy": "C", "strategy": "A"}', "not strict JSON: duplicate key 'strategy'"),
    ("duplicate nested key", json.dumps(valid_plan())[:-1] + ', "x": {"a": 1, "a": 1}}',
     "not strict JSON: duplicate key 'a'"),
    ("NaN", json.dumps(valid_plan()).replace("14.2", "NaN"), "not strict JSON: NaN is not a number"),
    ("Infinity", json.dumps(valid_plan()).replace("14.2", "Infinity"), "not strict JSON: Infinity is not a number"),
    ("-Infinity", json.dumps(valid_plan()).replace("-125.5", "-Infinity"),
     "not strict JSON: -Infinity is not a number"),
    ("float overflow", json.dumps(valid_plan()).replace("14.2", "1e400"),
     "not strict JSON: number out of range: 1e400"),
    ("integer with 5000 digits", json.dumps(valid_plan()).replace('"max_single_position": 10',
                                                                  '"max_single_position": ' + "9" * 5000),
     "not strict JSON: Exceeds the limit"),
    ("top level is a list", json.dumps([valid_plan()]), "the top level must be a JSON object (got list)"),
    ("top level is a string", '"gameplan"', "the top level must be a JSON object (got str)"),
    ("10 000 nested arrays", "[" * 10_000 + "]" * 10_000, "not strict JSON: nested too deeply"),
    ("10 000 nested objects in a field", '{"x": ' + '{"a": ' * 10_000 + "1" + "}" * 10_001,
     "not strict JSON: nested too deeply"),
    ("300 nested arrays in an unknown field", json.dumps(valid_plan())[:-1] + ', "x": ' + "[" * 300 + "]" * 300 + "}",
     "gameplan: Invalid JSON: recursion limit exceeded"),
]


@pytest.mark.parametrize(("content", "reason"), [c[1:] for c in INVALID_CONTENT], ids=[c[0] for c in INVALID_CONTENT])
def test_invalid_content(tmp_path, content, reason):
    assert rejected(write(tmp_path, content), "invalid").startswith(reason)


SCHEMA_VIOLATIONS = [
    ("string where int expected", ("hard_limits", "max_single_position"), "1",
     'hard_limits.max_single_position: Input should be a valid integer (got "1")'),
    ("loss limit over 100", ("hard_limits", "max_daily_loss_pct"), 250,
     "hard_limits.max_daily_loss_pct: Input should be less than or equal to 100 (got 250)"),
    ("strategy D", ("strategy",), "D", "strategy: Input should be 'A', 'B' or 'C' (got \"D\")"),
    ("unknown field", ("surprise",), True, "surprise: Extra inputs are not permitted (got true)"),
    ("bad symbol in a list", ("symbols",), ["SPY", "spy"],
     "symbols[1]: String should match pattern '^[A-Z][A-Z0-9]{0,9}(\\.[A-Z0-9]{1,4})?$' (got \"spy\")"),
    ("long input is shortened", ("alert_message",), "x" * 3000,
     f'alert_message: String should have at most 2000 characters (got "{"x" * 56}...)'),
    ("strategy C with symbols", ("strategy",), "C", "symbols: must be empty for strategy C (got [\"SPY\", "),
]


@pytest.mark.parametrize(("where", "value", "reason"), [v[1:] for v in SCHEMA_VIOLATIONS],
                         ids=[v[0] for v in SCHEMA_VIOLATIONS])
def test_schema_violation_names_the_field(tmp_path, where, value, reason):
    plan = valid_plan()
    target = plan
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    assert rejected(write(tmp_path, plan), "invalid").startswith(reason)


def test_missing_field_and_error_count(tmp_path):
    plan = valid_plan()
    del plan["hard_limits"]["max_intraday_pivots"]
    plan["strategy"] = "D"
    plan["regime"] = ""
    assert rejected(write(tmp_path, plan), "invalid") == (
        'regime: String should have at least 1 character (got "") (+2 more)')
    del plan["strategy"], plan["regime"]
    assert rejected(write(tmp_path, plan), "invalid") == "regime: Field required (+2 more)"


# --- descriptive fields: open; contradictions: no authority ------------------------------------------------


def test_unknown_descriptive_values_are_usable_and_logged_once_each(tmp_path, caplog):
    """A real analyst's plan with "regime": "normal" trades; it is not turned into Strategy C."""
    plan = valid_plan()
    plan.update(regime="normal", bias="Bullish", expected_behavior="trending", geo_risk="élevé")
    path = write(tmp_path, plan)
    with caplog.at_level("WARNING", logger="src.gameplan.loader"):
        verdict = evaluate_gameplan(path, today=PLAN_DATE)
    assert (verdict.usable, verdict.plan.trading_authorized, verdict.plan.regime) == (True, True, "normal")
    warnings = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "src.gameplan.loader"]
    assert warnings == [
        ("WARNING", f'gameplan {path}: regime "normal" is not a known value (bull_trend, bear_trend, range_bound, '
                    "high_volatility, crisis); accepted as free text, it decides nothing"),
        ("WARNING", f'gameplan {path}: bias "Bullish" is not a known value (bullish, bearish, neutral); '
                    "accepted as free text, it decides nothing"),
        ("WARNING", f'gameplan {path}: geo_risk "élevé" is not a known value (low, medium, high); '
                    "accepted as free text, it decides nothing"),
    ]


def test_known_descriptive_values_and_the_emergency_plan_log_nothing(tmp_path, caplog):
    with caplog.at_level("DEBUG", logger="src.gameplan.loader"):
        assert evaluate_gameplan(write(tmp_path, valid_plan()), today=PLAN_DATE).usable
        generate_strategy_c(tmp_path / "emergency.json")
    assert [r for r in caplog.records if r.name == "src.gameplan.loader"] == []


CONTRADICTIONS = [
    ("a traded symbol under earnings blackout", {"earnings_blackout": ["SPY", "NVDA"]},
     "earnings_blackout: SPY is also in symbols: a symbol under earnings blackout is not traded; remove it from "
     'symbols or from earnings_blackout (got ["SPY", "NVDA"])'),
    ("a size on an unverified VIX", {"vix_source_verified": False},
     "vix_source_verified: false, but position_size_multiplier is 0.75: positions are not sized on an unverified "
     "VIX reading; verify the source and set vix_source_verified to true, or use strategy C (multiplier 0) "
     "(got false)"),
    ("stale fields without quarantine", {"data_quality": {"quarantine_active": False, "stale_fields": ["vix"],
                                                          "last_verified": "2026-02-10T12:45:00Z"}},
     "data_quality.stale_fields: lists stale inputs but data_quality.quarantine_active is false: set "
     'quarantine_active to true, or empty stale_fields once the data is fresh (got ["vix"])'),
]


@pytest.mark.parametrize(("changes", "reason"), [c[1:] for c in CONTRADICTIONS], ids=[c[0] for c in CONTRADICTIONS])
def test_a_plan_that_contradicts_itself_is_not_usable_and_the_reason_names_the_fields(tmp_path, changes, reason):
    assert rejected(write(tmp_path, {**valid_plan(), **changes}), "invalid") == reason


def _padded(plan: dict, size: int = MAX_FILE_BYTES) -> str:
    text = json.dumps(plan)
    assert len(text) <= size, len(text)
    return text + " " * (size - len(text))


def test_a_one_mebibyte_plan_with_every_list_at_its_maximum_is_usable(tmp_path):
    plan = valid_plan()
    plan.update(symbols=[f"S{i}" for i in range(100)], earnings_blackout=[f"E{i}" for i in range(1000)],
                catalysts=["c" * 500] * 100, key_levels={f"S{i}": {f"l{j}": 1.5 for j in range(32)}
                                                         for i in range(200)})
    path = write(tmp_path, _padded(plan))
    assert path.stat().st_size == MAX_FILE_BYTES
    verdict = evaluate_gameplan(path, today=PLAN_DATE)
    assert (verdict.usable, verdict.reason) == (True, "strategy A, 100 symbols, multiplier 0.75")


def test_a_one_mebibyte_earnings_blackout_is_rejected_at_its_limit_not_checked_for_minutes(tmp_path):
    """~130 000 distinct tickers: valid before, and checked in quadratic time (minutes, so the bot, which
    validates again, missed BOT_READY_TIMEOUT). Now a list longer than its maximum is invalid."""
    names = (a + b + c + d for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
             for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for d in "ABCDEFGHIJ")
    plan = {**valid_plan(), "earnings_blackout": [next(names) for _ in range(130_000)]}
    path = write(tmp_path, _padded(plan))
    assert rejected(path, "invalid").startswith(
        "earnings_blackout: Tuple should have at most 1000 items after validation, not 130000 (got [")


# --- the trading date ---------------------------------------------------------------------------------------


def test_yesterdays_plan_is_stale(tmp_path):
    path = write(tmp_path, valid_plan(PLAN_DATE - timedelta(days=1)))
    assert rejected(path, "stale") == "date: gameplan is for 2026-02-09, today in America/New_York is 2026-02-10"


def test_tomorrows_plan_is_stale(tmp_path):
    rejected(write(tmp_path, valid_plan(PLAN_DATE + timedelta(days=1))), "stale")


def test_date_boundary_uses_new_york_not_utc(tmp_path):
    """22:30 in New York on the 10th is already the 11th in UTC: the plan for the 10th is today's."""
    now = datetime(2026, 2, 11, 3, 30, tzinfo=timezone.utc)
    assert now.date() == date(2026, 2, 11)
    path = write(tmp_path, valid_plan(date(2026, 2, 10)))
    assert load_gameplan(path, today=trading_date(now)).date == date(2026, 2, 10)
    rejected(write(tmp_path, valid_plan(now.date()), "utc.json"), "stale", today=trading_date(now))


@pytest.mark.parametrize(("instant", "expected"), [
    (datetime(2026, 2, 11, 4, 59, 59, tzinfo=timezone.utc), date(2026, 2, 10)),  # EST: UTC-5
    (datetime(2026, 2, 11, 5, 0, 0, tzinfo=timezone.utc), date(2026, 2, 11)),
    (datetime(2026, 7, 1, 3, 59, 59, tzinfo=timezone.utc), date(2026, 6, 30)),  # EDT: UTC-4
    (datetime(2026, 7, 1, 4, 0, 0, tzinfo=timezone.utc), date(2026, 7, 1)),
    (datetime(2026, 2, 10, 23, 0, tzinfo=timezone(timedelta(hours=9))), date(2026, 2, 10)),  # Tokyo 23:00
])
def test_trading_date(instant, expected):
    assert trading_date(instant) == expected


def test_trading_date_refuses_naive_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        trading_date(datetime(2026, 2, 10, 12, 0))


# --- quarantine, emergency plans, verdicts --------------------------------------------------------------------


def test_quarantined_plan(tmp_path):
    plan = valid_plan()
    plan["data_quality"].update(quarantine_active=True, stale_fields=["vix", "breadth"])
    assert rejected(write(tmp_path, plan), "quarantined") == (
        "data_quality.quarantine_active: data quarantine is active (stale fields: vix, breadth)")


def test_emergency_loader_accepts_a_quarantined_old_strategy_c_plan(tmp_path):
    plan = strategy_c_plan()
    plan["data_quality"]["quarantine_active"] = True
    assert load_emergency_plan(write(tmp_path, plan)).strategy == "C"


def test_emergency_loader_refuses_a_trading_plan(tmp_path):
    with pytest.raises(GameplanError) as caught:
        load_emergency_plan(write(tmp_path, valid_plan()))
    assert (caught.value.kind, caught.value.reason) == (
        "invalid", "strategy: an emergency plan must be strategy C (got A)")


def test_emergency_loader_applies_every_file_check(tmp_path):
    with pytest.raises(GameplanError) as caught:
        load_emergency_plan(write(tmp_path, '{"a": 1, "a": 2}'))
    assert caught.value.kind == "invalid"


@pytest.mark.parametrize(("error", "kind", "reason"), [
    (RuntimeError("boom\nsecond line"), "invalid", "unexpected RuntimeError: boom second line"),
    (RecursionError("too deep"), "invalid", "unexpected RecursionError: too deep"),
    (OSError(errno.EIO, "Input/output error"), "unreadable", "unexpected OSError: [Errno 5] Input/output error"),
])
def test_unexpected_error_becomes_a_verdict(tmp_path, monkeypatch, error, kind, reason):
    def explode(text):
        raise error

    monkeypatch.setattr(Gameplan, "model_validate_json", explode)
    verdict = evaluate_gameplan(write(tmp_path, valid_plan()), today=PLAN_DATE)
    assert verdict == GameplanVerdict(False, None, kind, reason)


def test_read_error_after_open_is_unreadable(tmp_path, monkeypatch):
    path = write(tmp_path, valid_plan())

    def fail(fd, n):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(loader.os, "read", fail)
    with pytest.raises(GameplanError) as caught:
        load_gameplan(path, today=PLAN_DATE)
    assert (caught.value.kind, caught.value.reason) == ("unreadable", f"cannot read {path}: Input/output error")


@pytest.mark.parametrize(("usable", "has_plan", "kind"), [
    (True, False, "ok"), (False, True, "invalid"), (True, True, "invalid"), (False, False, "ok")])
def test_verdict_cannot_be_inconsistent(usable, has_plan, kind):
    plan = Gameplan.model_validate_json(json.dumps(valid_plan())) if has_plan else None
    with pytest.raises(ValueError):
        GameplanVerdict(usable, plan, kind, "")


# --- the CLI ----------------------------------------------------------------------------------------------------


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "src.gameplan.loader", *args], cwd=PROJECT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_cli_usable_plan(tmp_path):
    path = write(tmp_path, valid_plan())
    result = run_cli(str(path), "--date", "2026-02-10")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"OK: gameplan {path} usable: strategy A, 3 symbols, multiplier 0.75\n"


def test_cli_says_on_its_own_line_when_a_usable_plan_grants_no_trading_authority(tmp_path):
    path = write(tmp_path, strategy_c_plan())
    result = run_cli(str(path), "--date", "2026-02-10")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"OK: gameplan {path} usable: strategy C, 0 symbols, multiplier 0.0",
        "NO TRADING AUTHORITY: the plan is strategy C (no trading) — the bot would run it and place no orders; "
        "the orchestrator would exit 2",
    ]


def test_cli_warns_on_stderr_about_an_unknown_descriptive_value_and_accepts_the_plan(tmp_path):
    path = write(tmp_path, {**valid_plan(), "regime": "normal"})
    result = run_cli(str(path), "--date", "2026-02-10")
    assert result.returncode == 0
    assert result.stdout == f"OK: gameplan {path} usable: strategy A, 3 symbols, multiplier 0.75\n"
    assert result.stderr == (f'WARNING: gameplan {path}: regime "normal" is not a known value (bull_trend, '
                             "bear_trend, range_bound, high_volatility, crisis); accepted as free text, it decides "
                             "nothing\n")


def test_cli_contradiction_is_invalid_and_names_the_fields(tmp_path):
    path = write(tmp_path, {**valid_plan(), "earnings_blackout": ["QQQ"]})
    result = run_cli(str(path), "--date", "2026-02-10")
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout == ("INVALID (invalid): earnings_blackout: QQQ is also in symbols: a symbol under earnings "
                             "blackout is not traded; remove it from symbols or from earnings_blackout (got "
                             '["QQQ"]) — the orchestrator would deploy Strategy C\n')


def test_cli_invalid_plan(tmp_path):
    plan = valid_plan()
    plan["hard_limits"]["max_daily_loss_pct"] = 250
    result = run_cli(str(write(tmp_path, plan)), "--date", "2026-02-10")
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout == ("INVALID (invalid): hard_limits.max_daily_loss_pct: Input should be less than or equal "
                             "to 100 (got 250) — the orchestrator would deploy Strategy C\n")


def test_cli_defaults_to_today_in_new_york(tmp_path):
    result = run_cli(str(write(tmp_path, valid_plan(date(2000, 1, 3)))))
    assert result.returncode == 1
    assert result.stdout.startswith("INVALID (stale): date: gameplan is for 2000-01-03, today in America/New_York")


@pytest.mark.parametrize(("make", "kind"), [
    (lambda d: d / "missing.json", "missing"),
    (lambda d: d, "unreadable"),
    (lambda d: write(d, '{"a": NaN}'), "invalid"),
])
def test_cli_rejections_are_one_line_without_traceback(tmp_path, make, kind):
    result = run_cli(str(make(tmp_path)), "--date", "2026-02-10")
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.startswith(f"INVALID ({kind}): ") and result.stdout.count("\n") == 1


def test_cli_survives_an_ascii_only_terminal(tmp_path):
    result = run_cli(str(tmp_path / "missing.json"), env={"PYTHONIOENCODING": "ascii"})
    assert (result.returncode, result.stderr) == (1, "")
    assert "\\u2014 the orchestrator would deploy Strategy C" in result.stdout


@pytest.mark.parametrize("args", [(), ("a.json", "b.json"), ("a.json", "--date", "10/02/2026"),
                                  ("a.json", "--date", "20260210"), ("--bogus",)])
def test_cli_usage_errors_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == "" and "usage:" in result.stderr and "Traceback" not in result.stderr


def test_the_docs_match_the_cli_the_known_values_and_the_limits():
    docs = [(PROJECT / "docs" / name).read_text(encoding="utf-8") for name in ("OPERATIONS.md", "ARCHITECTURE.md")]
    readme = " ".join(" ".join(docs).split())
    row = next(line for line in readme.split(" | ") if line.startswith("whether the orchestrator would use"))
    for line_start in ("`OK: ...` exit 0", "`NO TRADING AUTHORITY: ...`", "`INVALID (kind): <field>: <why>` exit 1",
                       "`WARNING:` on stderr"):
        assert line_start in row
    for field, known in KNOWN_VALUES.items():
        assert f"`{field}` {', '.join(known)}" in readme
    for limit in (f"at most {schema.MAX_SYMBOLS} `symbols`", f"{schema.MAX_EARNINGS_BLACKOUT} `earnings_blackout`",
                  f"{schema.MAX_CATALYSTS} `catalysts`", f"{schema.MAX_STALE_FIELDS} `data_quality.stale_fields`",
                  f"{schema.MAX_KEY_LEVEL_SYMBOLS} symbols × {schema.MAX_LEVELS_PER_SYMBOL} levels in `key_levels`"):
        assert limit in readme
