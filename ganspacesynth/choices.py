"""Names the command line offers as choices, kept free of torch imports so `--help` stays fast.
Each list is checked against the registry it names by tests/test_train_cpu.py."""

#: Architecture + training presets (model/config.py PRESETS, training/config.py TRAIN_PRESETS).
PRESET_NAMES = ("mel_prog_hires", "fast", "cpu", "tiny")
