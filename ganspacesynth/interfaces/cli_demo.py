"""`ganspacesynth demo`: everything the toolkit does, on the bundled model, in under a minute."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from ..errors import UserError
from .options import device_option, model_option, seed_option

DEMO_DIR = Path("ganspacesynth-demo")
#: The demo's grid: directions 0 (x) and 1 (y) over this range, in standard deviations, GRID_STEPS × GRID_STEPS notes.
GRID_RANGE = (-2.0, 2.0)
GRID_STEPS = 5


def spread_pitches(pitches: list[int], count: int = 5) -> list[int]:
    """`count` pitches spread evenly over the model's range, C's where the range has enough of them."""
    cs = [p for p in pitches if p % 12 == 0]
    pool = cs if len(cs) >= count else pitches
    idx = np.linspace(0, len(pool) - 1, min(count, len(pool))).round().astype(int)
    return sorted({int(pool[i]) for i in idx})


def demo_envelope(note_seconds: float) -> dict:
    """An envelope that fits the model's note length (the original's 0.5/0.5/0.5 s for 4 s notes)."""
    scale = min(1.0, note_seconds / 2.0)
    return {"attack": 0.25 * scale, "sustain": 0.5 * scale, "release": 0.5 * scale, "spacing": 0.35 * scale}


def _change_text(change) -> str:
    """A described change, e.g. 'centroid_hz: rho +0.85, effect +1.4' (older files hold plain strings)."""
    if not isinstance(change, dict):
        return str(change)
    return f"{change.get('descriptor', '?')}: rho {change.get('rho', 0.0):+.2f}, effect {change.get('effect', 0.0):+.1f}"


def _unlabelled(description: dict) -> tuple[str, str]:
    """(label, detail) for a direction without a label: its strongest monotone change (|rho| >= 0.8) that stayed
    under the audibility threshold (effect < 1); else, when some change is audible but none monotone (a direction
    that moves between instruments changes several descriptors at once, each differently from note to note), the
    steadiest of those; else nothing."""
    stats = [(name, s) for name, s in (description.get("stats") or {}).items()
             if isinstance(s, dict) and name not in ("pitch_midi", "f0_std_cents")]
    monotone = [(name, s) for name, s in stats if abs(s.get("rho") or 0) >= 0.8]
    if monotone:
        name, s = max(monotone, key=lambda item: abs(item[1].get("effect") or 0))
        return "no clear change", f"under the audibility threshold: {_change_text({'descriptor': name, **s})}"
    audible = [(name, s) for name, s in stats if abs(s.get("effect") or 0) >= 1]
    if audible:
        name, s = max(audible, key=lambda item: abs(item[1].get("rho") or 0))
        return "several changes at once", f"none steady; the steadiest {_change_text({'descriptor': name, **s})}"
    return "no clear change", "no descriptor changes monotonically"


def direction_lines(components, top: int = 8) -> list[str]:
    """One line per direction: its measured label and what changes, or how to get descriptions."""
    lines = []
    descriptions = components.descriptions or []
    for i in range(min(top, components.n_components)):
        head = f"direction {i}: {100 * float(components.var_ratio[i]):.1f}% of the variance at {components.layer}"
        if i < len(descriptions) and descriptions[i]:
            d = descriptions[i]
            changes = ", ".join(_change_text(c) for c in d.get("changes", []))
            label, detail = (d["label"], changes or "no details stored") if d.get("label") else _unlabelled(d)
            lines.append(f"{head}: {label} ({detail})")
        else:
            lines.append(f"{head}: not described yet (run `ganspacesynth describe`)")
    return lines


def readme_text(model: str, seed: int, pitches: list[int], mid: int, notes: int, seconds: float, top: int) -> str:
    """README.txt of the demo folder: what to open first and what every file is."""
    import textwrap

    lo, hi = (f"{v:+g}" for v in GRID_RANGE)
    cells = GRID_STEPS * GRID_STEPS
    rows = [
        ("hallucination.wav", f"the piece above: {notes} notes at pitch {mid}, gliding between 3 random timbres"),
        ("hallucination.json", "its score: `ganspacesynth hallucinate --from hallucination.json --out again.wav` "
                               "plays it again"),
        ("notes/p<pitch>_000.wav", f"one note (a random timbre each) at each of the pitches "
                                   f"{', '.join(map(str, pitches))}: across the model's range"),
        ("grid/grid.png", f"the spectrograms of {cells} notes at pitch {mid}: direction 0 from {lo} to {hi} standard "
                          f"deviations, left to right, and direction 1 from {lo} (bottom) to {hi} (top). Each tile "
                          f"shows time in seconds across and frequency in Hz up"),
        ("grid/wave_<x>,<y>.wav", f"those {cells} notes, x the value of direction 0 and y that of direction 1"),
        ("grid/grid.json", "the grid's index: each WAV with its two values"),
        ("directions.txt", f"what each of the first {top} directions changes, as `ganspacesynth describe` measured it"),
        ("demo.json", "this list, for programs"),
        ("README.txt", "this file"),
        (".ganspacesynth-output.json", "marks the folder as the demo's: the next demo replaces it, and nothing else"),
    ]
    width = max(len(name) for name, _ in rows) + 4
    lines = [f"GANSpaceSynth demo: `ganspacesynth demo`, model {model}, seed {seed}.", "",
             f"Open first: hallucination.wav ({seconds:.1f} s). Then look at grid/grid.png while playing the grid's "
             f"WAVs, and read directions.txt.", "", "What each file is:"]
    for name, what in rows:
        lines += textwrap.wrap(what, 110, initial_indent=f"  {name:<{width - 2}}", subsequent_indent=" " * width,
                               break_on_hyphens=False, break_long_words=False)
    lines += ["", "Directions are numbered from 0, everywhere: `ganspacesynth grid --x 0 --y 1`, the first value of "
                  "`--coeffs`,",
              "OSC's `/coefficient 0`, the web page's `direction 0`, Pd's `direction_0` and directions.txt.", "",
              "Next: `ganspacesynth demo --serve` (or `ganspacesynth serve-web`) moves the directions live in a "
              "browser;",
              "docs/user-guide.md (in the repository) takes your own recordings to a model, its directions and "
              "pieces."]
    return "\n".join(lines) + "\n"


def run_demo(synth, components, out_dir: Path, seed: int = 0, log=click.echo) -> dict:
    """Write notes, a 5 × 5 direction grid, a hallucination, direction descriptions and README.txt (what each file
    is, what to open first) into `out_dir`."""
    from ..audio.io import write_wav
    from ..fileio import atomic_directory, write_json
    from ..ganspace.grid import render_grid
    from ..compose import hallucinate as H
    from .cli_core import write_notes

    note_seconds = synth.config.spectral.audio_length / synth.sample_rate
    pitches = spread_pitches(synth.pitches)
    mid = pitches[len(pitches) // 2]
    summary: dict = {}
    with atomic_directory(out_dir, overwrite=True, owner="demo") as tmp:
        t0 = time.perf_counter()
        z = synth.random_z(len(pitches), seed)
        # At the model's calibrated level (the training set's; raw for a model never calibrated).
        waves = synth.generate(z, pitch=pitches)
        write_notes(synth, waves, tmp / "notes", [f"p{p}_000.wav" for p in pitches])
        summary["notes"] = [f"notes/p{p}_000.wav" for p in pitches]
        log(f"notes across the range ({', '.join(map(str, pitches))}): {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        (tmp / "grid").mkdir()
        base_z = synth.random_z(1, seed + 1)
        render_grid(synth, components, tmp / "grid", x=0, y=1, lo=GRID_RANGE[0], hi=GRID_RANGE[1], steps=GRID_STEPS,
                    pitch=mid, mode="offset", z=base_z)
        log(f"{GRID_STEPS} x {GRID_STEPS} grid over directions 0 and 1 at pitch {mid}: "
            f"{time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        env = demo_envelope(note_seconds)
        params = H.HallucinationSettings.make(notes=3, steps=3, pitch=mid, seed=seed, **env)
        plan = H.plan_latent(synth, params)
        audio, score = H.render(synth, plan)
        write_wav(tmp / "hallucination.wav", audio, synth.sample_rate)
        H.save_score(tmp / "hallucination.json", score)
        log(f"hallucination ({plan.count} notes, {len(audio) / synth.sample_rate:.1f} s): {time.perf_counter() - t0:.1f} s")

        lines = direction_lines(components)
        (tmp / "directions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (tmp / "README.txt").write_text(readme_text(Path(str(synth.path)).name, seed, pitches, mid, plan.count,
                                                    len(audio) / synth.sample_rate, len(lines)), encoding="utf-8")
        summary.update({"grid": "grid/grid.png", "hallucination": "hallucination.wav",
                        "score": "hallucination.json", "directions": "directions.txt", "readme": "README.txt",
                        "open_first": "hallucination.wav", "model": str(synth.path), "seed": seed})
        write_json(tmp / "demo.json", summary)
    return summary


@click.command("demo")
@model_option
@click.option("--components", type=click.Path(path_type=Path), default=None,
              help="GANSpace components file (default: the bundled model's).")
@seed_option
@device_option
@click.option("--out", type=click.Path(path_type=Path), default=DEMO_DIR, show_default=True,
              help="Folder to write: new, empty, or one an earlier demo wrote (replaced as a whole).")
@click.option("--serve", is_flag=True, help="Then open the web explorer on the same model.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Web explorer port.")
def demo_cmd(model, components, seed, device, out, serve, port) -> None:
    """Hear what GANSpaceSynth does: notes, a grid over two GANSpace directions, a hallucination.

    With no options it uses the bundled model and writes into ./ganspacesynth-demo/:
    hallucination.wav (open it first) + hallucination.json (its score), notes/ (a few notes across the pitch
    range), grid/ (5 x 5 WAVs and grid.png over directions 0 and 1), directions.txt (what each direction
    does, numbered from 0) and README.txt (what each file is). Example: ganspacesynth demo   (or: ganspacesynth
    demo --serve)
    """
    from ..fileio import check_output_folder
    from ..ganspace.components import Components
    from .options import load_synth

    if components is None and model is not None:
        raise UserError("with --model, also give --components (the bundled components belong to the bundled model)")
    check_output_folder(out, owner="demo", overwrite=True)  # never a folder of the user's own files
    web_socket = None
    if serve:
        from .serving import open_socket

        web_socket = open_socket("127.0.0.1", port, "tcp")  # a busy port is refused before any work
    try:
        t0 = time.perf_counter()
        synth = load_synth(model, device or "cpu")
        comps = Components.load(components, synth)
        summary = run_demo(synth, comps, out, seed)
    except BaseException:
        if web_socket is not None:
            web_socket.close()
        raise
    click.echo(f"\nwrote {out}/ in {time.perf_counter() - t0:.1f} s (open {out}/{summary['open_first']} first; "
               f"{out}/README.txt says what each file is):")
    for key in ("hallucination", "score", "notes", "grid", "directions", "readme"):
        value = summary[key]
        shown = f"{len(value)} files in {out}/notes/" if isinstance(value, list) else f"{out}/{value}"
        click.echo(f"  {key:14s} {shown}")
    click.echo("")
    click.echo((out / "directions.txt").read_text(encoding="utf-8").rstrip())
    if serve:
        from .serving import ServeOptions, build_session, serve_until_stopped, stop_on_signals
        from .web.app import WebServer

        # the model and components loaded above, not loaded again
        options = ServeOptions(model=model, components=components, queue_size=8, keep=64, device=device, seed=seed)
        with stop_on_signals() as stop:
            session = build_session(options, synth=synth, components=comps)
            try:
                web = WebServer(session, sock=web_socket)
            except BaseException:
                session.close()
                raise
            click.echo(f"\nweb explorer on http://127.0.0.1:{web.port}/ (Ctrl-C stops)")
            web.start()
            serve_until_stopped(session, web, stop=stop, log=lambda line: click.echo(line, err=True))


def register(group: click.Group) -> None:
    group.add_command(demo_cmd)
