#!/usr/bin/env bash
# =============================================================================
# Production entry point: runs the zero-touch orchestrator once, logs, exits
# with the orchestrator's own exit code (0 trading, 2 Strategy C, 1 failure).
#
#   Linux (systemd):           ExecStart=/abs/path/docker/gateway/scripts/production-startup.sh --supervise
#   Windows (Task Scheduler):  wsl.exe -d Ubuntu -- /abs/path/docker/gateway/scripts/production-startup.sh --supervise
#
# Every argument goes to `python -m src.orchestration.startup`. Works from any
# working directory, with a minimal environment (PATH=/usr/bin:/bin, no HOME)
# and without Poetry on PATH. The interpreter is, in this order: $ZT_PYTHON;
# the project's .venv/bin/python; `poetry env info -e`. None: one line, exit 1.
#
# Output (this script's and the orchestrator's) goes to stdout (the journal)
# and to $LOG_DIR/startup_YYYYMMDD_HHMMSS.log (LOG_DIR as the orchestrator reads
# it: environment, then .env, default logs/). The last line is always
#   [time] Startup orchestration SUCCESS|STRATEGY C|FAILED (exit code: N)
# SUCCESS is 0, STRATEGY C is 2 and nothing else; every other code is FAILED
# (a usage error is 1; 76, 77, 78 are the supervise mode's do-not-restart codes).
# No `set -e`: every status is captured explicitly (KNOWN-DEFECTS 16).
#
# .env is never sourced, exported or parsed here: only the orchestrator reads
# it, as data (`python -m src.orchestration.config --get LOG_DIR` asks it for
# the one value this script needs). This script only refuses a .env that is
# not a regular file, that group or others can write, or that belongs to
# neither this user nor root, since it configures what runs and trades.
#
# systemd and signals. Logging through tee means this shell cannot exec the
# orchestrator: it stays the unit's main process, with the orchestrator as
# its child. Hence, in the unit:
#   Type=notify + NotifyAccess=all  READY=1 / STATUS= / STOPPING=1 come from the
#                                   orchestrator (a child); NOTIFY_SOCKET passes
#                                   through untouched. The orchestrator must not
#                                   send MAINPID=, so this script's exit status
#                                   (= the orchestrator's) is what Restart= and
#                                   RestartPreventExitStatus= see.
#   KillMode=mixed                  SIGTERM reaches this script only; it forwards
#                                   SIGTERM to the orchestrator, which stops the
#                                   bot (and the Gateway if configured) in order,
#                                   waits for it, then logs the result line.
#                                   SIGKILL hits everything at TimeoutStopSec.
# SIGINT and SIGHUP (a closed wsl.exe session) are forwarded as SIGTERM too:
# a background child of a non-interactive shell ignores SIGINT.
# =============================================================================
set -uo pipefail

SCRIPT=$(readlink -f -- "${BASH_SOURCE[0]}")
REPO_DIR=$(cd -- "$(dirname -- "$SCRIPT")/../../.." && pwd -P)
ENV_FILE="$REPO_DIR/.env"
ME=production-startup.sh

# systemd and wsl.exe may start us without HOME (Poetry needs it) or with a PATH
# that lacks /usr/local/bin (where docker may live). Append, so a given PATH wins.
if [[ -z ${HOME:-} ]]; then
    HOME=$(getent passwd "$(id -u)" | cut -d: -f6)
    export HOME
fi
for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    [[ ":${PATH:-}:" == *":$dir:"* ]] || PATH="${PATH:+$PATH:}$dir"
done
export PATH

now() { date '+%Y-%m-%d %H:%M:%S'; }
log() { printf '[%s] %s\n' "$(now)" "$*"; }

result_line() {
    local code=$1 verdict=FAILED
    if [[ $code == 0 ]]; then verdict=SUCCESS; elif [[ $code == 2 ]]; then verdict="STRATEGY C"; fi
    log "Startup orchestration $verdict (exit code: $code)"
}

# A reason not to start: one line on stderr; the log file also gets the result line.
refuse() {
    printf '%s: %s\n' "$ME" "$1" >&2
    if [[ -n ${LOG_FILE:-} ]]; then
        { log "$ME: $1"; result_line 1; } >>"$LOG_FILE" 2>/dev/null
    fi
    exit 1
}

