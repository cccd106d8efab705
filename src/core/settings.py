"""Every setting, declared once: name, type and range, default, what is accepted, meaning, secret or not.

`SETTINGS` is the one list. Derived from it, and from nothing else:

* the validation model and `OrchestrationConfig`'s defaults (`src.orchestration.config`),
* the one-line error text (`accepted`: "GATEWAY_PORT='x' is invalid: expected ..."),
* `.env.example` (sections, explanations, the defaults) and the configuration table of docs/CONFIGURATION.md,
  rewritten by `python -m src.orchestration.config --write-docs`; a test fails when either file
  differs from what `render_env_example()` / `render_table_doc()` produce,
* the defaults other modules use for the same fact (the bot's and the probe's client ids, ...).

Standard library only, and nothing heavier than `src.core.cli` at import time: the bot
(`src.main`) and the stdlib-only handshake probe (`health.py`, copied alone into the simulator image)
import it. Checks that need more (the webhook's, the reset windows') import it when they run.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from src.core.calendars import TRADING_CALENDARS as TRADING_CALENDARS
from src.core.cli import MAX_CLIENT_ID, is_host
from src.core.statefiles import EMERGENCY_PLAN_FILE
from src.core.webhooks import validate_mention, validate_webhook_url

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# The gnzsnz image runs ONE socat relay, chosen by TRADING_MODE: the Gateway's API port and the
# in-container relay port Compose must publish (FACTS §7). The only place this rule is written.
TRADING_MODES = ("paper", "live")
# The Gateway's own API port per mode, inside the network namespace it shares with the order firewall
# (only the firewall connects to it), and the default GATEWAY_PORT on the host (the firewall's).
API_PORTS = {"paper": 4002, "live": 4001}
FIREWALL_PORT = 4000  # the firewall's port in that namespace: Compose publishes 127.0.0.1:${GATEWAY_PORT}:4000
FIREWALL_SERVICE = "firewall"  # the Compose services started with the Gateway: the firewall (and, by
NETWORK_SERVICE = "apinet"  # depends_on, the holder of the namespace they share)


def firewall_container(gateway_container: str) -> str:
    """The order firewall's container name, as docker-compose.yml derives it from GATEWAY_CONTAINER."""
    return f"{gateway_container}-firewall"


def api_port(mode: str | None) -> int:
    """The Gateway's API port for TRADING_MODE `mode` (paper when unset or unknown)."""
    return API_PORTS.get((mode or "").strip().lower(), API_PORTS["paper"])

# IBC's daily auto-restart when AUTO_RESTART_TIME is unset: docker-compose.yml's own default (a test
# compares them), in IBC's form. New York time: the compose file's TIME_ZONE default is America/New_York.
DEFAULT_AUTO_RESTART_TIME = "11:59 PM"
# Where docker-compose.yml reads the password when TWS_PASSWORD_SECRET_FILE is unset (under $HOME).
DEFAULT_PASSWORD_FILE = ".config/ibkr-zero-touch/tws_password"  # noqa: S105 - a path, not a password
# IBKR_RESET_WINDOWS unset, in the setting's grammar (resetwindows.DEFAULT_WINDOWS; a test compares them).
DEFAULT_STATE_DIR = "state"  # STATE_DIR's default: the emergency plan's default lives in it
DEFAULT_RESET_WINDOWS = "daily 23:45-00:45; fri 22:45-sun 02:00"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a Compose service or container name
IMAGE_PIN_PATTERN = r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$"  # an image reference pinned by digest
STRATEGY_PATTERN = r"^([A-Za-z_][A-Za-z0-9_.]*|[^:\x00-\x1f]+\.py):[A-Za-z_][A-Za-z0-9_]*$"

Kind = type[str] | type[int] | type[float] | type[bool] | type[Path]
Check = Callable[[str], object]  # raises ValueError (one line) when the value is not acceptable


