#!/usr/bin/env bash
# Docker healthcheck run INSIDE the IB Gateway container (ghcr.io/gnzsnz/ib-gateway has bash and
# coreutils, no Python). It talks to the Gateway's own API port on the container's loopback
# (4002 paper, 4001 live), NOT to socat's relay port (4004/4003), which accepts connections long
# before IBKR login. Healthy = the API answers the TWS version handshake: it sends `API\0` and a
# version range, and needs the 4-byte length of the server's version reply within 3 s. The
# orchestrator still runs the whole handshake (startApi, accounts) from the host.
#   API_PORT overrides the port (the tests point it at a simulator).
set -u
port=${API_PORT:-$([ "${TRADING_MODE:-paper}" = live ] && echo 4001 || echo 4002)}
{ exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || exit 1
printf 'API\0\0\0\0\x09v157..178' >&3 || exit 1  # 9 = the length of "v157..178"
received=$(timeout 3 head -c 4 <&3 2>/dev/null | wc -c)
[ "$received" -eq 4 ]
