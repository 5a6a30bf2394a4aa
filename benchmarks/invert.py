"""How close `invert` gets to real notes a model never heard, and how fast (issue #29, item 3).

Notes: `--count` (program, pitch) pairs drawn with `--seed` from the pitched General MIDI programs and `--pitches`,
rendered by the project's SoundFont renderer (`dataset soundfont`'s: TimGM6mb by default, held 3/4 of the model's
note length) at `--velocity` (the bundled model was trained on velocity 100; in TinySoundFont velocity is mostly
gain, which the level-free distance ignores: choose another `--soundfont` for notes of other instruments), and/or
every audio file of `--folder` (one note each). Each goes through what `ganspacesynth invert` runs (pYIN pitch,
the instrument family searched, default settings unless given), on one thread.

Per note and as medians: the log-mel distance (dB, docs/evaluation.md's) of the reconstruction, of the best of
`--baseline` random latents at the same pitch and conditions, and of the recording's own Mel-IF round trip (the
floor); the ratio to the baseline; the same for the note `noz` plays from the note's refined coefficients
(`--components`, by default the bundled ones); pYIN of the reconstruction against the rendered pitch (evaluate.pitch's
pitch_check: exact, octave errors, unvoiced); whether pYIN found the right pitch in the recording and the search
the note's GM family; seconds per note (wall and CPU; the inversion alone, then with the comparisons).
Goals of the issue on the bundled model: median ratio <= 0.6, pitch kept in >= 0.95 of notes, <= 10 s a note on
one core.

    OMP_NUM_THREADS=1 python benchmarks/invert.py [--count 40] [--velocity 64] [--pitches 36-72] [--out FILE]
    OMP_NUM_THREADS=1 python benchmarks/invert.py --count 4 --out /tmp/invert.json     # a quick check
    OMP_NUM_THREADS=1 python benchmarks/invert.py --count 0 --folder my-notes/          # your own notes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from ganspacesynth import invert as inv  # noqa: E402
from ganspacesynth.audio.io import list_audio_files, read_audio  # noqa: E402
from ganspacesynth.data.gm import GM_PROGRAMS  # noqa: E402
from ganspacesynth.data.soundfont import Renderer, default_soundfont, parse_int_list  # noqa: E402
from ganspacesynth.errors import UserError  # noqa: E402
from ganspacesynth.evaluate.pitch import pitch_check  # noqa: E402
from ganspacesynth.runtime import cpu_model  # noqa: E402
from ganspacesynth.synth import Synth  # noqa: E402

GOALS = {"median_ratio_to_baseline": 0.6, "pitch_kept": 0.95, "seconds_per_note": 10.0}


def soundfont_notes(synth, soundfont: Path, count: int, velocity: int, pitches: list[int], seed: int) -> list[dict]:
    """`count` rendered notes: {"name", "audio", "pitch", "family", "program"} (pitched GM programs only)."""
    renderer = Renderer(soundfont, synth.sample_rate)
    programs = [p for p in range(128) if GM_PROGRAMS[p].pitched and renderer.has_program(p)]
    pitches = [p for p in pitches if p in synth.pitches]
    rng = np.random.default_rng(seed)
    pairs, seen = [], set()
    while len(pairs) < count and len(seen) < len(programs) * len(pitches):
        pair = (int(rng.choice(programs)), int(rng.choice(pitches)))
        if pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    length = synth.config.spectral.audio_length
    notes = []
    for program, pitch in pairs:
        audio = renderer.render(program, pitch, velocity, length, int(round(0.75 * length)))
        notes.append({"name": f"{soundfont.stem}-{program:03d}-{pitch:03d}-{velocity:03d}", "audio": audio,
                      "pitch": pitch, "family": GM_PROGRAMS[program].family, "program": program})
    return notes


def folder_notes(synth, folder: Path) -> list[dict]:
    files, broken = list_audio_files(folder)
    if broken:
        print(f"skipping {len(broken)} unreadable files in {folder}", file=sys.stderr)
    out = []
    for path in files:
        audio, _ = read_audio(path, synth.sample_rate)
        out.append({"name": str(path.relative_to(folder)), "audio": audio, "pitch": None, "family": None})
    return out


def summarise(done: list[dict]) -> dict:
    """Medians and fractions over inverted notes (rows of the report)."""
    def median(key):
        values = [r[key] for r in done if r.get(key) is not None]
        return round(float(np.median(values)), 3) if values else None

    rendered = [r for r in done if r["rendered_pitch"] is not None]
    check = pitch_check(np.array([-1 if r["reconstruction_midi"] is None else r["reconstruction_midi"]
                                  for r in rendered]), np.array([r["rendered_pitch"] for r in rendered])) \
        if rendered else None
    summary = {
        "notes": len(done),
        "median_distance_db": median("distance_db"), "median_baseline_db": median("baseline_db"),
        "median_floor_db": median("floor_db"), "median_ratio_to_baseline": median("ratio_to_baseline"),
        "fraction_ratio_le_0_6": round(float(np.mean([r["ratio_to_baseline"] <= 0.6 for r in done
                                                      if r["ratio_to_baseline"] is not None])), 3),
        "median_first_guess_db": median("first_guess_db"),
        # the note noz plays from the refined coefficients (with components): what the sliders start at
        "median_noz_distance_db": median("noz_distance_db"),
        "median_noz_ratio_to_baseline": median("noz_ratio_to_baseline"),
        "noz_pitch_kept_fraction": None if not any(r.get("noz_midi") is not None for r in done) else
        round(float(np.mean([r["noz_midi"] == r["pitch"] for r in done])), 3),
        "median_coefficient_seconds": median("coefficient_seconds"),
        "reconstruction_pitch": check,  # against the rendered pitch
        "pitch_kept_fraction": round(float(np.mean([bool(r["pitch_kept"]) for r in done])), 3),  # against pYIN's
        "pyin_found_rendered_pitch": None if not rendered else
        round(float(np.mean([r["pyin_found_pitch"] for r in rendered])), 3),
        "family_found": None if not rendered else round(float(np.mean([r["family_found"] for r in rendered])), 3),
        "result_from": {k: sum(r["result_from"] == k for r in done) for k in sorted({r["result_from"] for r in done})},
        "median_seconds": median("seconds"), "median_cpu_seconds": median("cpu_seconds"),
        "median_total_seconds": median("total_seconds"), "median_total_cpu_seconds": median("total_cpu_seconds"),
    }
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model file (default: the bundled model)")
    ap.add_argument("--count", type=int, default=40, help="notes per SoundFont")
    ap.add_argument("--soundfont", type=Path, action="append", default=None,
                    help="repeatable: each gives --count notes (the same program/pitch draws); default: TimGM6mb")
    ap.add_argument("--velocity", type=int, default=64)
    ap.add_argument("--pitches", default="36-72")
    ap.add_argument("--folder", type=Path, default=None, help="also invert every audio file here (one note each)")
    ap.add_argument("--seed", type=int, default=0, help="which notes are drawn")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--restarts", type=int, default=None)
    ap.add_argument("--baseline", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--components", default=None,
                    help="components file for each note's noz coefficients (default: the bundled ones with the "
                         "bundled model, none otherwise; 'none': skip)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--plot", type=Path, default=None,
                    help="a PNG of the first notes of each source: the recording above its reconstruction")
    ap.add_argument("--plot-notes", type=int, default=4, help="notes per source in --plot")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    synth = Synth.load(args.model, device="cpu")
    components = None
    if args.components != "none" and (args.components or args.model is None):
        from ganspacesynth.ganspace.components import Components
        components = Components.load(args.components, synth)
    defaults = inv.InvertSettings()
    settings = inv.InvertSettings(steps=args.steps or defaults.steps, restarts=args.restarts or defaults.restarts,
                                  baseline=args.baseline)
    soundfonts = args.soundfont or [default_soundfont()]
    pitches = parse_int_list(args.pitches, 0, 127, "pitch")
    notes = [note for sf in soundfonts if args.count
             for note in soundfont_notes(synth, sf, args.count, args.velocity, pitches, args.seed)]
    if args.folder is not None:
        notes += folder_notes(synth, args.folder)
    if not notes:
        raise SystemExit("no notes: give --count > 0 or --folder")
    print(f"CPU: {cpu_model()}, {torch.get_num_threads()} torch thread(s); {len(notes)} notes")
    distance = inv.SpectralDistance(synth.sample_rate)
    melif = inv.differentiable_melif(synth)
    rows, examples = [], {}
    for i, note in enumerate(notes):
        source = note["name"].split("-")[0] if note["pitch"] is not None else "folder"
        start, cpu = time.perf_counter(), time.process_time()
        try:  # one note from the file's start, as rendered
            targets, skipped = inv.prepare_notes(synth, note["audio"], synth.sample_rate, source=note["name"], start=0.0)
        except UserError as exc:  # e.g. a program silent at this pitch (a SoundFont's key-range gap)
            targets, skipped = [], [inv.Skipped(note["name"], 0.0, str(exc))]
        analyse_s, analyse_cpu = time.perf_counter() - start, time.process_time() - cpu
        if not targets:
            rows.append({"name": note["name"], "skipped": skipped[0].reason, "rendered_pitch": note["pitch"],
                         "source": source})
            print(f"{i + 1}/{len(notes)} {note['name']}: skipped ({skipped[0].reason})", flush=True)
            continue
        result = inv.invert_notes(synth, targets, settings=settings, components=components)
        done = result.notes[0]
        row = {"name": note["name"], "source": source, "rendered_pitch": note["pitch"], "gm_family": note["family"],
               "program": note.get("program"), **done.report(0),
               "pyin_found_pitch": None if note["pitch"] is None else done.pitch == note["pitch"],
               "family_found": None if note["family"] is None else
               done.conditions.get("instrument_family") == note["family"],
               "analyse_seconds": round(analyse_s, 2), "analyse_cpu_seconds": round(analyse_cpu, 2),
               "total_seconds": round(time.perf_counter() - start, 2),
               "total_cpu_seconds": round(time.process_time() - cpu, 2)}
        row["noz_kept_rendered_pitch"] = None if note["pitch"] is None or components is None else \
            row["noz_midi"] == note["pitch"]
        # the pitch to keep: the rendered one when known (`pitch_kept`: the one pYIN found in the recording)
        row["kept_rendered_pitch"] = None if note["pitch"] is None else row["reconstruction_midi"] == note["pitch"]
        rows.append(row)
        if len(examples.setdefault(source, [])) < args.plot_notes:
            caption = note["name"] if note["pitch"] is None else f"program {note['program']}, MIDI {note['pitch']}"
            examples[source].append((caption, targets[0].audio, done.reconstruction, row["distance_db"]))
        print(f"{i + 1}/{len(notes)} {note['name']} ({note['family']}): pitch {done.pitch} "
              f"{done.conditions.get('instrument_family', '')}: {done.distance_db:.2f} dB (random best "
              f"{done.baseline_db:.2f}, floor {done.floor_db:.2f}), pYIN {done.reconstruction_midi}, "
              f"{done.cpu_seconds:.1f} s CPU ({row['total_cpu_seconds']:.1f} with analysis and comparisons)",
              flush=True)
    done = [r for r in rows if "skipped" not in r]
    if not done:
        raise SystemExit("every note was skipped")

    summary = {**summarise(done), "skipped": len(rows) - len(done)}
    sources = sorted({r["source"] for r in done})
    if len(sources) > 1:
        summary["by_source"] = {src: summarise([r for r in done if r["source"] == src]) for src in sources}
    print(f"median log-mel distance {summary['median_distance_db']} dB, random best {summary['median_baseline_db']}, "
          f"floor {summary['median_floor_db']}; ratio {summary['median_ratio_to_baseline']} (goal <= 0.6); "
          f"pitch kept {(summary['reconstruction_pitch'] or {}).get('f0_accuracy')} of rendered pitches, "
          f"{summary['pitch_kept_fraction']} of the pitches pYIN found (goal >= 0.95); noz from the refined "
          f"coefficients: {summary['median_noz_distance_db']} dB, ratio {summary['median_noz_ratio_to_baseline']}, "
          f"pitch kept {summary['noz_pitch_kept_fraction']}; "
          f"{summary['median_cpu_seconds']} s CPU a note for the inversion, {summary['median_total_cpu_seconds']} "
          f"with the analysis and comparisons (goal <= 10)")
    write_result("invert", {
        "cpu_model": cpu_model(), "model": str(synth.path), "fingerprint": synth.fingerprint,
        "source": {"soundfonts": [str(sf) for sf in soundfonts] if args.count else None, "velocity": args.velocity,
                   "pitches": args.pitches, "count": args.count, "seed": args.seed,
                   "folder": None if args.folder is None else str(args.folder)},
        "settings": settings.to_dict(),
        "note": "distances: docs/evaluation.md's log-mel distance (dB); seconds: wall clock, cpu_seconds: this "
                "process's CPU time (the fairer measure on a shared machine); 'seconds' is the inversion alone, "
                "'total' adds the pitch analysis and the comparisons (baseline, floor, pYIN of the result)",
        "goals": GOALS, "summary": summary, "notes": rows,
    }, args.out)
    if args.plot is not None:
        plot_examples(synth, args.plot, examples)


def plot_examples(synth, path: Path, examples: dict) -> None:
    """Each source's first notes: the recording (upper row) and its reconstruction (lower), log magnitude."""
    from ganspacesynth.evaluate.plots import example_spectrograms

    rows = []
    for source, items in examples.items():
        waves = np.stack([np.stack([a, r]) for _, a, r, _ in items]).astype(np.float32)  # [n, 2, samples]
        specs = synth.spectral.waves_to_specgrams(torch.from_numpy(waves.reshape(-1, waves.shape[-1]))).numpy()
        specs = specs.reshape(len(items), 2, *specs.shape[1:])
        rows.append((f"{source}: recording", specs[:, 0], [caption for caption, *_ in items]))
        rows.append(("reconstruction", specs[:, 1], [f"{d:.1f} dB" for *_, d in items]))
    example_spectrograms(path, rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    from _common import run

    run(main)