# Why .env must not be used (empty when it is absent or fine).
env_file_problem() {
    [[ -e $ENV_FILE || -L $ENV_FILE ]] || return 0
    if [[ ! -f $ENV_FILE ]]; then
        echo "refusing $ENV_FILE: not a regular file"
        return 0
    fi
    local mode owner
    read -r mode owner < <(stat -L -c '%a %u' -- "$ENV_FILE")
    if (( 8#$mode & 8#022 )); then
        echo "refusing $ENV_FILE: mode $mode lets group or others write it; fix with: chmod go-w $ENV_FILE"
    elif [[ $owner != "$(id -u)" && $owner != 0 ]]; then
        echo "refusing $ENV_FILE: owned by uid $owner, not by this user (uid $(id -u)) or root"
    fi
}

# The value of KEY as the orchestrator reads it (environment, then .env), asked of the
# orchestrator's own parser: this script never parses .env. Empty (= the default) when
# it cannot tell; the orchestrator then reports the problem itself.
orchestrator_setting() {
    local key=$1 answer
    answer=$(cd -- "$REPO_DIR" && timeout 30 "$PYTHON" -m src.orchestration.config --get "$key" \
             --dotenv "$ENV_FILE" 2>/dev/null) || return 0
    [[ $answer == "$key="* && $answer != *$'\n'* ]] && printf '%s' "${answer#"$key="}"
    return 0
}

# The project's interpreter on stdout; or, with status 1, why there is none.
find_python() {
    local py poetry
    if [[ -n ${ZT_PYTHON:-} ]]; then
        if py=$(command -v -- "$ZT_PYTHON") && [[ -x $py ]]; then
            echo "$py"
            return 0
        fi
        echo "ZT_PYTHON=$ZT_PYTHON is not an executable file"
        return 1
    fi
    if [[ -x $REPO_DIR/.venv/bin/python ]]; then
        echo "$REPO_DIR/.venv/bin/python"
        return 0
    fi
    poetry=$(command -v poetry) || { [[ -x $HOME/.local/bin/poetry ]] && poetry=$HOME/.local/bin/poetry; }
    if [[ -z $poetry ]]; then
        echo "no Python environment: $REPO_DIR/.venv/bin/python is missing and poetry is not on PATH;" \
             "run scripts/setup.sh (or set ZT_PYTHON)"
        return 1
    fi
    py=$(cd -- "$REPO_DIR" && "$poetry" env info -e 2>/dev/null)
    if [[ -n $py && -x $py ]]; then
        echo "$py"
        return 0
    fi
    echo "no Python environment: $REPO_DIR/.venv/bin/python is missing and '$poetry env info -e' names none;" \
         "run scripts/setup.sh (or set ZT_PYTHON)"
    return 1
}

# Forward a stop request to the orchestrator as SIGTERM (see the header); before
# the orchestrator runs, remember it as pending.
# shellcheck disable=SC2329  # invoked by the traps below
forward() {
    stop_signal=$1
    signalled=1
    if [[ -n $child ]]; then
        log "SIG$1 received: forwarding SIGTERM to the orchestrator (PID $child) and waiting for it"
        kill -TERM "$child" 2>/dev/null
    else
        pending=1
    fi
}
child='' stop_signal='' signalled=0 pending=0
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward HUP' HUP

# --- preflight: .env, interpreter, log file ------------------------------------
env_problem=$(env_file_problem)
python_problem= PYTHON=
if [[ -z $env_problem ]]; then
    if found=$(find_python); then PYTHON=$found; else python_problem=$found; fi
fi
if [[ -z ${LOG_DIR:-} && -z $env_problem && -z $python_problem && -f $ENV_FILE ]]; then
    LOG_DIR=$(orchestrator_setting LOG_DIR)
fi
log_dir=${LOG_DIR:-logs}
# shellcheck disable=SC2088  # a literal "~/" in LOG_DIR: home-relative, as config.py reads it
[[ $log_dir == "~/"* ]] && log_dir="$HOME/${log_dir:2}"
[[ $log_dir == /* ]] || log_dir="$REPO_DIR/$log_dir"
LOG_FILE="$log_dir/startup_$(date '+%Y%m%d_%H%M%S').log"
if ! mkdir -p -- "$log_dir" 2>/dev/null || ! touch -- "$LOG_FILE" 2>/dev/null; then
    printf '%s: cannot write %s: logging to stdout only\n' "$ME" "$LOG_FILE" >&2
    LOG_FILE=
fi
[[ -z $env_problem ]] || refuse "$env_problem"
[[ -z $python_problem ]] || refuse "$python_problem"
cd -- "$REPO_DIR" || refuse "cannot enter $REPO_DIR"

# --- run -------------------------------------------------------------------------
tee_pid=
if [[ -n $LOG_FILE ]]; then
    # tee ignores stop signals so the last lines (the result line) still reach the log.
    exec > >(trap '' INT TERM HUP; exec tee -a -- "$LOG_FILE") 2>&1
    tee_pid=$!
fi

if (( pending )); then
    log "SIG$stop_signal received before the orchestrator started: not starting it"
    code=$(( 128 + $(kill -l "$stop_signal") ))
else
    log "Starting production orchestrator: $PYTHON -m src.orchestration.startup${*:+ $*} (repository $REPO_DIR)"
    PYTHONUNBUFFERED=1 "$PYTHON" -m src.orchestration.startup "$@" &
    child=$!
    (( pending )) && kill -TERM "$child" 2>/dev/null  # it came before $child was known
    while :; do
        signalled=0
        wait "$child"
        code=$?
        # A trapped signal makes wait return early; waiting again yields the orchestrator's status.
        (( signalled )) || break
    done
    child=
fi

result_line "$code"
if [[ -n $tee_pid ]]; then
    exec >&- 2>&-
    for _ in {1..50}; do
        kill -0 "$tee_pid" 2>/dev/null || break
        sleep 0.1
    done
fi
exit "$code"
