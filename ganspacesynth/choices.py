"""Names the command line offers as choices, kept free of torch imports so `--help` stays fast.
Each list is checked against the registry it names (tests/test_train_cpu.py, tests/test_cli_core.py)."""

#: Architecture + training presets (model/config.py PRESETS, training/config.py TRAIN_PRESETS).
PRESET_NAMES = ("mel_prog_hires", "fast", "cpu", "tiny")

#: Generator arithmetic: `auto` (runtime.auto_precision) or a name of synth.PRECISIONS.
PRECISION_NAMES = ("auto", "float32", "bfloat16")

#: GANSpace estimators (ganspace/estimators.py get_estimator).
ESTIMATOR_NAMES = ("cov", "ipca", "pca", "randomized", "ica", "spca")

#: The live servers' default hallucination limits (`serve-osc`/`serve-web` --max-notes, --max-seconds).
MAX_HALLUCINATION_NOTES = 512
MAX_HALLUCINATION_SECONDS = 600.0
