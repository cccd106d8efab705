"""Orchestration configuration: environment variables (and a `.env` file) validated once.

The settings are declared in `src.core.settings` (name, type and range, default, what is
accepted, secret or not); the validation model and OrchestrationConfig's defaults are built here
from those declarations. Every setting has a default that works for development, so no variable
is required. A bad value never becomes a traceback: `ConfigError` carries one line naming the
variable, the value and what is accepted (the webhook URL is never echoed, it holds a token).
`.env` in the repository root is read as data by this module alone (python-dotenv, no expansion),
never by systemd or a shell; real environment variables win over it.
"""

from __future__ import annotations

import codecs
import io
import math
import os
import shlex
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from src.core.cli import ArgumentParser
from src.core.resetwindows import ResetWindow, parse_windows, window_at
from src.core.schedule import (
    WeeklyTime,
    at_new_york,
    autorestart_window,
    ibc_time,
    parse_autorestart_time,
    parse_cycle_time,
    parse_weekly_time,
)
from src.core.settings import (
    API_PORTS as API_PORTS,
)
from src.core.settings import (
    BY_NAME,
    CONFIG_SETTINGS,
    DEFAULT_PASSWORD_FILE,
    IBC_COLD_RESTART,
    SETTINGS,
    Check,
    Setting,
    stale_docs,
    write_docs,
)
from src.core.settings import (
    REPO_ROOT as REPO_ROOT,
)

DOTENV_MAX_BYTES = 64 * 1024
COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
# Never in the bot's environment: the secret settings, and two secrets the Gateway's image reads.
_BOT_WITHHELD = (*(s.name for s in SETTINGS if s.secret), "TWS_PASSWORD", "VNC_SERVER_PASSWORD")


class ConfigError(Exception):
    """A configuration problem, as one line an operator can act on."""


def _field(s: Setting) -> tuple[Any, Any]:
    """One validation field from a declaration: the type with its bounds and checks, the default as
    written in .env (validated like a value the operator wrote: validate_default) and the alias."""
    base: Any = str if s.kind is Path else s.kind
    metadata: list[Any] = []
    if s.case is not None:
        method = str.lower if s.case == "lower" else str.upper
        metadata.append(BeforeValidator(lambda v: method(v) if isinstance(v, str) else v))
    if base is int:
        metadata.append(BeforeValidator(_whole))
    constraints: dict[str, Any] = {key: value for key, value in (("gt", s.gt), ("ge", s.ge), ("le", s.le),
                                                                ("pattern", s.pattern)) if value is not None}
    if base is float:
        constraints["allow_inf_nan"] = False
    if constraints:
        metadata.append(Field(**constraints))
    if s.choices:
        metadata.append(AfterValidator(_one_of(s.choices)))
    if s.check is not None:
        metadata.append(AfterValidator(_checked(s.check)))
    annotation: Any = Annotated[base, *metadata] if metadata else base
    if s.default is None:
        annotation = annotation | None
    return annotation, Field(s.default, alias=s.name)


