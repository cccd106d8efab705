"""Orchestration configuration: environment variables (and a `.env` file) validated once.

Every setting has a default that works for development, so no variable is required.
A bad value never becomes a traceback: `ConfigError` carries one line naming the
variable, the value and what is accepted (the webhook URL is never echoed, it holds a
token). `.env` in the repository root is read as data, never executed; real
environment variables win over it.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from src.notifications.discord import validate_webhook_url

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_MAX_CLIENT_ID = 2**31 - 1

# Variable name -> (what is accepted, as told to the operator; is the value secret?)
_ACCEPTED: dict[str, tuple[str, bool]] = {
    "GATEWAY_HOST": ("a host name or IP address", False),
    "GATEWAY_PORT": ("an integer from 1 to 65535", False),
    "DOCKER_COMPOSE_DIR": ("a directory holding the Compose file", False),
    "GATEWAY_SERVICE": ("a Compose service name (letters, digits, '_', '.', '-')", False),
    "GATEWAY_CONTAINER": ("a container name (letters, digits, '_', '.', '-')", False),
    "GATEWAY_HEALTH_TIMEOUT": ("seconds, a number > 0 and <= 3600", False),
    "GATEWAY_HEALTH_RETRY_INTERVAL": ("seconds, a number > 0 and <= 60", False),
    "HEALTH_CHECK_TIMEOUT": ("seconds, a number > 0 and <= 60", False),
    "GATEWAY_HEALTH_CLIENT_ID": (f"an integer from 0 to {_MAX_CLIENT_ID}, not BOT_CLIENT_ID", False),
    "GAMEPLAN_PATH": ("a file path (unset = no gameplan: Strategy C)", False),
    "EMERGENCY_GAMEPLAN_PATH": ("a file path", False),
    "BOT_COMMAND": ("a command line, e.g. '/usr/bin/python3 -m src.main'", False),
    "BOT_CLIENT_ID": (f"an integer from 0 to {_MAX_CLIENT_ID}", False),
    "BOT_READY_TIMEOUT": ("seconds, a number > 0 and <= 3600", False),
    "BOT_LOG_LEVEL": ("one of " + ", ".join(LOG_LEVELS), False),
    "DISCORD_WEBHOOK_URL": ("https://discord.com/api/webhooks/<id>/<token>, or unset", True),
    "DOCKER_COMMAND_TIMEOUT": ("seconds, a number > 0 and <= 600", False),
    "DOCKER_WAIT_TIMEOUT": ("seconds, a number >= 0 and <= 3600", False),
    "TWOFA_WAIT_TIMEOUT": ("seconds, a number >= 0 and <= 600", False),
    "SUPERVISE_STOP_GATEWAY": ("true or false", False),
    "STATE_DIR": ("a directory path", False),
    "LOG_DIR": ("a directory path", False),
}

_BOT_WITHHELD = ("TWS_PASSWORD", "TWS_USERID", "DISCORD_WEBHOOK_URL", "VNC_SERVER_PASSWORD")

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ConfigError(Exception):
    """A configuration problem, as one line an operator can act on."""


class _Settings(BaseModel):
    """Type and range checks; field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    gateway_host: str = Field("localhost", alias="GATEWAY_HOST", pattern=r"^[A-Za-z0-9_.:\[\]-]+$")
    gateway_port: int = Field(4002, alias="GATEWAY_PORT", ge=1, le=65535)
    docker_compose_dir: str = Field("docker/gateway", alias="DOCKER_COMPOSE_DIR", min_length=1)
    gateway_service: str = Field("gateway", alias="GATEWAY_SERVICE", pattern=f"^{_NAME}$")
    gateway_container: str = Field("ibkr-gateway", alias="GATEWAY_CONTAINER", pattern=f"^{_NAME}$")
    gateway_health_timeout: Seconds = Field(120.0, alias="GATEWAY_HEALTH_TIMEOUT", le=3600)
    gateway_health_retry_interval: Seconds = Field(0.25, alias="GATEWAY_HEALTH_RETRY_INTERVAL", le=60)
    health_check_timeout: Seconds = Field(5.0, alias="HEALTH_CHECK_TIMEOUT", le=60)
    gateway_health_client_id: int = Field(999, alias="GATEWAY_HEALTH_CLIENT_ID", ge=0, le=_MAX_CLIENT_ID)
    gameplan_path: str | None = Field(None, alias="GAMEPLAN_PATH")
    emergency_gameplan_path: str = Field(
        "state/emergency_gameplan.json", alias="EMERGENCY_GAMEPLAN_PATH", min_length=1
    )
    bot_command: str | None = Field(None, alias="BOT_COMMAND")
    bot_client_id: int = Field(1, alias="BOT_CLIENT_ID", ge=0, le=_MAX_CLIENT_ID)
    bot_ready_timeout: Seconds = Field(30.0, alias="BOT_READY_TIMEOUT", le=3600)
    bot_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", alias="BOT_LOG_LEVEL"
    )
    discord_webhook_url: str | None = Field(None, alias="DISCORD_WEBHOOK_URL")
    docker_command_timeout: Seconds = Field(30.0, alias="DOCKER_COMMAND_TIMEOUT", le=600)
    docker_wait_timeout: float = Field(60.0, alias="DOCKER_WAIT_TIMEOUT", ge=0, le=3600, allow_inf_nan=False)
    twofa_wait_timeout: float = Field(180.0, alias="TWOFA_WAIT_TIMEOUT", ge=0, le=600, allow_inf_nan=False)
    supervise_stop_gateway: bool = Field(False, alias="SUPERVISE_STOP_GATEWAY")
    state_dir: str = Field("state", alias="STATE_DIR", min_length=1)
    log_dir: str = Field("logs", alias="LOG_DIR", min_length=1)

    @field_validator("bot_log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

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

    gateway_host: str = "localhost"
    gateway_port: int = 4002
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
    bot_ready_timeout: float = 30.0
    bot_log_level: str = "INFO"
    discord_webhook_url: str | None = field(default=None, repr=False)
    docker_command_timeout: float = 30.0
    docker_wait_timeout: float = 60.0  # Docker Desktop may start after us at logon
    twofa_wait_timeout: float = 180.0  # IBKR's second-factor window
    supervise_stop_gateway: bool = False
    state_dir: Path = REPO_ROOT / "state"
    log_dir: Path = REPO_ROOT / "logs"
    trading_mode: str = "paper"  # TEMP until the config branch lands
    expected_accounts: tuple[str, ...] = ()
    gateway_login_budget: int = 3
    # The environment child processes (docker compose, the bot) get: the process
    # environment plus `.env`, so COMPOSE_FILE, COMPOSE_PROJECT_NAME, GATEWAY_PORT...
    # reach Compose exactly as the operator wrote them.
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
        return cls(
            gateway_host=s.gateway_host,
            gateway_port=s.gateway_port,
            docker_compose_dir=_resolve(s.docker_compose_dir),
            gateway_service=s.gateway_service,
            gateway_container=s.gateway_container,
            gateway_health_timeout=s.gateway_health_timeout,
            gateway_health_retry_interval=s.gateway_health_retry_interval,
            health_check_timeout=s.health_check_timeout,
            gateway_health_client_id=s.gateway_health_client_id,
            gameplan_path=_resolve(s.gameplan_path) if s.gameplan_path else None,
            emergency_gameplan_path=_resolve(s.emergency_gameplan_path),
            bot_command=tuple(shlex.split(s.bot_command)) if s.bot_command else cls.bot_command,
            bot_client_id=s.bot_client_id,
            bot_ready_timeout=s.bot_ready_timeout,
            bot_log_level=s.bot_log_level,
            discord_webhook_url=s.discord_webhook_url or None,
            docker_command_timeout=s.docker_command_timeout,
            docker_wait_timeout=s.docker_wait_timeout,
            twofa_wait_timeout=s.twofa_wait_timeout,
            supervise_stop_gateway=s.supervise_stop_gateway,
            state_dir=_resolve(s.state_dir),
            log_dir=_resolve(s.log_dir),
            child_env=merged,
        )

    @property
    def bot_env(self) -> dict[str, str]:
        """The bot's environment: child_env without secrets (the Gateway holds the credentials, the
        bot sends no alerts), so a bot that logs or dumps its environment has nothing to leak."""
        return {k: v for k, v in self.child_env.items() if k not in _BOT_WITHHELD and v not in self.secrets}

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line, an alert or an exception text."""
        found = [self.discord_webhook_url or ""]
        if self.discord_webhook_url:
            found.append(self.discord_webhook_url.rstrip("/").rsplit("/", 1)[-1])
        for name in ("TWS_PASSWORD", "TWS_USERID"):
            found.append(self.child_env.get(name, ""))
        return tuple(s for s in found if len(s) >= 4)


def _resolve(value: str) -> Path:
    """Relative paths are relative to the repository, whatever the working directory."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


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


_DOTENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines as data: no expansion, no command substitution, ever."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({type(exc).__name__}): fix or remove the file") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _DOTENV_LINE.match(stripped)
        if not match:
            raise ConfigError(f"{path} line {number}: expected KEY=VALUE")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values

