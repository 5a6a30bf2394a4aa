#!/usr/bin/env bash
# Builds the CPU stand-in for the bundled default model (issue: a GPU-trained default replaces it):
# a SoundFont dataset at the `tiny` representation (1.024 s notes), ~25 minutes of bf16 training on 2 CPU cores,
# GANSpace components at conv0 from 65,536 latents, their descriptions, a classifier and an evaluation report,
# then copies the model (half precision) and components into ganspacesynth/assets/.
#   WORK=/tmp/gss-cpu TRAIN_SECONDS=1500 bash scripts/make_cpu_default.sh
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/tmp/gss-cpu}"
TRAIN_SECONDS="${TRAIN_SECONDS:-1500}"
mkdir -p "$WORK"
GSS=ganspacesynth

[[ -f "$WORK/gm/manifest.json" ]] || $GSS dataset soundfont "$WORK/gm" --preset tiny --programs 0-111 --velocities 100
[[ -f "$WORK/run/model.safetensors" ]] || $GSS train --data "$WORK/gm" --out "$WORK/run" --preset tiny \
  --conditions pitch,instrument_family --set fmap_max=32 --set fmap_base=256 \
  --set train_time_limit="$TRAIN_SECONDS" --precision bfloat16 --no-progress
# The bundled file is half precision; components carry the fingerprint of exactly that file.
python - "$WORK" <<'PY'
import sys
from pathlib import Path
from ganspacesynth.model.files import load_model, save_model
work = Path(sys.argv[1])
mf = load_model(work / "run")
save_model(work / "default_model.safetensors", mf.config, mf.generator_state, info={**mf.info, "stand_in": "cpu"}, half=True)
PY
# Components, descriptions, classifier, evaluation report, copy into the package: the same as for the GPU model.
WORK="$WORK" DATA="$WORK/gm" bash "$REPO/scripts/bundle_default.sh" "$WORK/default_model.safetensors"
