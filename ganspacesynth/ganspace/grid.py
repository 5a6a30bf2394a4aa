"""A 2-D grid of sounds along two components: WAVs plus one PNG of their spectrograms (as the original
GANSpaceSynth README's 5×5 figure): columns step along component x, rows along component y."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .components import Components
from .edits import synthesize_specgrams


def grid_coefficients(components: Components, x: int, y: int, lo: float, hi: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(values [steps], coefficient rows [steps², K]); row r·steps + c has y = values[r], x = values[c]."""
    for idx, name in ((x, "--x"), (y, "--y")):
        if not 0 <= idx < components.n_components:
            raise UserError(f"{name} must be a component index between 0 and {components.n_components - 1}")
    if x == y:
        raise UserError("--x and --y must be different components")
    if steps < 2 or steps > 33:
        raise UserError("--steps must be between 2 and 33")
    values = np.linspace(lo, hi, steps)
    coeffs = np.zeros((steps * steps, components.n_components))
    for r, vy in enumerate(values):
        for c, vx in enumerate(values):
            coeffs[r * steps + c, x] = vx
            coeffs[r * steps + c, y] = vy
    return values, coeffs


def wav_name(vx: float, vy: float) -> str:
    """The original's naming: wave_<x>,<y>.wav."""
    return f"wave_{round(float(vx), 4)},{round(float(vy), 4)}.wav"


def plot_grid(specs: np.ndarray, values: np.ndarray, x: int, y: int, path: Path, title: str = "") -> None:
    """specs: log-magnitude images `[steps², T, F]` in grid order; writes a PNG with labelled axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = len(values)
    fig, axes = plt.subplots(steps, steps, figsize=(2.0 * steps + 1, 1.6 * steps + 1), squeeze=False,
                             sharex=True, sharey=True)
    vmin, vmax = float(np.min(specs)), float(np.max(specs))
    for r in range(steps):
        for c in range(steps):
            ax = axes[r, c]
            ax.imshow(specs[r * steps + c].T, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == steps - 1:
                ax.set_xlabel(f"{values[c]:g}")
            if c == 0:
                ax.set_ylabel(f"{values[r]:g}")
    fig.supxlabel(f"component {x} (standard deviations)")
    fig.supylabel(f"component {y} (standard deviations)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    from ..fileio import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def render_grid(synth, components: Components, out_dir: Path, *, x: int = 0, y: int = 1, lo: float = -1.0,
                hi: float = 1.0, steps: int = 5, pitch=None, mode: str = "noz", z=None, conditions=None,
                batch_size: int = 8) -> dict:
    """Synthesise the grid into `out_dir` (which must exist): WAVs, grid.png and grid.json. Returns the index."""
    from ..audio.io import write_wav
    from ..fileio import write_json

    values, coeffs = grid_coefficients(components, x, y, lo, hi, steps)
    specs = synthesize_specgrams(synth, components, coeffs, pitch, mode, z, conditions, batch_size=batch_size)
    from ..synth import check_waves

    from ..audio.levels import peak_safe

    waves = peak_safe(check_waves(synth.specgrams_to_waves(specs)))  # untrained models can exceed ±1
    files = []
    for r, vy in enumerate(values):
        for c, vx in enumerate(values):
            name = wav_name(vx, vy)
            write_wav(out_dir / name, waves[r * steps + c], synth.sample_rate)
            files.append({"file": name, "x": float(vx), "y": float(vy)})
    title = f"{components.layer}, mode {mode}" + (f", pitch {pitch}" if pitch is not None else "")
    plot_grid(specs[:, 0].cpu().numpy(), values, x, y, out_dir / "grid.png", title)
    index = {"x_component": x, "y_component": y, "values": [float(v) for v in values], "mode": mode,
             "pitch": pitch, "layer": components.layer, "files": files}
    write_json(out_dir / "grid.json", index)
    return index
