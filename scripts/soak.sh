#!/usr/bin/env bash
# The soak (issue "No silent stop"): `--supervise` against the simulator Gateway under random faults for
# 30 minutes by default, then its verdict (silent faults, orphans, unparseable journal lines: all 0).
#   bash scripts/soak.sh [--minutes 30] [--seed N] [--out docs/RELIABILITY.md] [--json logs/soak.json]
# Sets up what it needs like scripts/test.sh (Python environment, Docker and the images). Not part of CI
# (it takes half an hour): its results are recorded in docs/RELIABILITY.md, "The soak".
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh >/dev/null
bash scripts/provision-docker.sh >/dev/null
exec .venv/bin/python scripts/soak.py "$@"