@dataclass(frozen=True)
class Setting:
    """One environment variable. `default` and `example` are written as in `.env`; a value (the
    default included) is put in `case`, then checked by `kind` (str, int, float = a finite number,
    bool, Path = a path relative to the repository), the bounds, `pattern`, `choices` and `check`.
    A blank value is unset, as everywhere in the configuration."""

    name: str
    section: str  # the .env.example section it is listed under
    meaning: str  # the settings table's "meaning" column (Markdown)
    comment: str = ""  # the .env.example lines above it, without '# ' ('' = none: shares the previous one)
    default: str | None = None  # as written in .env; None = unset (the orchestrator's own rule applies)
    example: str | None = None  # .env.example shows `# NAME=example` (commented out) instead of `NAME=default`
    shown_default: str = ""  # the settings table's default column when it is not the plain default ('' = derived)
    accepted: str = ""  # what is accepted, in the error line ('' = derived from kind, bounds and choices)
    kind: Kind = str
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    case: Literal["lower", "upper"] | None = None  # applied before any check
    check: Check | None = None
    secret: bool = False  # never echoed in an error, never --get, withheld from the bot's environment
    passthrough: bool = False  # read by Docker Compose as written, not an attribute of OrchestrationConfig

    @property
    def attr(self) -> str:
        """The OrchestrationConfig attribute (and validation field) this setting fills."""
        return self.name.lower()

    @property
    def expected(self) -> str:
        """What is accepted, as the error line says it after "expected"."""
        if self.accepted:
            return self.accepted
        if self.choices:
            return " or ".join(self.choices) if len(self.choices) == 2 else "one of " + ", ".join(self.choices)
        if self.kind is bool:
            return "true or false"
        if self.kind is int and self.ge is not None and self.le is not None:
            return f"an integer from {_number(self.ge)} to {_number(self.le)}"
        if self.kind is float and self.le is not None:
            low = f"> {_number(self.gt)}" if self.gt is not None else f">= {_number(self.ge or 0)}"
            return f"seconds, a number {low} and <= {_number(self.le)}"
        raise ValueError(f"{self.name}: say what is accepted (accepted=...)")

    @property
    def readme_default(self) -> str:
        if self.shown_default:
            return self.shown_default
        return "unset" if self.default is None else f"`{self.default}`"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --- checks beyond type and range (ValueError = not accepted) ------------------------------------

def _host(value: str) -> None:
    if not is_host(value):
        raise ValueError("not a host name or IP address")


def _account_list(value: str) -> None:
    if not all(item.strip().isascii() and item.strip().isalnum() for item in value.split(",")):
        raise ValueError("not a comma list of account ids")


def _command(value: str) -> None:
    if not any(shlex.split(value)[:1]):  # unbalanced quotes: ValueError too
        raise ValueError("empty command")


