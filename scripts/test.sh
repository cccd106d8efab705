#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then runs pytest.
# Extra arguments go to pytest. Exit status is pytest's own (5 = no tests collected
# is a failure here, never hidden).
# The suite spends most of its time waiting on containers, logins and deadlines, not computing
# (one worker keeps two cores about a quarter busy), so it runs in PYTEST_WORKERS pytest-xdist
# workers (default 4; `-n 0` among the arguments runs it in this one process). Every test owns
# its ports, state directory, Compose project and container names, so they do not collide.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
# Real Docker Engine + Compose v2 + the simulator image, for the integration suite.
if ! bash scripts/provision-docker.sh; then
    if [ -n "${CI:-}" ]; then
        echo "test.sh: Docker provisioning failed, and CI needs real Docker (see the lines above)" >&2
        exit 1
    fi
    echo "test.sh: no usable Docker here: the Docker tests will be skipped (in CI they fail)" >&2
fi

export PATH="$HOME/.local/bin:$PATH"
workers=${PYTEST_WORKERS:-4}
if ! [[ $workers =~ ^[0-9]+$ ]]; then
    echo "test.sh: PYTEST_WORKERS must be a whole number (0 = no workers), not '$workers'" >&2
    exit 1
fi
set +e
.venv/bin/python -m pytest -n "$workers" --dist worksteal "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests: that is a failure" >&2
fi
exit "$status"
