"""A stand-in for "your own recordings": a generated MIDI piece rendered by FluidSynth to long WAV files.

Each part is one General MIDI instrument playing a seeded random walk over a scale (legato phrases with
rests, 0.25-2 s notes, pitches 36-84), rendered separately so that chopping gives clips of one timbre with
changing pitch, overlaps and releases: the material `dataset chop` is for, unlike one-shot notes.

    python scripts/render_piece.py recordings/ [--minutes 6] [--programs 0,42,73,25] [--seed 0]
    ganspacesynth dataset chop recordings/ clips/ --length 16384 --step 8192 --pitch auto
    ganspacesynth dataset make clips/ data/piece --preset cpu
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pretty_midi

SOUNDFONTS = ["/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2",
              str(Path(pretty_midi.__file__).parent / "TimGM6mb.sf2")]
SCALE = np.array([0, 2, 4, 5, 7, 9, 11])  # major


def part(program: int, minutes: float, rng: np.random.Generator) -> pretty_midi.PrettyMIDI:
    """One instrument's random walk: phrases of 4-12 notes separated by rests."""
    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=program)
    degree, t, end = int(rng.integers(14, 28)), 0.5, minutes * 60.0
    while t < end:
        for _ in range(int(rng.integers(4, 13))):
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 1, 1, 2, 3, -3]), 0, 34))
            pitch = 36 + 12 * (degree // 7) + int(SCALE[degree % 7])
            length = float(rng.choice([0.25, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
            velocity = int(rng.integers(70, 111))
            inst.notes.append(pretty_midi.Note(velocity, min(pitch, 84), t, t + length * 0.95))
            t += length
        t += float(rng.uniform(0.5, 2.0))
    midi.instruments.append(inst)
    return midi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--minutes", type=float, default=6.0, help="length of each part")
    ap.add_argument("--programs", default="0,42,73,25", help="GM programs, one part each")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    soundfont = next((s for s in SOUNDFONTS if Path(s).is_file()), None)
    if soundfont is None or shutil.which("fluidsynth") is None:
        sys.exit("render_piece: needs the fluidsynth command and a General MIDI SoundFont")
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        for program in (int(p) for p in args.programs.split(",")):
            mid = Path(tmp) / f"part{program}.mid"
            part(program, args.minutes, rng).write(str(mid))
            wav = args.out / f"piece_program{program:03d}.wav"
            subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", "16000", "-F", str(wav), soundfont, str(mid)],
                           check=True, stdout=subprocess.DEVNULL)
            print(f"wrote {wav}")


if __name__ == "__main__":
    main()
