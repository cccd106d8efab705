#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then runs pytest.
# Extra arguments go to pytest. Exit status is pytest's own (5 = no tests collected
# is a failure here, never hidden).
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
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests: that is a failure" >&2
fi
exit "$status"
