#!/usr/bin/env bash
# The Gateway container's command (docker-compose.yml): turn IBC's command server on, on the container's
# loopback only, then run the image's own start (its CMD, /home/ibgateway/scripts/run.sh).
#
# The image renders IBC's config.ini from a template at every start and writes CommandServerPort=0 (off).
# The orchestrator drives the command server through `docker exec` (RESTART: the Gateway's own restart,
# the session kept, no 2FA push; STOP: a tidy logout), so its port is never published: BindAddress and
# ControlFrom keep it to 127.0.0.1. With CUSTOM_CONFIG=yes (your own config.ini) nothing is changed here.
set -u
template=${IBC_INI_TMPL:-${IBC_INI:-/home/ibgateway/ibc/config.ini}.tmpl}
port=${IBC_COMMAND_PORT:-7462}
if [ "${CUSTOM_CONFIG:-}" != "yes" ] && [ -f "$template" ] && [ -w "$template" ]; then
    for setting in "CommandServerPort=$port" "BindAddress=127.0.0.1" "ControlFrom=127.0.0.1"; do
        key=${setting%%=*}
        if grep -q "^$key=" "$template"; then
            sed -i "s/^$key=.*/$setting/" "$template"
        else
            printf '%s\n' "$setting" >>"$template"
        fi
    done
    echo ".> IBC command server on 127.0.0.1:$port (reached with docker exec; never published)"
else
    echo ".> IBC command server left as configured ($template not used or not writable): soft restarts unavailable"
fi
exec /home/ibgateway/scripts/run.sh "$@"
