#!/usr/bin/env bash
# Set up, then run the test suite (CI calls exactly this). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser for the end-to-end page tests: Debian's chromium (Playwright, from the `test` extra, drives it).
# Locally a failed install only skips the browser tests; in CI (CI=true) it is an error: CI must run them.
case "${CI:-}" in 1|true|TRUE|True|yes) IN_CI=1 ;; *) IN_CI="" ;; esac
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if ! { command -v apt-get >/dev/null && { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium; } \
         >/dev/null 2>&1; }; then
    if [ -n "$IN_CI" ]; then
      echo "error: CI=true and chromium could not be installed; the browser tests must run in CI" >&2
      exit 1
    fi
    echo "note: could not install chromium; the browser tests will be skipped" >&2
  fi
fi
export MNISTLAB_QUIET=1
exec .venv/bin/python -m pytest "$@"