def _http_url(value: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError("expected an http(s) URL")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("https only (http for a monitor on this machine)")


def _state_dir(value: str) -> None:
    """STATE_DIR: files are created and replaced there, so never the root and never a non-directory."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else REPO_ROOT / path
    real = path.resolve()
    if real == Path(real.anchor):
        raise ValueError("it is the filesystem's root")
    if real.exists() and not real.is_dir():
        raise ValueError("it exists and is not a directory")


def _windows(value: str) -> None:
    from src.core.resetwindows import parse_windows

    parse_windows(value)  # ValueError: one line naming the bad part


def _login_hours(value: str) -> None:
    from src.core.resetwindows import parse_windows

    if not parse_windows(value):
        raise ValueError("`none` would forbid every login: leave it unset for any hour")


def _cycle_time(value: str) -> None:
    from src.core.schedule import parse_cycle_time

    parse_cycle_time(value)


def _weekly(value: str) -> None:
    from src.core.schedule import parse_weekly_time

    parse_weekly_time(value)


def _autorestart(value: str) -> None:
    from src.core.schedule import parse_autorestart_time

    parse_autorestart_time(value)


#: The Gateway image's variable for IBC's ColdRestartTime (gnzsnz config.ini.tmpl: ColdRestartTime=${TWS_COLD_RESTART};
#: IBC runs it on Sundays only). Refused: the weekly login is WEEKLY_LOGIN_TIME, one setting, one mechanism.
IBC_COLD_RESTART = "TWS_COLD_RESTART"

_MODE_PORTS = f"{API_PORTS['paper']} paper, {API_PORTS['live']} live"

SETTINGS: tuple[Setting, ...] = (
    # --- Trading mode
    Setting(
        "TRADING_MODE", "Trading mode",
        "`paper` or `live`: the Gateway's login and its API port (behind the order firewall)",
        "paper or live (any case). Chooses the Gateway's login and its API port, which only the order\n"
        f"firewall reaches (paper {API_PORTS['paper']}, live {API_PORTS['live']}; also GATEWAY_PORT's default).",
        default="paper", choices=TRADING_MODES, case="lower",
    ),
    Setting(
        "EXPECTED_ACCOUNTS", "Trading mode",
        "comma list of IBKR account ids; each must fit the mode (paper ids start with `D`)",
        "The IBKR account ids the Gateway must manage, comma-separated (letters and digits),\n"
        "e.g. DU1234567 (paper ids start with D; live ones do not). Unset = any.",
        example="DU1234567", accepted="comma-separated IBKR account ids (letters, digits), or unset",
        check=_account_list,
    ),
    Setting(
        "GATEWAY_LOGIN_BUDGET", "Trading mode",
        "Gateway logins the orchestrator may cause in any rolling 24 h (0..20)",
        "Gateway logins the orchestrator may cause in any rolling 24 hours (0..20); once spent,\n"
        "it stops (exit 76 under --supervise: systemd does not restart) instead of logging in again.",
        default="3", kind=int, ge=0, le=20,
    ),
    # --- IB Gateway API
    Setting(
        "GATEWAY_HOST", "IB Gateway API", "Gateway API host: a host name or IP address",
        "Where the orchestrator and the bot reach the Gateway's API (published on 127.0.0.1).",
        default="localhost", accepted="a host name or IP address", check=_host,
    ),
    Setting(
        "GATEWAY_PORT", "IB Gateway API", f"host port of the API: {_MODE_PORTS} (an explicit value wins)",
        "Host port of the API (1..65535), also the one Compose publishes on 127.0.0.1.\n"
        f"Unset = the mode's port: {_MODE_PORTS}. Leave it unset unless that port is taken.",
        example=str(API_PORTS["paper"]), shown_default="by mode", kind=int, ge=1, le=65535,
    ),
    # --- Docker / Compose
    Setting(
        "DOCKER_COMPOSE_DIR", "Docker / Compose",
        "directory of the Compose file (relative to the repo); must hold one",
        "Directory holding docker-compose.yml (relative paths are relative to the repository).",
        default="docker/gateway", kind=Path, accepted="a directory holding the Compose file",
    ),
    Setting(
        "GATEWAY_SERVICE", "Docker / Compose", "Compose service",
        "Compose service and exact container name of the Gateway.",
        default="gateway", pattern=NAME_PATTERN,
        accepted="a Compose service name (letters, digits, '_', '.', '-')",
    ),
    Setting(
        "GATEWAY_CONTAINER", "Docker / Compose", "exact container name",
        default="ibkr-gateway", pattern=NAME_PATTERN, accepted="a container name (letters, digits, '_', '.', '-')",
    ),
    Setting(
        "DOCKER_COMMAND_TIMEOUT", "Docker / Compose", "seconds a docker CLI call may take",
        "Seconds any single docker CLI call may take before it counts as hung.",
        default="30", kind=float, gt=0, le=600,
    ),
    Setting(
        "DOCKER_WAIT_TIMEOUT", "Docker / Compose",
        "seconds to wait for the Docker daemon to answer (Docker Desktop starts after logon); `0` = no wait",
        "Seconds to wait for the Docker daemon to answer before DOCKER_UNAVAILABLE (Docker Desktop\n"
        "starts after logon on Windows; at boot dockerd may come up after us). 0 = do not wait.",
        default="60", kind=float, ge=0, le=3600,
    ),
    Setting(
        "COMPOSE_FILE", "Docker / Compose",
        "honoured as Docker defines it; its files must exist (relative names: from `DOCKER_COMPOSE_DIR`)",
        "Honoured as Docker defines them (passed to `docker compose`), e.g. the simulator:",
        example="docker-compose.yml:docker-compose.sim.yml", passthrough=True,
    ),
    Setting(
        "COMPOSE_PROJECT_NAME", "Docker / Compose", "honoured as Docker defines it",
        example="ibkr", passthrough=True,
    ),
    Setting(
        "GATEWAY_IMAGE", "Docker / Compose",
        "the IB Gateway image, pinned by digest (`name[:tag]@sha256:<64 hex>`), read by Compose; unset = the "
        "production Compose file's pin (upgrade path: docs/OPERATIONS.md)",
        "The IB Gateway image, pinned by digest, read by docker/gateway/docker-compose.yml: what runs is exactly\n"
        "the image tried on paper, whatever a tag names later. Unset = the Compose file's own pin. Upgrade:\n"
        "pull the new tag, read its digest, set it here on paper first, then live (docs/OPERATIONS.md).",
        example="ghcr.io/gnzsnz/ib-gateway:10.45.1j@sha256:<64 hex digits>", pattern=IMAGE_PIN_PATTERN,
        accepted="an image pinned by digest: name[:tag]@sha256:<64 hex digits>",
    ),
    # --- Gateway health
    Setting(
        "GATEWAY_HEALTH_TIMEOUT", "Gateway health",
        "seconds for the Gateway to be healthy (per attempt; one restart)",
        "Deadline (seconds, monotonic clock) for the Gateway to be logged in and serving;\n"
        "after one restart the same deadline applies once more.",
        default="120", kind=float, gt=0, le=3600,
    ),
    Setting(
        "GATEWAY_HEALTH_RETRY_INTERVAL", "Gateway health", "seconds between probes (spec sample: 5; see below)",
        "Seconds between handshake probes (Docker events also wake the wait at once).\n"
        "The spec's sample used 5. With 0.25 the orchestrator sees the login within about a quarter\n"
        "second when the container has no Docker healthcheck; with one, Docker's own verdict (its\n"
        "interval) is also awaited (docs/BENCHMARKS.md).",
        default="0.25", kind=float, gt=0, le=60,
    ),
    Setting(
        "HEALTH_CHECK_TIMEOUT", "Gateway health", "seconds one probe may take",
        "Seconds one handshake probe may take.",
        default="5", kind=float, gt=0, le=60,
    ),
    Setting(
        "GATEWAY_HEALTH_CLIENT_ID", "Gateway health", "the probe's own client id, never the bot's",
        "Client id used only by the health probe. Must differ from BOT_CLIENT_ID.",
        default="999", kind=int, ge=0, le=MAX_CLIENT_ID,
        accepted=f"an integer from 0 to {MAX_CLIENT_ID}, not BOT_CLIENT_ID",
    ),
    Setting(
        "TWOFA_WAIT_TIMEOUT", "Gateway health",
        "extra seconds to wait for a pending second-factor approval instead of restarting",
        "When IBC's log shows a second-factor push waiting on the phone, the Gateway is never\n"
        "restarted (a restart sends a second push); the orchestrator alerts and waits this many\n"
        "extra seconds for the approval instead.",
        default="180", kind=float, ge=0, le=600,
    ),
    Setting(
        "IBKR_RESET_WINDOWS", "Gateway health",
        "IBKR's server reset windows (New York); a login failure inside one is retried later, "
        'not called "rejected"; `none` = no windows',
        "IBKR's server reset windows, New York wall-clock times. A login failure inside one is not\n"
        '"credentials rejected": the Gateway is not restarted (a login would fail again) and the run\n'
        "exits 1 so a supervisor retries after it, instead of the do-not-restart code 77.\n"
        "Grammar: `daily HH:MM-HH:MM`, `DAYS HH:MM-HH:MM` (mon, mon,wed, mon-fri) or\n"
        "`DAY HH:MM-DAY HH:MM`, joined by `;`; `none` = no windows. Default (QuantConnect's IBAutomater,\n"
        "margins included): daily 23:45-00:45 and Friday 22:45 to Sunday 02:00.",
        default=DEFAULT_RESET_WINDOWS, example=DEFAULT_RESET_WINDOWS, check=_windows,
        accepted=f"New York windows like '{DEFAULT_RESET_WINDOWS}', or none",
    ),
    # --- Gameplan
    Setting(
        "GAMEPLAN_PATH", "Gameplan", "today's gameplan; unset = Strategy C; never `EMERGENCY_GAMEPLAN_PATH`",
        "Today's gameplan (JSON, docs/gameplan.schema.json). Unset, missing, invalid, stale\n"
        "(not today's date in America/New_York) or quarantined => Strategy C (no trading), exit 2.",
        example="/srv/trading/gameplans/today.json", kind=Path,
        accepted="a file path (unset = no gameplan: Strategy C)",
    ),
    Setting(
        "EMERGENCY_GAMEPLAN_PATH", "Gameplan", "where Strategy C is written",
        "Where the emergency Strategy C plan is written when needed.",
        default=f"{DEFAULT_STATE_DIR}/{EMERGENCY_PLAN_FILE}", kind=Path, accepted="a file path",
    ),
    # --- Bot
    Setting(
        "BOT_COMMAND", "Bot", "how to start the bot",
        "Command that starts the bot: any program, any library (docs/BOTS.md). It connects to\n"
        "GATEWAY_HOST:GATEWAY_PORT (the order firewall) with BOT_CLIENT_ID; its environment also has\n"
        "PLAN_IN_FORCE (the plan's file) and PLAN_SHA256. Default: the project's runtime (this Python,\n"
        "-m src.main), which gets --gateway-host/--gateway-port/--gameplan/--client-id/... appended.",
        example="/opt/ibkr/.venv/bin/python -m src.main", shown_default="this Python `-m src.main`",
        accepted="a command line, e.g. '/usr/bin/python3 -m src.main'", check=_command,
    ),
    Setting(
        "BOT_READY", "Bot", "how the bot's readiness is known: `api` (any bot) or `notify` (the runtime)",
        "How the orchestrator knows the bot is ready. api: its BOT_CLIENT_ID completed the API handshake\n"
        "through the order firewall (any bot, no code of ours). notify: it sends READY=1 to NOTIFY_SOCKET\n"
        "with state/bot_ready.json naming the plan's sha256, and gets the runtime's arguments (src.main).\n"
        "Default: notify for the built-in runtime, api with BOT_COMMAND.",
        example="api", shown_default="`notify` (built-in runtime), `api` (with BOT_COMMAND)",
        choices=("api", "notify"), case="lower",
    ),
    Setting(
        "BOT_CLIENT_ID", "Bot", "the bot's client id",
        "The bot's own API client id.",
        default="1", kind=int, ge=0, le=MAX_CLIENT_ID,
    ),
    Setting(
        "BOT_STRATEGY", "Bot",
        'the trading strategy, `MODULE:ATTR`, checked at start-up (see "The strategy API")',
        "Your trading strategy, MODULE:ATTR (a class, or an object, implementing on_start/on_heartbeat:\n"
        "see docs/BOTS.md's strategy API and docs/examples/strategy.py). Checked at start-up: a module that\n"
        "does not import, or does not implement the protocol, fails the run before anything starts.\n"
        "Unset = the built-in idle strategy (places no orders).",
        example="docs/examples/strategy.py:ExampleStrategy", shown_default="unset (idle)", pattern=STRATEGY_PATTERN,
        accepted="MODULE:ATTR or FILE.py:ATTR of a class or object implementing the Strategy protocol, "
                 "or unset (idle)",
    ),
    Setting(
        "BOT_READY_TIMEOUT", "Bot", "seconds for the bot to report READY=1",
        "Seconds the bot has to connect and report READY=1 before the start counts as failed.",
        default="30", kind=float, gt=0, le=3600,
    ),
    Setting(
        "BOT_LOG_LEVEL", "Bot", "the bot's log level",
        f"{', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}.",
        default="INFO", choices=LOG_LEVELS, case="upper",
    ),
    # --- Supervision
    Setting(
        "SUPERVISE_STOP_GATEWAY", "Supervision",
        "with `--supervise`: also stop the Gateway container when the service stops",
        "With --supervise: also stop the Gateway container when the service is stopped (true/false).",
        default="false", kind=bool,
    ),
    Setting(
        "GATEWAY_DOWN_ALERT_AFTER", "Supervision",
        "with `--supervise`: seconds the API may stay down before one alert (from the end of the reset "
        "window it went down in, else from the start of the outage)",
        "With --supervise: seconds the Gateway's API may stay down before one alert, counted from the\n"
        "end of the reset window it went down in (IBKR's resets, IBC's daily restart), or from the start\n"
        "of an outage outside any window. 0 = alert at once.",
        default="300", kind=float, ge=0, le=86400,
    ),
    Setting(
        "GATEWAY_SOFT_RESTART_BUDGET", "Supervision",
        "with `--supervise`: IBC soft restarts (no login, no 2FA push) tried first on a dead API in any 24 h; "
        "0 = none",
        "With --supervise: how many times in any 24 h the supervisor may ask IBC's command server to RESTART\n"
        "the Gateway (its own File > Restart: the session kept, no login, no 2FA push) before the one\n"
        "container restart (a cold login, from GATEWAY_LOGIN_BUDGET). 0 = never (straight to the container).",
        default="3", kind=int, ge=0, le=20,
    ),
    Setting(
        "GATEWAY_MEMORY_ALERT_MB", "Supervision",
        "with `--supervise`: one warning when the Gateway container uses more memory than this (MB); 0 = never",
        "With --supervise: the Gateway container's memory (docker stats), looked at every 5 minutes; above\n"
        "this many MB, one warning (the JVM is known to grow; JAVA_HEAP_SIZE sets its heap). 0 = never.",
        default="2048", kind=int, ge=0, le=1_000_000,
    ),
    Setting(
        "HEARTBEAT_URL", "Supervision",
        "with `--supervise`: a push monitor's URL (healthchecks.io, Uptime Kuma, Cronitor), pinged while the "
        "bot is trading-ready: a silent machine is noticed from outside; unset = none",
        "With --supervise: the dead-man's switch. A push monitor's ping URL (healthchecks.io, Uptime Kuma's\n"
        "push monitor, Cronitor), fetched every HEARTBEAT_INTERVAL s while the Gateway is up, the firewall\n"
        "runs and the bot is trading-ready. When pings stop (machine down, supervisor gone, trading paused),\n"
        "the monitor alerts you. Holds the monitor's token: redacted everywhere. Unset = no heartbeat.",
        example="https://hc-ping.com/<uuid>", secret=True, check=_http_url, accepted="an https URL, or unset",
    ),
    Setting(
        "HEARTBEAT_FAIL_URL", "Supervision",
        "with `--supervise`: where a failure's reason is posted at once (healthchecks.io `<url>/fail`, Uptime "
        "Kuma `<url>?status=down`, Cronitor `<url>?state=fail`); unset = none",
        "With --supervise: the monitor's fail endpoint, where the supervisor posts the reason at once when it\n"
        "ends on a failure or a start-up fails (healthchecks.io: <url>/fail; Uptime Kuma: <url>?status=down;\n"
        "Cronitor: <url>?state=fail). Unset = the monitor notices from the missing pings only.",
        example="https://hc-ping.com/<uuid>/fail", secret=True, check=_http_url, accepted="an https URL, or unset",
    ),
    Setting(
        "HEARTBEAT_INTERVAL", "Supervision",
        "with `--supervise`: seconds between two heartbeat pings (set the monitor's period to match)",
        "With --supervise: seconds between two pings of HEARTBEAT_URL. Set the monitor's period to this and\n"
        "its grace to a few minutes.",
        default="60", kind=float, ge=10, le=3600,
    ),
    Setting(
        "GATEWAY_LOGIN_HOURS", "Supervision",
        "with `--supervise`: New York hours in which a login the system causes by itself may happen (the "
        "supervisor's restart of a dead or hung Gateway, a supervised start-up's create or start; on live, "
        "a 2FA push); outside them it waits for them, with one alert; unset = any hour",
        "With --supervise: when a Gateway login the system causes by itself may happen, New York time,\n"
        "in IBKR_RESET_WINDOWS' grammar (e.g. `daily 06:30-22:00` or `mon-fri 06:00-21:00`): the\n"
        "supervisor's restart of a dead or hung Gateway, and a supervised start-up's create or start\n"
        "(after a reboot at night, say). A login is, on a live account, a 2FA push on your phone:\n"
        "outside these hours it waits until they begin (one warning alert says when), so the push\n"
        "does not come at 00:45 when nobody can approve it. A start-up by hand and WEEKLY_LOGIN_TIME\n"
        "are not held. Unset = any hour.",
        example="daily 06:30-22:00", check=_login_hours,
        accepted="New York windows like 'daily 06:30-22:00' (IBKR_RESET_WINDOWS' grammar, not none), or unset",
    ),
    # --- Schedule
    Setting(
        "TRADING_CALENDAR", "Schedule (with --supervise; New York time)",
        "the days the daily cycle runs: `XNYS` (NYSE trading days; a half day counts) or `ALWAYS` (every day)",
        "The days the supervisor's daily cycle runs: XNYS = New York Stock Exchange trading days\n"
        "(no weekends, no exchange holidays; a half day is a trading day), ALWAYS = every day,\n"
        "weekends included (tests, markets that trade every day). Any case.",
        default="XNYS", choices=TRADING_CALENDARS, case="upper",
    ),
    Setting(
        "DAILY_CYCLE_TIME", "Schedule (with --supervise; New York time)",
        "when the daily cycle runs on each trading day: `HH:MM` or `HH:MM:SS`, New York",
        "When the daily cycle runs on each trading day, New York wall clock: HH:MM or HH:MM:SS.\n"
        "A time a daylight saving change skips or repeats is read with the offset before the change\n"
        "(02:30 on the March change is 03:30 EDT; 01:30 on the November change is the first one).",
        default="08:00", check=_cycle_time, accepted="HH:MM or HH:MM:SS (00:00-23:59:59), New York time",
    ),
    Setting(
        "WEEKLY_LOGIN_TIME", "Schedule (with --supervise; New York time)",
        "`DAY HH:MM`, New York: restart the Gateway then each week, so the 2FA push comes while you are "
        "awake; heads-up alert at 18:00 the day before; unset = off (heads-up on Sundays at 18:00)",
        "A planned weekly Gateway restart, DAY HH:MM[:SS] New York (mon..sun or full names, any case), so\n"
        "the weekly 2FA push (IBKR invalidates sessions early on Sundays) comes while you are awake.\n"
        "A heads-up alert goes at 18:00 New York the day before. Must be outside the reset windows.\n"
        "Unset = no planned restart (the heads-up then goes on Sundays at 18:00).",
        example="sun 17:00", check=_weekly,
        accepted="DAY HH:MM or DAY HH:MM:SS, New York time (e.g. 'sun 17:00'), or unset",
    ),
    Setting(
        "AUTO_RESTART_TIME", "Schedule (with --supervise; New York time)",
        "IBC's daily Gateway restart (keeps the session, no 2FA), passed to the container; also a reset "
        "window from 2 min before to 10 min after it",
        "IBC's daily auto-restart of the Gateway (keeps the session: no 2FA until the weekly\n"
        "invalidation). Compose hands it to the container; the orchestrator also treats 2 minutes\n"
        "before to 10 minutes after it as a reset window. Read as New York time, as the container\n"
        "reads it while TIME_ZONE is unset (docker-compose.yml's default: America/New_York; keep it).\n"
        "hh:mm AM/PM (IBC's form) or 24-hour HH:MM; Compose is handed IBC's form either way.",
        default=DEFAULT_AUTO_RESTART_TIME, check=_autorestart,
        accepted="hh:mm AM or hh:mm PM (e.g. 11:59 PM) or 24-hour HH:MM, New York time",
    ),
    # --- Alerts
    Setting(
        "DISCORD_WEBHOOK_URL", "Alerts", "alerts; unset = log only",
        "Discord webhook (contains a secret token: never commit it). Unset = alerts are logged only.",
        example="https://discord.com/api/webhooks/<id>/<token>", secret=True, check=validate_webhook_url,
        accepted="https://discord.com/api/webhooks/<id>/<token>, or unset",
    ),
    Setting(
        "DISCORD_MENTION", "Alerts",
        "who a critical alert pings: `@here`, `@everyone`, `<@USERID>` or `<@&ROLEID>`; other levels never "
        "ping; unset = nobody",
        "Who a critical alert pings (e.g. a 2FA approval with minutes left), so the phone rings:\n"
        "@here, @everyone, <@USERID> (a user) or <@&ROLEID> (a role), numeric ids (Discord's developer\n"
        "mode: right-click, Copy ID). Discord's allowed_mentions is set to exactly that; other levels,\n"
        "and any mention inside a message's text, never ping. Unset = no alert pings anyone.",
        example="<@&123456789012345678>", check=validate_mention,
        accepted="@here, @everyone, <@USERID> or <@&ROLEID> with a numeric id, or unset",
    ),
    # --- Files
    Setting(
        "STATE_DIR", "Files", "locks, journal, readiness, emergency plan",
        "Locks, run journal (runs.jsonl), readiness record, emergency plan. A directory of its own:\n"
        "not the filesystem's root, not a file.",
        default=DEFAULT_STATE_DIR, kind=Path, accepted="a directory path (not /, not a file)", check=_state_dir,
    ),
    Setting(
        "LOG_DIR", "Files", "orchestrator and bot logs",
        "Orchestrator and bot logs.",
        default="logs", kind=Path, accepted="a directory path",
    ),
    # --- read by Compose for the Gateway container
    Setting(
        "TWS_USERID", "IB Gateway container (read by docker/gateway/docker-compose.yml, never logged)",
        "the IBKR user name, read by Compose; redacted everywhere",
        example="", secret=True, passthrough=True,
    ),
    Setting(
        "TWS_PASSWORD_SECRET_FILE", "IB Gateway container (read by docker/gateway/docker-compose.yml, never logged)",
        "the password's file (a Docker secret); its contents are redacted everywhere",
        "A file holding only the password, handed to the container as a Docker secret; its\n"
        "contents are redacted from every log line and alert, like TWS_USERID. Relative names are\n"
        f"taken from DOCKER_COMPOSE_DIR. Default: $HOME/{DEFAULT_PASSWORD_FILE}.\n"
        "See docker/gateway/docker-compose.yml.",
        example=f"/home/trader/{DEFAULT_PASSWORD_FILE}", shown_default=f"`$HOME/{DEFAULT_PASSWORD_FILE}`",
        passthrough=True,
    ),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
# The settings OrchestrationConfig holds, one attribute each (the others Compose reads as written).
CONFIG_SETTINGS: tuple[Setting, ...] = tuple(s for s in SETTINGS if not s.passthrough)


def _default(name: str) -> str:
    value = BY_NAME[name].default
    if value is None:
        raise LookupError(f"{name} has no default value (unset has its own meaning)")
    return value


def default_str(name: str) -> str:
    """The declared default of a setting, for a module that needs the same default without the
    whole configuration (the bot's and the probe's CLIs)."""
    return _default(name)


def default_int(name: str) -> int:
    return int(_default(name))


def default_float(name: str) -> float:
    return float(_default(name))


# --- the documents derived from SETTINGS --------------------------------------------------------

ENV_EXAMPLE = REPO_ROOT / ".env.example"
CONFIGURATION_DOC = REPO_ROOT / "docs" / "CONFIGURATION.md"  # its settings table is generated
TABLE_START, TABLE_END = "<!-- settings:start -->", "<!-- settings:end -->"
_RULE = 92  # width of a .env.example section line
_ENV_HEADER = """\
# Zero-touch startup configuration. Copy to .env (chmod 600) and edit.
# Generated from src/core/settings.py by `python -m src.orchestration.config --write-docs`:
# edit the declarations there, not this file.
# .env is read as DATA, by the orchestrator only (python-dotenv, never systemd, never a
# shell): KEY=VALUE lines, '#' comments (also after a value, following a space), optional
# quotes; nothing is expanded (${VAR} stays as written) or executed. Real environment
# variables win over this file. At most 64 KiB of UTF-8 text, no byte-order mark.
# Every variable is optional: the values below are the defaults.
"""


def _sections(settings: Iterable[Setting]) -> list[tuple[str, list[Setting]]]:
    grouped: list[tuple[str, list[Setting]]] = []
    for s in settings:
        if not grouped or grouped[-1][0] != s.section:
            grouped.append((s.section, []))
        grouped[-1][1].append(s)
    return grouped


def render_env_example(settings: Iterable[Setting] = SETTINGS) -> str:
    """`.env.example`: the header, then each section with each setting's explanation and its line,
    `NAME=default` or, with an example, `# NAME=example` (commented out: unset is the default)."""
    parts = [_ENV_HEADER]
    for section, members in _sections(settings):
        lines = ["", f"# --- {section} ".ljust(_RULE, "-")]
        for s in members:
            lines.extend(f"# {line}".rstrip() for line in s.comment.splitlines())
            if s.example is not None:
                lines.append(f"# {s.name}={s.example}")
            elif s.default is not None:
                lines.append(f"{s.name}={s.default}")
            else:
                raise ValueError(f"{s.name}: no default and no example: .env.example would not show it")
        parts.append("\n".join(lines) + "\n")
    return "".join(parts)


def render_table(settings: Iterable[Setting] = SETTINGS) -> str:
    """The configuration table (docs/CONFIGURATION.md): variable, default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows.extend(f"| `{s.name}` | {s.readme_default} | {s.meaning} |" for s in settings)
    return "\n".join(rows) + "\n"


def render_table_doc(readme: str, settings: Iterable[Setting] = SETTINGS) -> str:
    """The document with the text between the settings markers replaced by the table."""
    pattern = re.compile(f"({re.escape(TABLE_START)}\n).*?(\n?{re.escape(TABLE_END)})", re.S)
    if len(pattern.findall(readme)) != 1:
        raise ValueError(f"docs/CONFIGURATION.md: expected one {TABLE_START} ... {TABLE_END} block")
    return pattern.sub(lambda m: m[1] + "\n" + render_table(settings) + "\n" + m[2].lstrip("\n"), readme)


def stale_docs(env_example: Path = ENV_EXAMPLE, readme: Path = CONFIGURATION_DOC) -> list[Path]:
    """The documents that differ from what the declarations produce."""
    stale = []
    if _read(env_example) != render_env_example():
        stale.append(env_example)
    if _read(readme) != render_table_doc(_read(readme)):
        stale.append(readme)
    return stale


def write_docs(env_example: Path = ENV_EXAMPLE, readme: Path = CONFIGURATION_DOC) -> list[Path]:
    """Rewrite `.env.example` and docs/CONFIGURATION.md's table from the declarations; the files it changed."""
    changed = stale_docs(env_example, readme)
    if env_example in changed:
        env_example.write_text(render_env_example(), encoding="utf-8")
    if readme in changed:
        readme.write_text(render_table_doc(_read(readme)), encoding="utf-8")
    return changed


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""
