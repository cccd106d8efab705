#!/usr/bin/env bash
# Set up the Python side on a fresh machine: Poetry (for `poetry run`) and the
# locked dependencies in ./.venv. Idempotent; safe to run every time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "setup: $PYTHON not found; install Python 3.11 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: $PYTHON must be Python >= 3.11 with venv and ensurepip (Debian/Ubuntu: apt-get install python3-venv)" >&2
    exit 1
fi

# Poetry: use the one on PATH, else install it into its own virtualenv.
if ! command -v poetry >/dev/null 2>&1; then
    POETRY_HOME=${POETRY_HOME:-$HOME/.local/share/poetry-venv}
    if [ ! -x "$POETRY_HOME/bin/poetry" ]; then
        echo "setup: installing Poetry into $POETRY_HOME"
        "$PYTHON" -m venv "$POETRY_HOME"
        "$POETRY_HOME/bin/python" -m pip install --quiet "poetry>=2.0,<3"
    fi
    mkdir -p "$HOME/.local/bin"
    ln -sf "$POETRY_HOME/bin/poetry" "$HOME/.local/bin/poetry"
    echo "setup: Poetry is at $HOME/.local/bin/poetry (add $HOME/.local/bin to PATH)"
fi

# Dependencies: exactly poetry.lock, hash-checked (see scripts/install-deps.py for why pip).
"$PYTHON" scripts/install-deps.py "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# ib_insync 0.9.86 beside the venv, for the simulator's compatibility test (see the requirements file)
if [ ! -f .venv/ib_insync/.installed ] || ! cmp -s scripts/requirements-ib_insync.txt .venv/ib_insync/.installed; then
    rm -rf .venv/ib_insync
    .venv/bin/python -m pip install --quiet --no-deps --require-hashes --no-compile --target .venv/ib_insync \
        -r scripts/requirements-ib_insync.txt 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    cp scripts/requirements-ib_insync.txt .venv/ib_insync/.installed
fi
# ibapi 9.81.1 (the official client on PyPI) beside the venv, for the placeOrder decoder's test (see the requirements file)
if [ ! -f .venv/ibapi/.installed ] || ! cmp -s scripts/requirements-ibapi.txt .venv/ibapi/.installed; then
    rm -rf .venv/ibapi
    .venv/bin/python -m pip install --quiet --no-deps --require-hashes --no-compile --target .venv/ibapi \
        -r scripts/requirements-ibapi.txt 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    cp scripts/requirements-ibapi.txt .venv/ibapi/.installed
fi
echo "setup: Python environment ready in .venv"
