#!/usr/bin/env bash
# Everything the bundled default model ships with, made from an exported generator, then copied into
# ganspacesynth/assets/: its output gain calibrated against the dataset (written into a copy of the model file,
# WORK/model.safetensors; same weights), GANSpace components at conv0 or conv1 (65,536 latents, all pitches), their
# descriptions, a spectrogram classifier and an evaluation report (docs/reports/default/).
#   bash scripts/bundle_default.sh out/model_fp16.safetensors         # after scripts/train_default_gpu.sh
# Environment:
#   WORK        scratch folder (default: /tmp/gss-bundle); the SoundFont set is rendered into WORK/gm unless
#   DATA        names a dataset already built at the model's representation
#   PRESET      representation of that dataset when it is rendered here (default: fast)
#   LAYER       GANSpace layer (default conv0)
#   Z_COUNT, TOP, CLASSIFIER_STEPS, EVAL_COUNT, CALIBRATE_COUNT   65536, 8, 1500, 500, 200
#   INSTALL=0   leave ganspacesynth/assets/ and docs/reports/ alone (a dry run)
set -euo pipefail
MODEL="$(realpath "${1:?usage: bundle_default.sh MODEL}")"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/tmp/gss-bundle}"
DATA="${DATA:-$WORK/gm}"
PRESET="${PRESET:-fast}"
mkdir -p "$WORK"
GSS=ganspacesynth

[[ -f "$DATA/manifest.json" ]] || $GSS dataset soundfont "$DATA" --preset "$PRESET" --programs 0-111 --velocities 100
# The notes' level: the gain that brings the model's median RMS to the dataset's (stored in the file's info).
$GSS calibrate "$MODEL" --data "$DATA" --count "${CALIBRATE_COUNT:-200}" --overwrite --out "$WORK/model.safetensors"
MODEL="$WORK/model.safetensors"
$GSS ganspace --model "$MODEL" --layer "${LAYER:-conv0}" --random-z-count "${Z_COUNT:-65536}" --pitches all --overwrite \
  --out "$WORK/components.npz"
$GSS describe --model "$MODEL" --components "$WORK/components.npz" --top "${TOP:-8}" --overwrite \
  --report "$WORK/describe"
[[ -f "$WORK/classifier.safetensors" ]] || \
  $GSS train-classifier --data "$DATA" --steps "${CLASSIFIER_STEPS:-1500}" --out "$WORK/classifier.safetensors"
$GSS evaluate --model "$MODEL" --data "$DATA" --classifier "$WORK/classifier.safetensors" --count "${EVAL_COUNT:-500}" \
  --overwrite --out "$WORK/report"
# The demo on this model, and how much its 5 x 5 grid varies (mean log-spectral distance of neighbouring cells).
rm -rf "$WORK/demo"
$GSS demo --model "$MODEL" --components "$WORK/components.npz" --out "$WORK/demo"
python -c "import json, sys; from ganspacesynth.evaluate.metrics import grid_neighbour_distance as g; \
r = g(sys.argv[1] + '/demo/grid'); json.dump(r, open(sys.argv[1] + '/grid_variation.json', 'w')); print('grid variation', r)" "$WORK"
if [[ "${INSTALL:-1}" == 1 ]]; then
  cp "$MODEL" "$REPO/ganspacesynth/assets/default_model.safetensors"
  cp "$WORK/components.npz" "$REPO/ganspacesynth/assets/default_components.npz"
  echo "bundled: $(ls "$REPO/ganspacesynth/assets")"
fi
echo "evaluation report: $WORK/report; direction descriptions: $WORK/describe"