def _whole(value: object) -> object:
    """A whole number is plain decimal digits: not 4002.0, +4002, 4_002 or 1e3 (which int() would take)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("expected plain decimal digits")
    return value


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"not one of {', '.join(choices)}")
        return value
    return check


def _checked(check: Check) -> Callable[[str], str]:
    def after(value: str) -> str:
        check(value)
        return value
    return after


# Type and range checks, one field per declaration; field aliases are the environment variable names.
_FIELDS: dict[str, Any] = {s.attr: _field(s) for s in CONFIG_SETTINGS}
_Settings: type[BaseModel] = create_model(
    "_Settings", __config__=ConfigDict(frozen=True, extra="ignore", validate_default=True), **_FIELDS
)


def config_for_cli(prog: str, environ: Mapping[str, str] | None = None,
                   on_error: Callable[[str, Salvage], None] | None = None) -> OrchestrationConfig | None:
    """The configuration for a CLI, or None after one line on stderr naming what to fix (and `on_error`,
    given the line and what of the configuration can still be trusted, to tell the operator)."""
    try:
        return OrchestrationConfig.from_env(environ)
    except ConfigError as exc:
        line = f"{prog}: configuration error: {exc}"
        print(line, file=sys.stderr)
        if on_error is not None:
            on_error(line, salvage(environ))
        return None




def _strategy(spec: str | None) -> str | None:
    """FILE.py:ATTR with FILE relative to the repository, like every path here; MODULE:ATTR as is."""
    if spec is None:
        return None
    module, _, attr = spec.rpartition(":")
    return f"{_resolve(module)}:{attr}" if module.endswith(".py") else spec


def _resolve(value: str) -> Path:
    """Relative paths are relative to the repository, whatever the working directory."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def _real(path: Path) -> Path:
    """The path with symlinks and '..' resolved, as far as it exists (a symlink loop: as written)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _accounts(value: str, mode: str) -> tuple[str, ...]:
    """EXPECTED_ACCOUNTS as ids, each consistent with the mode: paper ids start with D, live ones do not."""
    ids = tuple(dict.fromkeys(item.strip().upper() for item in value.split(",") if item.strip()))
    for account in ids:
        if (mode == "paper") != account.startswith("D"):
            kind = "paper accounts start with D" if mode == "paper" else "live accounts do not start with D"
            raise ConfigError(
                f"EXPECTED_ACCOUNTS={value!r} is invalid: {account} is not a {mode} account "
                f"(TRADING_MODE={mode}; {kind})"
            )
    return ids


def _build(values: Mapping[str, Any]) -> dict[str, Any]:
    """OrchestrationConfig's fields from validated values: paths resolved, the port and the accounts by
    mode, the command split. The same for the defaults (no values) as for any environment."""
    fields = dict(values)
    for s in CONFIG_SETTINGS:
        if s.kind is Path and values[s.attr] is not None:
            fields[s.attr] = _resolve(values[s.attr])
    mode = values["trading_mode"]
    command = values["bot_command"]
    fields.update(
        gateway_port=values["gateway_port"] if values["gateway_port"] is not None else API_PORTS[mode],
        bot_command=tuple(shlex.split(command)) if command else (sys.executable, "-m", "src.main"),
        bot_ready=values["bot_ready"] or ("api" if command else "notify"),
        bot_strategy=_strategy(values["bot_strategy"]),
        ibkr_reset_windows=parse_windows(values["ibkr_reset_windows"]),
        gateway_login_hours=parse_windows(values["gateway_login_hours"]) if values["gateway_login_hours"] else None,
        daily_cycle_time=parse_cycle_time(values["daily_cycle_time"]),
        weekly_login_time=parse_weekly_time(values["weekly_login_time"]) if values["weekly_login_time"] else None,
        auto_restart_time=parse_autorestart_time(values["auto_restart_time"]),
        expected_accounts=_accounts(values["expected_accounts"] or "", mode),
    )
    return fields


_DEFAULTS = _build(_Settings.model_validate({}).model_dump())


@dataclass(frozen=True)
class OrchestrationConfig:
    """Everything the orchestrator needs, resolved to absolute paths and real types. The defaults are
    the declared ones (src/core/settings.py), as from_env resolves them when nothing is set."""

    trading_mode: str = _DEFAULTS["trading_mode"]
    gateway_host: str = _DEFAULTS["gateway_host"]
    gateway_port: int = _DEFAULTS["gateway_port"]
    docker_compose_dir: Path = _DEFAULTS["docker_compose_dir"]
    gateway_service: str = _DEFAULTS["gateway_service"]
    gateway_container: str = _DEFAULTS["gateway_container"]
    gateway_image: str | None = _DEFAULTS["gateway_image"]  # pinned by digest; None = the Compose file's pin
    gateway_health_timeout: float = _DEFAULTS["gateway_health_timeout"]
    gateway_health_retry_interval: float = _DEFAULTS["gateway_health_retry_interval"]
    health_check_timeout: float = _DEFAULTS["health_check_timeout"]
    gateway_health_client_id: int = _DEFAULTS["gateway_health_client_id"]
    gameplan_path: Path | None = _DEFAULTS["gameplan_path"]
    emergency_gameplan_path: Path = _DEFAULTS["emergency_gameplan_path"]
    bot_command: tuple[str, ...] = _DEFAULTS["bot_command"]
    bot_ready: str = _DEFAULTS["bot_ready"]  # BOT_READY, resolved: api (the firewall's handshake) or notify (READY=1)
    bot_client_id: int = _DEFAULTS["bot_client_id"]
    bot_strategy: str | None = _DEFAULTS["bot_strategy"]  # MODULE:ATTR, checked at start-up; None = idle
    bot_ready_timeout: float = _DEFAULTS["bot_ready_timeout"]
    bot_log_level: str = _DEFAULTS["bot_log_level"]
    discord_webhook_url: str | None = field(default=_DEFAULTS["discord_webhook_url"], repr=False)
    discord_mention: str | None = _DEFAULTS["discord_mention"]  # who a critical alert pings; None = nobody
    heartbeat_url: str | None = field(default=_DEFAULTS["heartbeat_url"], repr=False)  # the dead-man's switch
    heartbeat_fail_url: str | None = field(default=_DEFAULTS["heartbeat_fail_url"], repr=False)
    heartbeat_interval: float = _DEFAULTS["heartbeat_interval"]
    docker_command_timeout: float = _DEFAULTS["docker_command_timeout"]
    docker_wait_timeout: float = _DEFAULTS["docker_wait_timeout"]
    twofa_wait_timeout: float = _DEFAULTS["twofa_wait_timeout"]
    ibkr_reset_windows: tuple[ResetWindow, ...] = _DEFAULTS["ibkr_reset_windows"]
    supervise_stop_gateway: bool = _DEFAULTS["supervise_stop_gateway"]
    gateway_down_alert_after: float = _DEFAULTS["gateway_down_alert_after"]  # seconds down before one alert
    gateway_login_hours: tuple[ResetWindow, ...] | None = _DEFAULTS["gateway_login_hours"]  # None = any hour
    trading_calendar: str = _DEFAULTS["trading_calendar"]  # XNYS or ALWAYS (src.core.schedule)
    daily_cycle_time: time = _DEFAULTS["daily_cycle_time"]  # New York wall clock
    weekly_login_time: WeeklyTime | None = _DEFAULTS["weekly_login_time"]  # None = no planned weekly login
    auto_restart_time: time | None = _DEFAULTS["auto_restart_time"]  # IBC's, New York; None = no extra window
    state_dir: Path = _DEFAULTS["state_dir"]
    log_dir: Path = _DEFAULTS["log_dir"]
    expected_accounts: tuple[str, ...] = _DEFAULTS["expected_accounts"]  # empty = any account
    gateway_login_budget: int = _DEFAULTS["gateway_login_budget"]
    gateway_soft_restart_budget: int = _DEFAULTS["gateway_soft_restart_budget"]
    gateway_memory_alert_mb: int = _DEFAULTS["gateway_memory_alert_mb"]
    # The environment child processes (docker compose, the bot) get: the process
    # environment plus `.env`, so COMPOSE_FILE, COMPOSE_PROJECT_NAME... reach Compose exactly
    # as the operator wrote them; TRADING_MODE, GATEWAY_PORT, STATE_DIR, BOT_CLIENT_ID and
    # FIREWALL_USER (this process's uid:gid, the owner of state/) as resolved, for the firewall.
    child_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, dotenv: Path | None = None
    ) -> OrchestrationConfig:
        """Read, validate and default the configuration; raise ConfigError on a bad value."""
        env = dict(os.environ if environ is None else environ)
        dotenv = REPO_ROOT / ".env" if dotenv is None else dotenv
        merged = {**read_dotenv(dotenv), **env}
        if merged.get(IBC_COLD_RESTART, "").strip():
            raise ConfigError(
                f"{IBC_COLD_RESTART} is set: IBC's Sunday cold restart would be a second weekly login that the "
                "login budget, GATEWAY_LOGIN_HOURS and the heads-up know nothing of; remove it and set the weekly "
                "login in WEEKLY_LOGIN_TIME (e.g. 'sun 17:00')")
        raw = {s.name: merged[s.name].strip() for s in CONFIG_SETTINGS if merged.get(s.name, "").strip() != ""}
        try:
            values = _Settings.model_validate(raw).model_dump()
        except ValidationError as exc:
            raise ConfigError(_describe(exc, raw, _secret_values(raw, merged))) from None
        if values["gateway_health_client_id"] == values["bot_client_id"]:
            raise ConfigError(
                f"GATEWAY_HEALTH_CLIENT_ID={values['gateway_health_client_id']} is invalid: it must differ "
                "from BOT_CLIENT_ID (a health probe must never take the bot's client id)"
            )
        fields = _build(values)
        gameplan, emergency = fields["gameplan_path"], fields["emergency_gameplan_path"]
        if gameplan is not None and _real(gameplan) == _real(emergency):
            raise ConfigError(
                f"GAMEPLAN_PATH={values['gameplan_path']!r} is invalid: it is EMERGENCY_GAMEPLAN_PATH "
                f"({_real(emergency)}), where Strategy C is written: the analyst's plan would be overwritten"
            )
        _check_compose(fields["docker_compose_dir"], values["docker_compose_dir"], merged)
        mode = fields["trading_mode"]
        child_env = {**merged, "TRADING_MODE": mode, "GATEWAY_PORT": str(fields["gateway_port"]),
                     "STATE_DIR": str(fields["state_dir"].absolute()), "BOT_CLIENT_ID": str(fields["bot_client_id"]),
                     "EXPECTED_ACCOUNTS": ",".join(fields["expected_accounts"]),
                     "FIREWALL_USER": f"{os.getuid()}:{os.getgid()}"}
        if fields["auto_restart_time"] is not None:  # IBC reads only hh:mm AM/PM: whatever was written
            child_env["AUTO_RESTART_TIME"] = ibc_time(fields["auto_restart_time"])
        config = cls(**fields, child_env=child_env)
        _check_weekly_login(config, values["weekly_login_time"])
        return config

    @property
    def weekly_login(self) -> WeeklyTime | None:
        """WEEKLY_LOGIN_TIME: when the supervisor restarts the Gateway each week (None = never)."""
        return self.weekly_login_time

    @property
    def reset_windows(self) -> tuple[ResetWindow, ...]:
        """Every window in which the Gateway may be down or a login may fail for reasons of IBKR's or
        IBC's own: IBKR_RESET_WINDOWS, plus the window around IBC's daily restart (AUTO_RESTART_TIME,
        schedule.autorestart_window). `ibkr_reset_windows` stays the setting alone."""
        if self.auto_restart_time is None:
            return self.ibkr_reset_windows
        return (*self.ibkr_reset_windows, autorestart_window(self.auto_restart_time))

    @property
    def read_only_api(self) -> bool:
        """READ_ONLY_API (IBC's ReadOnlyApi, which Compose hands the Gateway) says the API takes no orders."""
        return self.child_env.get("READ_ONLY_API", "").strip().lower() in ("yes", "true", "1")

    @property
    def bot_env(self) -> dict[str, str]:
        """The bot's environment: child_env without secrets (the Gateway holds the credentials, the
        bot sends no alerts), so a bot that logs or dumps its environment has nothing to leak."""
        return {k: v for k, v in self.child_env.items() if k not in _BOT_WITHHELD and v not in self.secrets}

    @cached_property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line, an alert or an exception text: the webhook URL
        and its token, TWS_PASSWORD, TWS_USERID and the contents of TWS_PASSWORD_SECRET_FILE."""
        found = [self.discord_webhook_url or "", self.heartbeat_url or "", self.heartbeat_fail_url or ""]
        for url in (self.heartbeat_url, self.heartbeat_fail_url):  # a monitor's token is a path segment
            found.extend(segment for segment in (url or "").split("?")[0].split("/")[3:] if len(segment) >= 8)
        if self.discord_webhook_url:
            found.append(self.discord_webhook_url.rstrip("/").rsplit("/", 1)[-1])
        for name in ("TWS_PASSWORD", "TWS_USERID"):
            found.append(self.child_env.get(name, ""))
        found.extend(self._password_file_secrets())
        return tuple(dict.fromkeys(s for s in found if len(s) >= 4))

    def _password_file_secrets(self) -> list[str]:
        """The password Compose hands the Gateway as a Docker secret, as the image would read it."""
        return password_file_secrets(self.child_env, self.docker_compose_dir)


def password_file_secrets(env: Mapping[str, str], compose_dir: Path) -> list[str]:
    """The contents of TWS_PASSWORD_SECRET_FILE (its default under HOME), as Compose resolves the path."""
    home = env.get("HOME", "")
    name = env.get("TWS_PASSWORD_SECRET_FILE", "").strip()
    if not name:
        if not home:
            return []
        name = f"{home}/{DEFAULT_PASSWORD_FILE}"
    elif name.startswith("~/") and home:
        name = f"{home}/{name[2:]}"
    path = Path(name)
    path = path if path.is_absolute() else compose_dir / path  # Compose's rule
    try:
        text = _read_small_file(path).decode("utf-8", "replace")
    except (FileNotFoundError, _FileProblem, OSError):
        return []  # no file (yet): nothing to redact; Compose reports it when it needs it
    return [text.rstrip("\r\n"), text.strip()]


def _secret_values(raw: Mapping[str, str], env: Mapping[str, str]) -> list[str]:
    """Every value that must not be echoed in an error, whichever variable holds it: the secret settings',
    the Gateway's credentials and the password file's contents."""
    found = [raw.get(s.name, "") for s in SETTINGS if s.secret]
    found += [env.get(name, "") for name in ("TWS_PASSWORD", "TWS_USERID", "VNC_SERVER_PASSWORD")]
    found += password_file_secrets(env, _DEFAULTS["docker_compose_dir"])
    return [value for value in found if len(value) >= 4]


# A Monday: the weekly login is checked against the reset windows in one ordinary (winter) week.
_SAMPLE_WEEK = date(2026, 1, 5)


def _check_weekly_login(config: OrchestrationConfig, given: str | None) -> None:
    """A planned weekly login inside a reset window would fail (and may cost a 2FA push): refuse it."""
    weekly = config.weekly_login_time
    if weekly is None:
        return
    window = window_at(at_new_york(_SAMPLE_WEEK + timedelta(days=weekly.day), weekly.at), config.reset_windows)
    if window is not None:
        raise ConfigError(
            f"WEEKLY_LOGIN_TIME={given!r} is invalid: it falls in the reset window '{window.describe()}' "
            "(IBKR_RESET_WINDOWS, AUTO_RESTART_TIME), where a login may fail: choose a time outside it"
        )


def _describe(exc: ValidationError, raw: Mapping[str, str], secrets: Sequence[str] = ()) -> str:
    """The first validation error as one operator-facing line; a value holding a secret (a password pasted
    into the wrong line) is never echoed."""
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "configuration"
    setting = BY_NAME.get(name)
    accepted = setting.expected if setting is not None else "a valid value"
    if setting is not None and setting.secret:
        return f"{name} is invalid ({_first_line(error['msg'])}): expected {accepted}"
    value = raw.get(name, "")
    if any(secret in value for secret in secrets):
        return f"{name} is invalid (its value, withheld, holds a secret: a password or token in the wrong " \
               f"line?): expected {accepted}"
    return f"{name}={value!r} is invalid: expected {accepted}"


def _first_line(text: str) -> str:
    text = text.removeprefix("Value error, ")
    return text.splitlines()[0] if text else text


def _check_compose(directory: Path, given: str, env: Mapping[str, str]) -> None:
    """The Compose file(s) `docker compose` will read from DOCKER_COMPOSE_DIR must exist."""
    if not directory.is_dir():
        raise ConfigError(f"DOCKER_COMPOSE_DIR={given!r} is invalid: {directory} is not a directory")
    files = env.get("COMPOSE_FILE", "").strip()
    if files:
        separator = env.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        for name in filter(None, files.split(separator)):
            path = Path(name).expanduser()
            path = path if path.is_absolute() else directory / path
            if not path.is_file():
                raise ConfigError(
                    f"COMPOSE_FILE={files!r} is invalid: {path} is not a file "
                    "(relative names are taken from DOCKER_COMPOSE_DIR)"
                )
    elif not any((directory / name).is_file() for name in COMPOSE_FILE_NAMES):
        raise ConfigError(
            f"DOCKER_COMPOSE_DIR={given!r} is invalid: {directory} holds no Compose file "
            f"({', '.join(COMPOSE_FILE_NAMES)}) and COMPOSE_FILE is unset"
        )


class _FileProblem(Exception):
    """Why a small configuration file cannot be read as text (one phrase)."""


_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}


def _require_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise _FileProblem(f"not a regular file but {_KINDS.get(stat.S_IFMT(mode), 'something else')}")


def _read_small_file(path: Path, limit: int = DOTENV_MAX_BYTES) -> bytes:
    """A regular file of at most `limit` bytes, read without ever blocking (a FIFO, a device, a huge file
    are refused, not read). FileNotFoundError when it is absent; _FileProblem or OSError otherwise."""
    _require_regular(os.stat(path).st_mode)  # before opening it: opening a device can have effects
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)  # what was opened, should the name have been swapped meanwhile
        _require_regular(info.st_mode)
        if info.st_size > limit:
            raise _FileProblem(f"{info.st_size} bytes, more than the {limit // 1024} KiB a settings file may have")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise _FileProblem(f"more than the {limit // 1024} KiB a settings file may have")
        return b"".join(chunks)
    finally:
        os.close(fd)


_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def read_dotenv(path: Path) -> dict[str, str]:
    """`.env` as data (python-dotenv, interpolate=False: no `${VAR}` expansion, no command substitution,
    ever), after checks that make reading it safe: a missing file is empty; a FIFO, a device, a file
    over 64 KiB, a NUL byte, a byte-order mark, text that is not UTF-8 or a line that is not
    KEY=VALUE is a ConfigError naming the file and the problem."""
    try:
        data = _read_small_file(path)
    except FileNotFoundError:
        return {}
    except _FileProblem as problem:
        raise ConfigError(f"{path}: {problem}: fix or remove the file") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{path}: cannot read ({reason}): fix or remove the file") from None
    if data.startswith(_BOMS):
        raise ConfigError(f"{path}: starts with a byte-order mark (BOM): save it as UTF-8 without BOM")
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise ConfigError(f"{path} line {line}: holds a NUL byte: a settings file is text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} line {line}: not UTF-8 text: save it as UTF-8") from None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error or (binding.key is not None and binding.value is None):
            skipped = binding.original.string
            line = binding.original.line + skipped[: len(skipped) - len(skipped.lstrip())].count("\n")
            raise ConfigError(f"{path} line {line}: expected KEY=VALUE")
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return {key: value for key, value in values.items() if value is not None}


def main(argv: list[str] | None = None) -> int:
    """`--get NAME`: prints `NAME=value`, the raw value the orchestrator reads for NAME (environment,
    then .env; empty when unset), for the production wrapper, which must never parse .env itself.
    Exit 1 with one line when .env cannot be read.
    `--write-docs`: rewrites .env.example and docs/CONFIGURATION.md's settings table from the declarations
    (src/core/settings.py); `--check-docs`: exit 1 naming them when they differ."""
    parser = ArgumentParser(prog="python -m src.orchestration.config",
                            description="Print one setting as the orchestrator reads it, or regenerate the "
                                        "documents derived from the settings' declarations.")
    names = sorted(s.name for s in CONFIG_SETTINGS if not s.secret)  # a secret stays inside
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--get", metavar="NAME", choices=names)
    action.add_argument("--write-docs", action="store_true",
                        help="rewrite .env.example and docs/CONFIGURATION.md's table")
    action.add_argument("--check-docs", action="store_true", help="exit 1 if either differs from the declarations")
    parser.add_argument("--dotenv", type=Path, default=REPO_ROOT / ".env", help="the .env file (default: the repo's)")
    args = parser.parse_args(argv)
    if args.write_docs or args.check_docs:
        try:
            stale = write_docs() if args.write_docs else stale_docs()
        except (OSError, ValueError) as exc:  # no settings markers in docs/CONFIGURATION.md, a file not writable
            print(f"config: {exc}", file=sys.stderr)
            return 1
        for path in stale:
            print(f"{'rewrote' if args.write_docs else 'stale'}: {path.relative_to(REPO_ROOT)}")
        return 1 if stale and args.check_docs else 0
    try:
        merged = {**read_dotenv(args.dotenv), **os.environ}
    except ConfigError as exc:
        print(f"config: {exc}", file=sys.stderr)
        return 1
    print(f"{args.get}={merged.get(args.get, '').strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


@dataclass(frozen=True)
class Salvage:
    """What of a configuration that failed validation is itself valid, to report the failure with: the
    webhook (None unless DISCORD_WEBHOOK_URL alone validates), the mention and STATE_DIR (else their
    defaults)."""

    discord_webhook_url: str | None = field(default=None, repr=False)
    discord_mention: str | None = None
    state_dir: Path = _DEFAULTS["state_dir"]


def salvage(environ: Mapping[str, str] | None = None, *, dotenv: Path | None = None) -> Salvage:
    """Each of DISCORD_WEBHOOK_URL, DISCORD_MENTION and STATE_DIR validated on its own (see Salvage)."""
    env = dict(os.environ if environ is None else environ)
    try:
        merged = {**read_dotenv(REPO_ROOT / ".env" if dotenv is None else dotenv), **env}
    except ConfigError:
        merged = env
    found: dict[str, Any] = {}
    for name in ("DISCORD_WEBHOOK_URL", "DISCORD_MENTION", "STATE_DIR"):
        value = merged.get(name, "").strip()
        if not value:
            continue
        try:
            attr = BY_NAME[name].attr
            found[attr] = _build(_Settings.model_validate({name: value}).model_dump())[attr]
        except (ValidationError, ConfigError, ValueError):
            continue
    return Salvage(**found)


def start_timeout(config: OrchestrationConfig) -> int:
    """Seconds a whole start-up may take (systemd's TimeoutStartSec for READY=1; a held start's budget again):
    Docker wait, two Gateway deadlines, 2FA, the bot, slack."""
    total = (config.docker_wait_timeout + 2 * config.gateway_health_timeout + config.twofa_wait_timeout
             + config.bot_ready_timeout + 120)
    return int(math.ceil(total))
