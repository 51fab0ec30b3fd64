#!/usr/bin/env bash
# Set up, then run the test suite (CI calls exactly this). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MNISTLAB_QUIET=1
exec .venv/bin/python -m pytest "$@"
