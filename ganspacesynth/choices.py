"""Names the command line and the live servers offer as choices, kept free of torch imports so `--help` stays fast.
Each list is checked against the registry it names (tests/test_train_cpu.py, tests/test_cli_core.py,
tests/test_live_requests.py)."""

#: Architecture + training presets (model/config.py PRESETS, training/config.py TRAIN_PRESETS).
PRESET_NAMES = ("mel_prog_hires", "fast", "cpu", "tiny")

#: Generator arithmetic by name (model/inference PRECISIONS maps them to torch dtypes).
PRECISIONS = ("float32", "bfloat16")
#: What `--precision` accepts: `auto` (runtime.resolve_precision) or one of PRECISIONS.
PRECISION_NAMES = ("auto", *PRECISIONS)

#: How a note is made. `z`: the latent alone. The GANSpace modes (ganspace/edits.py) use components and their
#: coefficients: `noz` rebuilds the layer activation from the coefficients alone, `offset` adds them to z's
#: activation at the components' layer, `latent` moves z itself (z + Σ cᵢ·z_compᵢ).
LATENT_MODE = "z"
GANSPACE_MODES = ("noz", "offset", "latent")
SYNTHESIS_MODES = (LATENT_MODE, *GANSPACE_MODES)
#: The modes that cannot do without components (`offset` without any is plain z).
COMPONENT_MODES = ("noz", "latent")
#: The GANSpace modes that edit a given z (`noz` needs none): what keeps each MIDI note's own timbre.
Z_EDIT_MODES = ("offset", "latent")

#: Instrument loops (`instrument --loop`, compose/instrument): sustain loops where a note has a good one, or none.
INSTRUMENT_LOOPS = ("auto", "none")

#: GANSpace estimators (ganspace/estimators.py get_estimator).
ESTIMATOR_NAMES = ("cov", "ipca", "pca", "randomized", "ica", "spca")

#: The live servers' default hallucination limits (`serve-osc`/`serve-web` --max-notes, --max-seconds).
MAX_HALLUCINATION_NOTES = 512
MAX_HALLUCINATION_SECONDS = 600.0


def check_synthesis_mode(mode, allowed: tuple[str, ...] = SYNTHESIS_MODES) -> str:
    """`mode` when it is one of `allowed`, else a one-line UserError naming them."""
    if not isinstance(mode, str) or mode not in allowed:
        from .errors import UserError

        raise UserError(f"unknown synthesis mode {str(mode)[:40]!r} (use {', '.join(allowed)})")
    return mode
