#!/usr/bin/env bash
# Set up, then run the test suite (CI calls exactly this). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser for the end-to-end page tests: Debian's chromium (Playwright, from the `test` extra, drives it).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium; } >/dev/null 2>&1 \
    || echo "note: could not install chromium; the browser tests will be skipped" >&2
fi
export MNISTLAB_QUIET=1
exec .venv/bin/python -m pytest "$@"
