"""A 2-D grid of sounds along two components: WAVs plus one PNG of their spectrograms (as the original
GANSpaceSynth README's 5×5 figure): columns step along component x (+ to the right), rows along component y (+ up),
each tile marked in seconds and Hz."""

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


#: Frequencies a tile's axis may mark, from the bottom: each where the spectrogram has it, and at least
#: TICK_SPACING of the axis above the one marked before (GANSynth's mel bins are nearly linear above 1 kHz).
FREQUENCY_TICKS_HZ = (100, 200, 500, 1000, 2000, 3000, 4000, 6000)
TICK_SPACING = 0.14


def frequency_ticks(centres: np.ndarray) -> list[tuple[float, float]]:
    """(bin position, Hz) of the marks for bins centred at `centres` (Hz, ascending)."""
    bins = len(centres)
    out: list[tuple[float, float]] = []
    for hz in FREQUENCY_TICKS_HZ:
        if centres[1] < hz < centres[-1]:
            position = float(np.interp(hz, centres, np.arange(bins)))
            if not out or position - out[-1][0] >= TICK_SPACING * bins:
                out.append((position, hz))
    return out


def seconds_ticks(seconds: float) -> list[float]:
    """Marks from 0 to a note's end (at most 5 intervals: 0, 1, 2, 3, 4 s for 4 s notes; quarters of 1 s)."""
    step = next((s for s in (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0) if seconds / s <= 5), 10.0)
    return [round(i * step, 6) for i in range(int(seconds / step + 1e-9) + 1)]


def _hz_label(hz: float) -> str:
    return f"{hz / 1000:g} kHz" if hz >= 1000 else f"{hz:g} Hz"


def _value_label(value: float) -> str:
    return f"{value:+g}" if value else "0"


def grid_figure(specs: np.ndarray, values: np.ndarray, x: int, y: int, title: str = "", spectral=None):
    """The grid's matplotlib figure: rows show component y with its highest value at the top (+ up, as on a plot's
    y axis), columns component x with its highest value on the right (whichever way `--range` ran). specs:
    log-magnitude images `[steps², T, F]` in grid order (row i·steps + j: y = values[i], x = values[j], as
    `grid_coefficients`). With `spectral` (the model's SpectralConfig) each tile has time marks in seconds and
    frequency marks in Hz/kHz."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    steps = len(values)
    fig, axes = plt.subplots(steps, steps, figsize=(2.0 * steps + 1.6, 1.6 * steps + 1.3), squeeze=False,
                             sharex=True, sharey=True)
    vmin, vmax = float(np.min(specs)), float(np.max(specs))
    bins = specs.shape[2]
    columns = [int(i) for i in np.argsort(values, kind="stable")]  # value indices, left to right
    extent = None
    if spectral is not None:
        seconds = spectral.frame_seconds()
        half = spectral.hop_length / spectral.sample_rate / 2
        extent = (float(seconds[0] - half), float(seconds[-1] + half), -0.5, bins - 0.5)
        ticks = frequency_ticks(spectral.bin_hertz())
    for r, row in enumerate(columns[::-1]):  # the top row is the highest y
        for c, column in enumerate(columns):
            ax = axes[r, c]
            ax.imshow(specs[row * steps + column].T, origin="lower", aspect="auto", cmap="magma", vmin=vmin,
                      vmax=vmax, extent=extent)
            ax.tick_params(labelsize=7, length=2, pad=1)
            if c == 0:
                ax.set_ylabel(_value_label(values[row]), fontsize=10)
            if r == steps - 1:
                ax.set_xlabel(_value_label(values[column]), fontsize=10)
    first = axes[0, 0]
    if spectral is not None:
        first.set_yticks([position for position, _ in ticks])
        first.set_yticklabels([_hz_label(hz) for _, hz in ticks])
        first.set_xticks(seconds_ticks(spectral.audio_length / spectral.sample_rate))
        first.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} s"))
        first.set_xlim(extent[0], extent[1])
        where = "each tile: time in seconds across, frequency in Hz up"
    else:
        first.set_xticks([])
        first.set_yticks([])
        where = "each tile: time across, frequency up"
    fig.supxlabel(f"component {x} (standard deviations, + to the right); {where}", fontsize=9)
    fig.supylabel(f"component {y} (standard deviations, + up)", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_grid(specs: np.ndarray, values: np.ndarray, x: int, y: int, path: Path, title: str = "",
              spectral=None) -> None:
    """Write `grid_figure` as a PNG (atomically)."""
    import matplotlib.pyplot as plt

    from ..fileio import atomic_path

    fig = grid_figure(specs, values, x, y, title, spectral)
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
    plot_grid(specs[:, 0].cpu().numpy(), values, x, y, out_dir / "grid.png", title, synth.config.spectral)
    index = {"x_component": x, "y_component": y, "values": [float(v) for v in values], "mode": mode,
             "pitch": pitch, "layer": components.layer, "files": files}
    write_json(out_dir / "grid.json", index)
    return index
