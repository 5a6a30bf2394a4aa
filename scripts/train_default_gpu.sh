#!/usr/bin/env bash
# Train the default model on one GPU in about 10 minutes, in one command (docs/training.md):
#   1. render the SoundFont dataset (TimGM6mb: GM programs 0-111 x pitches 24-84, velocity 100: 6,832 notes);
#   2. train the `fast` preset on it, conditioned on pitch and instrument_family, for TRAIN_SECONDS of
#      training steps (a timed progressive schedule: every stage gets its share);
#   3. export the EMA generator in half precision and print a short table.
#
# Usage (from the repository root, on the GPU machine):
#   WHEELS=wheels OUT=$OUT bash scripts/train_default_gpu.sh
# Environment:
#   OUT            where the exported model and logs go (default: out)
#   WORK           scratch folder for the dataset and the run (default: /tmp/gss)
#   TRAIN_SECONDS  seconds of training steps (default: 480)
#   WHEELS         folder of carried cp312 wheels for what the GPU machine lacks (soundfile, tinysoundfont,
#                  pretty_midi); installed with --no-index --no-deps when given
#   EXTRA_SET      more --set overrides for `train`, e.g. "--set batch_size_schedule=128,128,128,64,64,32,32"
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-out}"
WORK="${WORK:-/tmp/gss}"
TRAIN_SECONDS="${TRAIN_SECONDS:-480}"
mkdir -p "$OUT" "$WORK"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
GSS="python -m ganspacesynth.interfaces.cli"

if [[ -n "${WHEELS:-}" ]]; then
  pip install --no-index --no-deps --quiet "$WHEELS"/*.whl
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
  $GSS dataset soundfont "$WORK/gm" --programs 0-111 --pitches 24-84 --velocities 100 --preset fast \
    --workers "$(nproc)"
fi
t1=$(date +%s)
echo "dataset: $((t1 - t0)) s"

# Quick speed probe (a few steps per stage) so the log says what the schedule could afford.
python "$REPO/benchmarks/train_speed.py" --device cuda --presets fast --steps 5 --warmup 2 \
  --out "$OUT/train_speed_fast.json" || echo "speed probe failed (continuing)"

rm -rf "$WORK/run"
# shellcheck disable=SC2086
$GSS train --data "$WORK/gm" --out "$WORK/run" --preset fast --conditions pitch,instrument_family \
  --set train_time_limit="$TRAIN_SECONDS" --no-progress ${EXTRA_SET:-} 2>&1 | tee "$OUT/train.log" | grep -v "^\s*$" | tail -n 40
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
