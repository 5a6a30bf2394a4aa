#!/usr/bin/env bash
# Train the default model on one GPU in about 10 minutes, in one command (docs/training.md):
#   1. render the SoundFont dataset (TimGM6mb: GM programs 0-111 x pitches 24-84, velocity 100: 6,832 notes);
#   2. train the `fast` preset on it, conditioned on pitch and instrument_family, for what is left of
#      BUDGET_SECONDS (a timed progressive schedule: every stage gets its share);
#   3. export the EMA generator in half precision and print a short table.
# Then, back on the CPU machine: `bash scripts/bundle_default.sh OUT/model_fp16.safetensors` (components,
# descriptions, classifier, evaluation report, copy into ganspacesynth/assets/).
#
# Usage (from the repository root, on the GPU machine; .whl/ from scripts/fetch_gpu_wheels.sh, carried):
#   WHEELS=.whl OUT=$OUT bash scripts/train_default_gpu.sh
# Environment:
#   OUT             where the exported model and logs go (default: out)
#   WORK            scratch folder for the dataset and the run (default: /tmp/gss)
#   BUDGET_SECONDS  wall-clock budget of this whole script (default: 540, under the device's 10-minute limit);
#                   training gets what rendering left, less 75 s for start-up, the last checkpoint and export
#   TRAIN_SECONDS   cap on the seconds of training steps (default: 480)
#   SPEED_PROBE     1: time a few steps per stage first (costs about a minute)
#   WHEELS          folder of carried cp312 wheels for what the GPU machine lacks (soundfile, tinysoundfont,
#                   pretty_midi, …), installed into /tmp/site, which goes first on PYTHONPATH
#   PRESET, PROGRAMS  default fast and 0-111; a CPU smoke test of this script:
#                   PRESET=tiny PROGRAMS=0-1 BUDGET_SECONDS=200 TRAIN_SECONDS=30 bash scripts/train_default_gpu.sh
#   EXTRA_SET       more --set overrides for `train`, e.g. "--set batch_size_schedule=128,128,128,64,64,32,32"
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-out}"
WORK="${WORK:-/tmp/gss}"
TRAIN_SECONDS="${TRAIN_SECONDS:-480}"
BUDGET_SECONDS="${BUDGET_SECONDS:-540}"
PRESET="${PRESET:-fast}"
PROGRAMS="${PROGRAMS:-0-111}"
START=$(date +%s)
mkdir -p "$OUT" "$WORK"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
GSS="python -m ganspacesynth.interfaces.cli"

if [[ -n "${WHEELS:-}" ]]; then
  # Into a folder of its own (the machine's site-packages may not be writable), as the device README does.
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
python - <<'EOF'
import importlib, sys
missing = [m for m in ("soundfile", "tinysoundfont", "pretty_midi") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing on this machine: {', '.join(missing)} (carry cp312 wheels and pass WHEELS=folder)")
import torch
print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}: "
      f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}")
EOF

t0=$(date +%s)
if [[ ! -f "$WORK/gm/manifest.json" ]]; then
  $GSS dataset soundfont "$WORK/gm" --programs "$PROGRAMS" --pitches 24-84 --velocities 100 --preset "$PRESET" \
    --workers "$(nproc)"
fi
t1=$(date +%s)
echo "dataset: $((t1 - t0)) s"

if [[ "${SPEED_PROBE:-0}" == 1 ]]; then  # a few steps per stage, so the log says what the schedule could afford
  python "$REPO/benchmarks/train_speed.py" --device cuda --presets "$PRESET" --steps 5 --warmup 2 \
    --out "$OUT/train_speed_fast.json" || echo "speed probe failed (continuing)"
fi

LEFT=$(( BUDGET_SECONDS - ($(date +%s) - START) - 75 ))
(( LEFT < TRAIN_SECONDS )) && TRAIN_SECONDS=$LEFT
(( TRAIN_SECONDS < 10 )) && { echo "only $TRAIN_SECONDS s left for training: raise BUDGET_SECONDS"; exit 1; }
echo "training for $TRAIN_SECONDS s of steps"
rm -rf "$WORK/run"
# SIGTERM at the deadline (if start-up ran long) makes `train` write a last checkpoint and export, then stop.
# shellcheck disable=SC2086
timeout -s TERM -k 30 $(( TRAIN_SECONDS + 60 )) \
  $GSS train --data "$WORK/gm" --out "$WORK/run" --preset "$PRESET" --conditions pitch,instrument_family \
  --set train_time_limit="$TRAIN_SECONDS" --no-progress ${EXTRA_SET:-} 2>&1 | tee "$OUT/train.log" | grep -v "^\s*$" | tail -n 40 || true
t2=$(date +%s)
echo "training: $((t2 - t1)) s"

python - "$WORK/run" "$OUT" <<'EOF'
import json, sys
from pathlib import Path
from ganspacesynth.model.files import load_model, save_model
run, out = Path(sys.argv[1]), Path(sys.argv[2])
mf = load_model(run)
save_model(out / "model_fp16.safetensors", mf.config, mf.generator_state, info={**mf.info, "half": True}, half=True)
(out / "config.json").write_text((run / "config.json").read_text())
stats = [json.loads(l) for l in (run / "stats.jsonl").read_text().splitlines() if l.strip()]
(out / "stats_tail.jsonl").write_text("".join(json.dumps(s) + "\n" for s in stats[-200:]))
last = stats[-1]
print("| what | value |\n| --- | --- |")
for key in ("images", "step", "time", "stage", "num_blocks", "batch_size", "images_per_s", "loss/d", "loss/g",
            "accuracy/real_pitch", "accuracy/fake_pitch", "accuracy/real_instrument_family",
            "accuracy/fake_instrument_family"):
    value = last.get(key)
    print(f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |")
print(f"| model | {out / 'model_fp16.safetensors'} ({(out / 'model_fp16.safetensors').stat().st_size / 2**20:.1f} MiB) |")
EOF
