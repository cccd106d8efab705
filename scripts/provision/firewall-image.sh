# shellcheck shell=bash
# Part 4 of scripts/provision-docker.sh (sourced by it, which defines say, run, fail, elapsed and ROOT):
# ibkr-firewall:local, the order firewall's image, from docker/firewall/Dockerfile on the base image $1.
# Its third-party packages (pydantic...) are fetched on the host for the base's own Python version
# (scripts/provision/firewall_site.py: poetry.lock's versions and hashes, from PyPI) into
# build/firewall-site, so the build itself needs no network. Cached when nothing changed.

FIREWALL_IMAGE=ibkr-firewall:local

provision_firewall_image() {
    local base=$1 pyver python=$ROOT/.venv/bin/python
    [ -x "$python" ] || fail "the firewall image needs the project's Python environment: run scripts/setup.sh first"
    pyver=$(docker run --rm --network none --entrypoint python3 "$base" \
        -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>>"$LOG") \
        || fail "reading the Python version of the base image $base"
    say "fetching the firewall's packages for Python $pyver (poetry.lock's versions and hashes)"
    run "firewall packages for Python $pyver" "$python" "$ROOT/scripts/provision/firewall_site.py" \
        "$pyver" "$ROOT/build/firewall-site"
    say "building $FIREWALL_IMAGE from docker/firewall/Dockerfile (BASE_IMAGE=$base; cached when unchanged)"
    run "docker build of $FIREWALL_IMAGE" docker build --build-arg "BASE_IMAGE=$base" \
        -f "$ROOT/docker/firewall/Dockerfile" -t "$FIREWALL_IMAGE" "$ROOT"
    run "pruning untagged firewall images" docker image prune -f \
        --filter "label=org.opencontainers.image.title=ibkr-firewall"
    say "ready after $(elapsed): $FIREWALL_IMAGE built on $base"
}
