#!/usr/bin/env bash
# The user guide's "your own sounds on a CPU" table: a generated piece (four GM instruments, 6 minutes each of
# legato melody, rendered by FluidSynth) chopped into 1.024 s clips every 0.512 s with --pitch auto, trained with
# the `cpu` preset for one hour and then a second, each judged by `evaluate` on 500 notes beside the held-out
# instrument's clips. Metrics go to WORK/eval_1h and WORK/eval_2h (metrics.json, report.md).
#   bash scripts/own_sounds_table.sh                  # WORK=/tmp/gss-piece by default
#   bash scripts/own_sounds_table.sh --second-hour    # only the second hour and its evaluation (a new sitting)
# Environment: WORK, CLASSIFIER (a `train-classifier` file with a pitch head; default: one trained here on the
# SoundFont set of make_cpu_default.sh), THREADS (train --threads, default 1: the other core stays usable).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${WORK:-/tmp/gss-piece}"
THREADS="${THREADS:-1}"
GSS=ganspacesynth
mkdir -p "$WORK"

CLASSIFIER="${CLASSIFIER:-$WORK/classifier.safetensors}"
if [[ ! -f "$CLASSIFIER" ]]; then
  [[ -f "$WORK/gm/manifest.json" ]] || $GSS dataset soundfont "$WORK/gm" --preset cpu --programs 0-111 --velocities 100
  $GSS train-classifier --data "$WORK/gm" --steps 1500 --out "$CLASSIFIER"
fi
if [[ ! -f "$WORK/data/manifest.json" ]]; then
  [[ -d "$WORK/recordings" ]] || python "$REPO/scripts/render_piece.py" "$WORK/recordings"
  [[ -d "$WORK/clips" ]] || $GSS dataset chop "$WORK/recordings" "$WORK/clips" --length 16384 --step 8192 --pitch auto
  $GSS dataset make "$WORK/clips" "$WORK/data" --preset cpu
fi
evaluate() {  # evaluate HOURS
  $GSS evaluate --model "$WORK/run" --data "$WORK/data" --classifier "$CLASSIFIER" --count 500 --overwrite \
    --out "$WORK/eval_${1}h"
}
if [[ "${1:-}" != "--second-hour" ]]; then
  $GSS train --data "$WORK/data" --out "$WORK/run" --preset cpu --set train_time_limit=3600 --threads "$THREADS" \
    --no-progress
  evaluate 1
fi
$GSS train --out "$WORK/run" --resume --set train_time_limit=7200 --threads "$THREADS" --no-progress
evaluate 2
