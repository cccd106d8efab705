"""Orchestration configuration: environment variables (and a `.env` file) validated once.

Every setting has a default that works for development, so no variable is required.
A bad value never becomes a traceback: `ConfigError` carries one line naming the
variable, the value and what is accepted (the webhook URL is never echoed, it holds a
token). `.env` in the repository root is read as data by this module alone (python-dotenv,
no expansion), never by systemd or a shell; real environment variables win over it.
"""

from __future__ import annotations

import codecs
import io
import os
import shlex
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from src.notifications.discord import validate_webhook_url
from src.orchestration.resetwindows import DEFAULT_WINDOWS, ResetWindow, parse_windows
from src.orchestration.cli import MAX_CLIENT_ID, ArgumentParser, is_host

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"

# The gnzsnz image runs ONE socat relay, chosen by TRADING_MODE: the Gateway's API port and the
# in-container relay port Compose must publish (FACTS §7). The only place this rule is written.
TRADING_MODES = ("paper", "live")
API_PORTS = {"paper": 4002, "live": 4001}  # default GATEWAY_PORT (the host port) per mode
RELAY_PORTS = {"paper": 4004, "live": 4003}  # GATEWAY_RELAY_PORT: 127.0.0.1:${GATEWAY_PORT}:${GATEWAY_RELAY_PORT}
DOTENV_MAX_BYTES = 64 * 1024
COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
# Where docker-compose.yml reads the password when TWS_PASSWORD_SECRET_FILE is unset (under $HOME).
DEFAULT_PASSWORD_FILE = ".config/ibkr-zero-touch/tws_password"  # noqa: S105 - a path, not a password

# Variable name -> (what is accepted, as told to the operator; is the value secret?)
_ACCEPTED: dict[str, tuple[str, bool]] = {
    "TRADING_MODE": ("paper or live", False),
    "GATEWAY_HOST": ("a host name or IP address", False),
    "GATEWAY_PORT": ("an integer from 1 to 65535", False),
    "DOCKER_COMPOSE_DIR": ("a directory holding the Compose file", False),
    "GATEWAY_SERVICE": ("a Compose service name (letters, digits, '_', '.', '-')", False),
    "GATEWAY_CONTAINER": ("a container name (letters, digits, '_', '.', '-')", False),
    "GATEWAY_HEALTH_TIMEOUT": ("seconds, a number > 0 and <= 3600", False),
    "GATEWAY_HEALTH_RETRY_INTERVAL": ("seconds, a number > 0 and <= 60", False),
    "HEALTH_CHECK_TIMEOUT": ("seconds, a number > 0 and <= 60", False),
    "GATEWAY_HEALTH_CLIENT_ID": (f"an integer from 0 to {MAX_CLIENT_ID}, not BOT_CLIENT_ID", False),
    "GAMEPLAN_PATH": ("a file path (unset = no gameplan: Strategy C)", False),
    "EMERGENCY_GAMEPLAN_PATH": ("a file path", False),
    "BOT_COMMAND": ("a command line, e.g. '/usr/bin/python3 -m src.main'", False),
    "BOT_STRATEGY": ("MODULE:ATTR or FILE.py:ATTR of a class or object implementing the Strategy protocol, "
                     "or unset (idle)", False),
    "BOT_CLIENT_ID": (f"an integer from 0 to {MAX_CLIENT_ID}", False),
    "BOT_READY_TIMEOUT": ("seconds, a number > 0 and <= 3600", False),
    "BOT_LOG_LEVEL": ("one of " + ", ".join(LOG_LEVELS), False),
    "DISCORD_WEBHOOK_URL": ("https://discord.com/api/webhooks/<id>/<token>, or unset", True),
    "DOCKER_COMMAND_TIMEOUT": ("seconds, a number > 0 and <= 600", False),
    "DOCKER_WAIT_TIMEOUT": ("seconds, a number >= 0 and <= 3600", False),
    "TWOFA_WAIT_TIMEOUT": ("seconds, a number >= 0 and <= 600", False),
    "IBKR_RESET_WINDOWS": ("New York windows like 'daily 23:45-00:45; fri 22:45-sun 02:00', or none", False),
    "SUPERVISE_STOP_GATEWAY": ("true or false", False),
    "STATE_DIR": ("a directory path", False),
    "LOG_DIR": ("a directory path", False),
    "EXPECTED_ACCOUNTS": ("comma-separated IBKR account ids (letters, digits), or unset", False),
    "GATEWAY_LOGIN_BUDGET": ("an integer from 0 to 20", False),
}

