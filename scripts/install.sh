#!/usr/bin/env bash
# Installs GANSpaceSynth with everything the CLI and the tests need, into the current Python.
# A CPU build of PyTorch comes first (a plain `pip install torch` would pull a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
  wheel=$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$wheel" ]; then
    "$PY" -m pip install -q "$wheel"
  else
    "$PY" -m pip install -q "torch==2.13.0"
  fi
fi
# tinysoundfont's metadata asks for pyaudio (live playback), which we never use and which needs PortAudio headers.
"$PY" -m pip install -q --no-deps "tinysoundfont==0.3.7"
"$PY" -m pip install -q -e ".[dev]"
echo "GANSpaceSynth installed: $("$PY" -m ganspacesynth --version)"
