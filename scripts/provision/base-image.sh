# shellcheck shell=bash
# Part 2 of scripts/provision-docker.sh (sourced by it, which defines say, run, fail,
# apt_install, can_provision, codename and LOG): the simulator's base image, in BASE_IMAGE.
#
# $SIM_BASE_IMAGE if set; else local/python-base:<codename> or python:3.12-slim if present
# locally; else, on Debian/Ubuntu as root (no container registry is assumed: CI has none), a
# Debian base made offline with debootstrap from the mirror apt already uses, imported as
# local/python-base:<codename>; else python:3.12-slim (pulled by the build).

SLIM_BASE=python:3.12-slim

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

# build_debian_base IMAGE SUITE [INCLUDE [CMD [PREPARE]]]: debootstrap SUITE (minbase, plus the
# comma-separated INCLUDE packages, default python3) from apt's mirror, run PREPARE (a function,
# given the root directory) on it, and import it as IMAGE with CMD (JSON, default ["python3"]).
build_debian_base() {
    local image=$1 suite=$2 include=${3:-python3} cmd=${4:-'["python3"]'} prepare=${5:-} mirror dir
    mirror=$(apt_mirror "$suite")
    [ -n "$mirror" ] || fail "finding the mirror apt uses for '$suite' in /etc/apt/sources.list{,.d/*}"
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    dir=$(mktemp -d /var/tmp/debian-base.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$dir'" EXIT
    say "building $image offline: debootstrap --variant=minbase --include=$include $suite from $mirror"
    run "debootstrap of $suite from $mirror" debootstrap --variant=minbase --include="$include" "$suite" "$dir" "$mirror"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    [ -z "$prepare" ] || "$prepare" "$dir"
    say "importing it as $image"
    echo "=== $(date -u +%FT%TZ) docker import $image" >>"$LOG"
    tar -C "$dir" -c . 2>>"$LOG" | docker import --change 'ENV LANG=C.UTF-8' --change "CMD $cmd" - "$image" >>"$LOG" 2>&1 \
        || fail "docker import of $image"
    rm -rf "$dir"
    trap - EXIT
}

provision_base_image() {
    local suite local_base
    suite=$(codename)
    local_base="local/python-base:${suite:-none}"
    if [ -n "${SIM_BASE_IMAGE:-}" ]; then
        BASE_IMAGE=$SIM_BASE_IMAGE
        say "base image: $BASE_IMAGE (from SIM_BASE_IMAGE)"
    elif [ -n "$suite" ] && image_exists "$local_base"; then
        BASE_IMAGE=$local_base
        say "base image: $BASE_IMAGE (already built)"
    elif image_exists "$SLIM_BASE"; then
        BASE_IMAGE=$SLIM_BASE
        say "base image: $BASE_IMAGE (present locally)"
    elif can_provision && [ -n "$suite" ]; then
        BASE_IMAGE=$local_base
        build_debian_base "$BASE_IMAGE" "$suite"
        say "checking $BASE_IMAGE: python3 -c 'import asyncio'"
        run "running python3 in $BASE_IMAGE" docker run --rm --network none "$BASE_IMAGE" python3 -c 'import asyncio, sys; print(sys.version)'
    else
        BASE_IMAGE=$SLIM_BASE
        say "base image: $BASE_IMAGE (the build pulls it from the container registry)"
    fi
}
