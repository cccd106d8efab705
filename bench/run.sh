#!/usr/bin/env bash
# The benchmark, from the repository root: bash bench/run.sh [--quick] [--scenarios 1,2,...] [--plot] ...
# Uses the project's virtualenv (scripts/setup.sh makes it); arguments go to `python -m bench`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
exec "$python" -m bench "$@"
