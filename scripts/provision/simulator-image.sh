# shellcheck shell=bash
# Part 3 of scripts/provision-docker.sh (sourced by it, which defines say, run, elapsed and ROOT):
# ibkr-gateway-simulator:local built from docker/simulator/Dockerfile on the base image $1.
# Docker's build cache makes this a no-op when src/simulator has not changed, and a rebuild when
# it has: `docker compose up` alone would keep running a stale image.

SIM_IMAGE=ibkr-gateway-simulator:local

provision_simulator_image() {
    local base=$1
    say "building $SIM_IMAGE from docker/simulator/Dockerfile (BASE_IMAGE=$base; cached when unchanged)"
    run "docker build of $SIM_IMAGE" docker build --build-arg "BASE_IMAGE=$base" \
        -f "$ROOT/docker/simulator/Dockerfile" -t "$SIM_IMAGE" "$ROOT"
    # Earlier builds left untagged by this one (dangling, and only the simulator's).
    run "pruning untagged simulator images" docker image prune -f \
        --filter "label=org.opencontainers.image.title=ibkr-gateway-simulator"
    say "ready after $(elapsed): $SIM_IMAGE built on $base. To rebuild it with Compose: SIM_BASE_IMAGE=$base docker compose build"
}
