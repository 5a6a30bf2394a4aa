#!/usr/bin/env bash
# Installs GANSpaceSynth with everything the CLI and the tests need, into the current Python.
# A CPU build of PyTorch comes first: a plain `pip install torch` would pull a multi-GB CUDA build, so this
# script never does that. It uses the local CPU wheel when there is one (WHEEL_DIR, default /opt/wheels), and
# otherwise stops with the one command that installs the CPU build from PyTorch's own index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEEL_DIR=${WHEEL_DIR:-/opt/wheels}
TORCH_VERSION=2.13.0
if ! "$PY" -c "import torch" 2>/dev/null; then
  wheel=$(ls "$WHEEL_DIR"/torch-"$TORCH_VERSION"+cpu-*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$wheel" ]; then
    "$PY" -m pip install -q "$wheel"
  else
    cat >&2 <<EOF
error: PyTorch is not installed and there is no local CPU wheel in $WHEEL_DIR.
A plain 'pip install torch' would download the multi-GB CUDA build, so this script stops here.
Install the CPU build from PyTorch's index (needs internet access), then run this script again:
  $PY -m pip install torch==$TORCH_VERSION --index-url https://download.pytorch.org/whl/cpu
(On a GPU machine, install the CUDA build you want the same way, from https://pytorch.org/get-started/.)
EOF
    exit 1
  fi
fi
# tinysoundfont's metadata asks for pyaudio (live playback), which we never use and which needs PortAudio headers.
"$PY" -m pip install -q --no-deps "tinysoundfont==0.3.7"
"$PY" -m pip install -q -e ".[dev]"
echo "GANSpaceSynth installed: $("$PY" -m ganspacesynth --version)"