_BOT_WITHHELD = ("TWS_PASSWORD", "TWS_USERID", "DISCORD_WEBHOOK_URL", "VNC_SERVER_PASSWORD")

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ConfigError(Exception):
    """A configuration problem, as one line an operator can act on."""


class _Settings(BaseModel):
    """Type and range checks; field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    trading_mode: Literal["paper", "live"] = Field("paper", alias="TRADING_MODE")
    gateway_host: str = Field("localhost", alias="GATEWAY_HOST")
    gateway_port: int | None = Field(None, alias="GATEWAY_PORT", ge=1, le=65535)
    docker_compose_dir: str = Field("docker/gateway", alias="DOCKER_COMPOSE_DIR", min_length=1)
    gateway_service: str = Field("gateway", alias="GATEWAY_SERVICE", pattern=f"^{_NAME}$")
    gateway_container: str = Field("ibkr-gateway", alias="GATEWAY_CONTAINER", pattern=f"^{_NAME}$")
    gateway_health_timeout: Seconds = Field(120.0, alias="GATEWAY_HEALTH_TIMEOUT", le=3600)
    gateway_health_retry_interval: Seconds = Field(0.25, alias="GATEWAY_HEALTH_RETRY_INTERVAL", le=60)
    health_check_timeout: Seconds = Field(5.0, alias="HEALTH_CHECK_TIMEOUT", le=60)
    gateway_health_client_id: int = Field(999, alias="GATEWAY_HEALTH_CLIENT_ID", ge=0, le=MAX_CLIENT_ID)
    gameplan_path: str | None = Field(None, alias="GAMEPLAN_PATH")
    emergency_gameplan_path: str = Field(
        "state/emergency_gameplan.json", alias="EMERGENCY_GAMEPLAN_PATH", min_length=1
    )
    bot_command: str | None = Field(None, alias="BOT_COMMAND")
    bot_client_id: int = Field(1, alias="BOT_CLIENT_ID", ge=0, le=MAX_CLIENT_ID)
    bot_strategy: str | None = Field(None, alias="BOT_STRATEGY",
                                     pattern=r"^([A-Za-z_][A-Za-z0-9_.]*|[^:\x00-\x1f]+\.py):[A-Za-z_][A-Za-z0-9_]*$")
    bot_ready_timeout: Seconds = Field(30.0, alias="BOT_READY_TIMEOUT", le=3600)
    bot_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", alias="BOT_LOG_LEVEL"
    )
    discord_webhook_url: str | None = Field(None, alias="DISCORD_WEBHOOK_URL")
    docker_command_timeout: Seconds = Field(30.0, alias="DOCKER_COMMAND_TIMEOUT", le=600)
    docker_wait_timeout: float = Field(60.0, alias="DOCKER_WAIT_TIMEOUT", ge=0, le=3600, allow_inf_nan=False)
    twofa_wait_timeout: float = Field(180.0, alias="TWOFA_WAIT_TIMEOUT", ge=0, le=600, allow_inf_nan=False)
    ibkr_reset_windows: str | None = Field(None, alias="IBKR_RESET_WINDOWS")

    @field_validator("ibkr_reset_windows")
    @classmethod
    def _windows(cls, value: str | None) -> str | None:
        if value is not None:
            parse_windows(value)  # ValueError: one line naming the bad part
        return value
    supervise_stop_gateway: bool = Field(False, alias="SUPERVISE_STOP_GATEWAY")
    state_dir: str = Field("state", alias="STATE_DIR", min_length=1)
    log_dir: str = Field("logs", alias="LOG_DIR", min_length=1)
    expected_accounts: str = Field("", alias="EXPECTED_ACCOUNTS")
    gateway_login_budget: int = Field(3, alias="GATEWAY_LOGIN_BUDGET", ge=0, le=20)

    @field_validator("bot_log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("trading_mode", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("gateway_host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not is_host(value):
            raise ValueError("not a host name or IP address")
        return value

    @field_validator("expected_accounts")
    @classmethod
    def _accounts(cls, value: str) -> str:
        if value and not all(item.strip().isascii() and item.strip().isalnum() for item in value.split(",")):
            raise ValueError("not a comma list of account ids")
        return value

    @field_validator("discord_webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value:
            validate_webhook_url(value)
        return value

    @field_validator("bot_command")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        if value is not None and not any(shlex.split(value)[:1]):
            raise ValueError("empty command")
        return value


@dataclass(frozen=True)
class OrchestrationConfig:
    """Everything the orchestrator needs, resolved to absolute paths and real types."""

    trading_mode: str = "paper"
    gateway_host: str = "localhost"
    gateway_port: int = API_PORTS["paper"]
    docker_compose_dir: Path = REPO_ROOT / "docker" / "gateway"
    gateway_service: str = "gateway"
    gateway_container: str = "ibkr-gateway"
    gateway_health_timeout: float = 120.0
    gateway_health_retry_interval: float = 0.25
    health_check_timeout: float = 5.0
    gateway_health_client_id: int = 999
    gameplan_path: Path | None = None
    emergency_gameplan_path: Path = REPO_ROOT / "state" / "emergency_gameplan.json"
    bot_command: tuple[str, ...] = (sys.executable, "-m", "src.main")
    bot_client_id: int = 1
    bot_strategy: str | None = None  # MODULE:ATTR, checked at start-up; None = the idle strategy
    bot_ready_timeout: float = 30.0
    bot_log_level: str = "INFO"
    discord_webhook_url: str | None = field(default=None, repr=False)
    docker_command_timeout: float = 30.0
    docker_wait_timeout: float = 60.0  # Docker Desktop may start after us at logon
    twofa_wait_timeout: float = 180.0  # IBKR's second-factor window
    ibkr_reset_windows: tuple[ResetWindow, ...] = DEFAULT_WINDOWS  # IBKR's server resets (New York)
    supervise_stop_gateway: bool = False
    state_dir: Path = REPO_ROOT / "state"
    log_dir: Path = REPO_ROOT / "logs"
    expected_accounts: tuple[str, ...] = ()  # empty = any account the Gateway manages
    gateway_login_budget: int = 3  # Gateway logins the orchestrator may cause in any rolling 24 h
    # The environment child processes (docker compose, the bot) get: the process
    # environment plus `.env`, so COMPOSE_FILE, COMPOSE_PROJECT_NAME... reach Compose exactly
    # as the operator wrote them; TRADING_MODE, GATEWAY_PORT and GATEWAY_RELAY_PORT as resolved.
    child_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, dotenv: Path | None = None
    ) -> OrchestrationConfig:
        """Read, validate and default the configuration; raise ConfigError on a bad value."""
        env = dict(os.environ if environ is None else environ)
        dotenv = REPO_ROOT / ".env" if dotenv is None else dotenv
        merged = {**read_dotenv(dotenv), **env}
        raw = {k: merged[k] for k in _ACCEPTED if merged.get(k, "").strip() != ""}
        raw = {k: v.strip() for k, v in raw.items()}
        try:
            s = _Settings.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, raw)) from None
        if s.gateway_health_client_id == s.bot_client_id:
            raise ConfigError(
                f"GATEWAY_HEALTH_CLIENT_ID={s.gateway_health_client_id} is invalid: it must differ "
                "from BOT_CLIENT_ID (a health probe must never take the bot's client id)"
            )
        accounts = _accounts(s.expected_accounts, s.trading_mode)
        gameplan = _resolve(s.gameplan_path) if s.gameplan_path else None
        emergency = _resolve(s.emergency_gameplan_path)
        if gameplan is not None and _real(gameplan) == _real(emergency):
            raise ConfigError(
                f"GAMEPLAN_PATH={s.gameplan_path!r} is invalid: it is EMERGENCY_GAMEPLAN_PATH ({_real(emergency)}), "
                "where Strategy C is written: the analyst's plan would be overwritten"
            )
        compose_dir = _resolve(s.docker_compose_dir)
        _check_compose(compose_dir, s.docker_compose_dir, merged)
        port = s.gateway_port if s.gateway_port is not None else API_PORTS[s.trading_mode]
        child_env = {**merged, "TRADING_MODE": s.trading_mode, "GATEWAY_PORT": str(port),
                     "GATEWAY_RELAY_PORT": str(RELAY_PORTS[s.trading_mode])}
        return cls(
            trading_mode=s.trading_mode,
            gateway_host=s.gateway_host,
            gateway_port=port,
            docker_compose_dir=compose_dir,
            gateway_service=s.gateway_service,
            gateway_container=s.gateway_container,
            gateway_health_timeout=s.gateway_health_timeout,
            gateway_health_retry_interval=s.gateway_health_retry_interval,
            health_check_timeout=s.health_check_timeout,
            gateway_health_client_id=s.gateway_health_client_id,
            gameplan_path=gameplan,
            emergency_gameplan_path=emergency,
            bot_command=tuple(shlex.split(s.bot_command)) if s.bot_command else cls.bot_command,
            bot_client_id=s.bot_client_id,
            bot_strategy=_strategy(s.bot_strategy),
            bot_ready_timeout=s.bot_ready_timeout,
            bot_log_level=s.bot_log_level,
            discord_webhook_url=s.discord_webhook_url or None,
            docker_command_timeout=s.docker_command_timeout,
            docker_wait_timeout=s.docker_wait_timeout,
            twofa_wait_timeout=s.twofa_wait_timeout,
            ibkr_reset_windows=parse_windows(s.ibkr_reset_windows) if s.ibkr_reset_windows else DEFAULT_WINDOWS,
            supervise_stop_gateway=s.supervise_stop_gateway,
            state_dir=_resolve(s.state_dir),
            log_dir=_resolve(s.log_dir),
            expected_accounts=accounts,
            gateway_login_budget=s.gateway_login_budget,
            child_env=child_env,
        )

    @property
    def gateway_relay_port(self) -> int:
        """The in-container socat relay port the image runs for this mode (what Compose publishes)."""
        return RELAY_PORTS[self.trading_mode]

    @property
    def bot_env(self) -> dict[str, str]:
        """The bot's environment: child_env without secrets (the Gateway holds the credentials, the
        bot sends no alerts), so a bot that logs or dumps its environment has nothing to leak."""
        return {k: v for k, v in self.child_env.items() if k not in _BOT_WITHHELD and v not in self.secrets}

    @cached_property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line, an alert or an exception text: the webhook URL
        and its token, TWS_PASSWORD, TWS_USERID and the contents of TWS_PASSWORD_SECRET_FILE."""
        found = [self.discord_webhook_url or ""]
        if self.discord_webhook_url:
            found.append(self.discord_webhook_url.rstrip("/").rsplit("/", 1)[-1])
        for name in ("TWS_PASSWORD", "TWS_USERID"):
            found.append(self.child_env.get(name, ""))
        found.extend(self._password_file_secrets())
        return tuple(dict.fromkeys(s for s in found if len(s) >= 4))

    def _password_file_secrets(self) -> list[str]:
        """The password Compose hands the Gateway as a Docker secret, as the image would read it."""
        home = self.child_env.get("HOME", "")
        name = self.child_env.get("TWS_PASSWORD_SECRET_FILE", "").strip()
        if not name:
            if not home:
                return []
            name = f"{home}/{DEFAULT_PASSWORD_FILE}"
        elif name.startswith("~/") and home:
            name = f"{home}/{name[2:]}"
        path = Path(name)
        path = path if path.is_absolute() else self.docker_compose_dir / path  # Compose's rule
        try:
            text = _read_small_file(path).decode("utf-8", "replace")
        except (FileNotFoundError, _FileProblem, OSError):
            return []  # no file (yet): nothing to redact; Compose reports it when it needs it
        return [text.rstrip("\r\n"), text.strip()]


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


