#!/usr/bin/env bash
# Download, here, the cp312 wheels that a GPU machine without internet access lacks (it has torch, numpy, scipy, scikit-learn,
# safetensors, tensorboard, tqdm, rich, matplotlib; not soundfile, tinysoundfont, pretty_midi, python-osc),
# into .whl/ (git-ignored; about 7.5 MB), to be carried with the device call. See docs/training.md.
#   bash scripts/fetch_gpu_wheels.sh [DIR]
set -euo pipefail
DIR="${1:-.whl}"
mkdir -p "$DIR"
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
# Pinned to what the tests run with here; their own needs named too (--no-deps fetches none).
for pkg in soundfile==0.14.0 cffi pycparser tinysoundfont==0.3.7 pretty_midi==0.2.11.post0 mido==1.3.3 six \
           importlib_resources python-osc; do
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$DIR" "$pkg"
done
ls -1 "$DIR"
du -sh "$DIR"
