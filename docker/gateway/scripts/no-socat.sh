#!/usr/bin/env bash
# Mounted over the image's /home/ibgateway/scripts/run_socat.sh (docker-compose.yml): the image's socat
# relay would expose the Gateway's API on 0.0.0.0:4004/4003 of the shared network namespace, a way
# around the order firewall. Here it does nothing; the firewall is the only way in.
echo ".> socat relay disabled: the API is reached through the order firewall only"