def _describe(exc: ValidationError, raw: Mapping[str, str]) -> str:
    """The first validation error as one operator-facing line."""
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "configuration"
    accepted, secret = _ACCEPTED.get(name, ("a valid value", False))
    if secret:
        return f"{name} is invalid ({_first_line(error['msg'])}): expected {accepted}"
    value = raw.get(name, "")
    return f"{name}={value!r} is invalid: expected {accepted}"


def _first_line(text: str) -> str:
    text = text.removeprefix("Value error, ")
    return text.splitlines()[0] if text else text


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
    Exit 1 with one line when .env cannot be read."""
    parser = ArgumentParser(prog="python -m src.orchestration.config",
                                description="Print one setting as the orchestrator reads it.")
    names = sorted(name for name, (_, secret) in _ACCEPTED.items() if not secret)  # a secret stays inside
    parser.add_argument("--get", required=True, metavar="NAME", choices=names)
    parser.add_argument("--dotenv", type=Path, default=REPO_ROOT / ".env", help="the .env file (default: the repo's)")
    args = parser.parse_args(argv)
    try:
        merged = {**read_dotenv(args.dotenv), **os.environ}
    except ConfigError as exc:
        print(f"config: {exc}", file=sys.stderr)
        return 1
    print(f"{args.get}={merged.get(args.get, '').strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
