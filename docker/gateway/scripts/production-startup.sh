#!/usr/bin/env bash
# shellcheck disable=SC2059,SC2064,SC2093  # RECORD is a format; traps expand when set; see execfail
# Production entry point (docs/OPERATIONS.md, "Production"); every argument goes to the orchestrator:
#   systemd:         ExecStart=/abs/path/docker/gateway/scripts/production-startup.sh --supervise
#   Task Scheduler:  wsl.exe -d Ubuntu -- /abs/path/docker/gateway/scripts/production-startup.sh --supervise
# It does only what a shell must, then `exec`s `python -m src.orchestration.startup "$@"`, so the
# orchestrator IS this process: systemd's main PID (it sends READY=1 itself), the stop signals
# reach it directly, its exit code is what Restart= sees, and it logs its run itself (stderr,
# LOG_DIR/orchestrator_*.log, STATE_DIR/runs.jsonl).
#  - PATH gains the system directories (a given PATH wins); HOME comes from passwd when unset.
#  - .env is never sourced or parsed here (only the orchestrator reads it, as data); it is refused
#    unless a regular file that group and others cannot write, owned by this user or root.
#  - The interpreter: $ZT_PYTHON, else the project's .venv/bin/python, else `poetry env info -e`.
# A refusal (that .env, no interpreter, a stop signal before the exec) exits 1 (128+N for signal
# N) and needs no logs/: one line on stderr (the journal under systemd); the same line to syslog
# (`logger -t ibkr-zero-touch`) unless stderr already is the journal; and a "refused" record
# appended to STATE_DIR/runs.jsonl, which --status shows (STATE_DIR from the environment, else
# state/: the wrapper never reads .env). No `set -e`: every status is checked (KNOWN-DEFECTS 16).
set -uo pipefail
shopt -s execfail
now() { date -u +%FT%T.%3N+00:00; }

ME=production-startup.sh SCRIPT=$(readlink -f -- "${BASH_SOURCE[0]}")
REPO_DIR=$(cd -- "${SCRIPT%/*}/../../.." && pwd -P)
ENV_FILE=$REPO_DIR/.env STARTED=$(now)
[[ -n ${HOME:-} ]] || { HOME=$(getent passwd "$(id -u)" | cut -d: -f6); export HOME; }
for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    [[ ":${PATH:-}:" == *":$dir:"* ]] || PATH=${PATH:+$PATH:}$dir
done
export PATH

RECORD='{"run_id":"%s","pid":%d,"started_at":"%s","ended_at":"%s","outcome":"refused","exit_code":%d,"reason":%s,"by":"%s"}'
json() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "${s//[[:cntrl:]]/ }"; }

# refuse REASON [CODE]: record why nothing was started, everywhere that needs no logs/, and exit.
refuse() {
    local code=${2:-1} dir=${STATE_DIR:-state} id sep=
    trap '' TERM INT HUP
    printf '%s: %s\n' "$ME" "$1" >&2
    [[ -n ${JOURNAL_STREAM:-} && $JOURNAL_STREAM == "$(stat -L -c %d:%i /proc/$$/fd/2 2>/dev/null)" ]] ||
        logger -t ibkr-zero-touch -p user.err -- "$ME: $1" 2>/dev/null
    [[ $dir == [~] || $dir == [~]/* ]] && dir=$HOME${dir:1}
    [[ $dir == /* ]] || dir=$REPO_DIR/$dir
    id=$(tr -d - </proc/sys/kernel/random/uuid)
    [[ -s $dir/runs.jsonl && -n $(tail -c 1 -- "$dir/runs.jsonl") ]] && sep=$'\n'  # repair a torn tail
    { mkdir -p -- "$dir" && printf "%s$RECORD\n" "$sep" "${id:0:12}" $$ "$STARTED" "$(now)" "$code" "$(json "$1")" \
        "$ME" >>"$dir/runs.jsonl"; } 2>/dev/null || printf '%s: (not recorded in %s)\n' "$ME" "$dir/runs.jsonl" >&2
    exit "$code"
}
for sig in TERM INT HUP; do  # until the exec, which resets them for the orchestrator
    trap "refuse 'SIG$sig received before the orchestrator started: not starting it' $((128 + $(kill -l $sig)))" "$sig"
done

if [[ -e $ENV_FILE || -L $ENV_FILE ]]; then
    [[ -f $ENV_FILE ]] || refuse "refusing $ENV_FILE: not a regular file"
    read -r mode owner < <(stat -L -c '%a %u' -- "$ENV_FILE")
    (( 8#$mode & 8#022 )) &&
        refuse "refusing $ENV_FILE: mode $mode lets group or others write it; fix with: chmod go-w $ENV_FILE"
    [[ $owner == "$(id -u)" || $owner == 0 ]] ||
        refuse "refusing $ENV_FILE: owned by uid $owner, not by this user (uid $(id -u)) or root"
fi

NO_ENV="no Python environment: $REPO_DIR/.venv/bin/python is missing and"
SETUP="run scripts/setup.sh (or set ZT_PYTHON)"
if [[ -n ${ZT_PYTHON:-} ]]; then
    PYTHON=$(command -v -- "$ZT_PYTHON")
    [[ -f $PYTHON && -x $PYTHON ]] || refuse "ZT_PYTHON=$ZT_PYTHON is not an executable file"
elif [[ -x $REPO_DIR/.venv/bin/python ]]; then
    PYTHON=$REPO_DIR/.venv/bin/python
else
    poetry=$(command -v poetry) || poetry=$HOME/.local/bin/poetry
    [[ -x $poetry ]] || refuse "$NO_ENV poetry is not on PATH; $SETUP"
    PYTHON=$(cd -- "$REPO_DIR" && "$poetry" env info -e 2>/dev/null)
    [[ -n $PYTHON && -x $PYTHON ]] || refuse "$NO_ENV '$poetry env info -e' names none; $SETUP"
fi

cd -- "$REPO_DIR" || refuse "cannot enter $REPO_DIR"
printf '%s: exec %s -m src.orchestration.startup%s (repository %s)\n' "$ME" "$PYTHON" "${*:+ $*}" "$REPO_DIR" >&2
exec "$PYTHON" -m src.orchestration.startup "$@"
refuse "cannot execute $PYTHON"
