#!/usr/bin/env bash
# Trains the bundled default model on a CPU with the `cpu` preset (160 minutes of training on one core of two),
# then makes everything it ships with: GANSpace components at conv0 from 65,536 latents, their descriptions, a
# classifier and an evaluation report; copies the model (half precision) and components into ganspacesynth/assets/.
#   bash scripts/make_cpu_default.sh                 # WORK=/tmp/gss-cpu by default
#   bash scripts/make_cpu_default.sh --resume        # continue an interrupted run (a second sitting)
# Environment: WORK (scratch folder), SEED (default 0), THREADS (train --threads, default 1),
#   INSTALL=0 (leave ganspacesynth/assets/ alone: a dry run).
# The run's schedule is timed (stages get shares of the first 5,400 s of training, the last stage also the
# remaining 4,200 s, of which the critic joins for the last 3,600 s), so a rerun repeats the recipe and its random
# draws exactly but its stage boundaries only as closely as the machine repeats its speed. Training takes one core;
# the evaluation's classifier (it depends on the data only) trains on the other meanwhile, one thread, so the whole
# script takes about 164 minutes on 2 cores. Keep other work off the machine: it takes images from the run
# (docs/DEVELOPING.md, "Training").
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/tmp/gss-cpu}"
SEED="${SEED:-0}"
THREADS="${THREADS:-1}"
GSS=ganspacesynth
mkdir -p "$WORK"

[[ -f "$WORK/gm/manifest.json" ]] || $GSS dataset soundfont "$WORK/gm" --preset cpu --programs 0-111 --velocities 100
CLASSIFIER_PID=""
if [[ ! -f "$WORK/classifier.safetensors" ]]; then
  OMP_NUM_THREADS=1 $GSS train-classifier --data "$WORK/gm" --steps "${CLASSIFIER_STEPS:-1500}" \
    --out "$WORK/classifier.safetensors" > "$WORK/classifier.log" 2>&1 &
  CLASSIFIER_PID=$!
  trap '[[ -n "$CLASSIFIER_PID" ]] && kill "$CLASSIFIER_PID" 2>/dev/null; true' EXIT  # training failed: stop it too
fi
if [[ "${1:-}" == "--resume" ]]; then
  $GSS train --out "$WORK/run" --resume --threads "$THREADS" --no-progress
elif [[ ! -f "$WORK/run/model.safetensors" ]]; then
  $GSS train --data "$WORK/gm" --out "$WORK/run" --preset cpu --conditions pitch,instrument_family \
    --set seed="$SEED" --threads "$THREADS" --no-progress
fi
if [[ -n "$CLASSIFIER_PID" ]]; then
  wait "$CLASSIFIER_PID" || { echo "the classifier failed: $WORK/classifier.log" >&2; exit 1; }
  CLASSIFIER_PID=""
  tail -n 3 "$WORK/classifier.log"
fi
# The bundled file is half precision; components carry the fingerprint of exactly that file.
python - "$WORK" <<'PY'
import sys
from pathlib import Path
from ganspacesynth.model.files import load_model, save_model
work = Path(sys.argv[1])
mf = load_model(work / "run")
save_model(work / "default_model.safetensors", mf.config, mf.generator_state, info={**mf.info, "trained_on": "cpu"}, half=True, prior=mf.prior)
PY
# Components, descriptions, classifier, evaluation report, copy into the package: the same as for the GPU model.
# conv0: on this model its directions keep the pitch best and get the most labels (docs/training.md).
WORK="$WORK" DATA="$WORK/gm" PRESET=cpu LAYER=conv0 bash "$REPO/scripts/bundle_default.sh" "$WORK/default_model.safetensors"
