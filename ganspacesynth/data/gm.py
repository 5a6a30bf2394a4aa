"""General MIDI programs → NSynth family and source labels, for SoundFont-rendered sets.

NSynth has no pad or effects family: pads and effects are labelled `synth_lead`/synthetic, choir-like
pads `vocal`. `pitched=False` marks programs whose notes have no clear pitch (timpani, orchestra hit,
percussive and sound effects 112–127), worth leaving out of pitch-conditioned training
(docs/datasets.md gives a program range for that).
"""

from __future__ import annotations

from typing import NamedTuple


class GMProgram(NamedTuple):
    number: int
    name: str
    family: str
    source: str
    pitched: bool = True


_A, _E, _S = "acoustic", "electronic", "synthetic"

_TABLE = [
    # 0–7 piano
    ("Acoustic Grand Piano", "keyboard", _A), ("Bright Acoustic Piano", "keyboard", _A),
    ("Electric Grand Piano", "keyboard", _E), ("Honky-tonk Piano", "keyboard", _A),
    ("Electric Piano 1", "keyboard", _E), ("Electric Piano 2", "keyboard", _E),
    ("Harpsichord", "keyboard", _A), ("Clavinet", "keyboard", _E),
    # 8–15 chromatic percussion
    ("Celesta", "keyboard", _A), ("Glockenspiel", "mallet", _A), ("Music Box", "mallet", _A),
    ("Vibraphone", "mallet", _A), ("Marimba", "mallet", _A), ("Xylophone", "mallet", _A),
    ("Tubular Bells", "mallet", _A), ("Dulcimer", "mallet", _A),
    # 16–23 organ (accordions and harmonica are free reeds)
    ("Drawbar Organ", "organ", _E), ("Percussive Organ", "organ", _E), ("Rock Organ", "organ", _E),
    ("Church Organ", "organ", _A), ("Reed Organ", "organ", _A), ("Accordion", "reed", _A),
    ("Harmonica", "reed", _A), ("Tango Accordion", "reed", _A),
    # 24–31 guitar
    ("Acoustic Guitar (nylon)", "guitar", _A), ("Acoustic Guitar (steel)", "guitar", _A),
    ("Electric Guitar (jazz)", "guitar", _E), ("Electric Guitar (clean)", "guitar", _E),
    ("Electric Guitar (muted)", "guitar", _E), ("Overdriven Guitar", "guitar", _E),
    ("Distortion Guitar", "guitar", _E), ("Guitar Harmonics", "guitar", _E),
    # 32–39 bass
    ("Acoustic Bass", "bass", _A), ("Electric Bass (finger)", "bass", _E), ("Electric Bass (pick)", "bass", _E),
    ("Fretless Bass", "bass", _E), ("Slap Bass 1", "bass", _E), ("Slap Bass 2", "bass", _E),
    ("Synth Bass 1", "bass", _S), ("Synth Bass 2", "bass", _S),
    # 40–47 strings
    ("Violin", "string", _A), ("Viola", "string", _A), ("Cello", "string", _A), ("Contrabass", "string", _A),
    ("Tremolo Strings", "string", _A), ("Pizzicato Strings", "string", _A), ("Orchestral Harp", "string", _A),
    ("Timpani", "mallet", _A, False),
    # 48–55 ensemble
    ("String Ensemble 1", "string", _A), ("String Ensemble 2", "string", _A), ("Synth Strings 1", "string", _S),
    ("Synth Strings 2", "string", _S), ("Choir Aahs", "vocal", _A), ("Voice Oohs", "vocal", _A),
    ("Synth Voice", "vocal", _S), ("Orchestra Hit", "brass", _S, False),
    # 56–63 brass
    ("Trumpet", "brass", _A), ("Trombone", "brass", _A), ("Tuba", "brass", _A), ("Muted Trumpet", "brass", _A),
    ("French Horn", "brass", _A), ("Brass Section", "brass", _A), ("Synth Brass 1", "brass", _S),
    ("Synth Brass 2", "brass", _S),
    # 64–71 reed
    ("Soprano Sax", "reed", _A), ("Alto Sax", "reed", _A), ("Tenor Sax", "reed", _A), ("Baritone Sax", "reed", _A),
    ("Oboe", "reed", _A), ("English Horn", "reed", _A), ("Bassoon", "reed", _A), ("Clarinet", "reed", _A),
    # 72–79 pipe
    ("Piccolo", "flute", _A), ("Flute", "flute", _A), ("Recorder", "flute", _A), ("Pan Flute", "flute", _A),
    ("Blown Bottle", "flute", _A), ("Shakuhachi", "flute", _A), ("Whistle", "flute", _A), ("Ocarina", "flute", _A),
    # 80–87 synth lead
    ("Lead 1 (square)", "synth_lead", _S), ("Lead 2 (sawtooth)", "synth_lead", _S),
    ("Lead 3 (calliope)", "synth_lead", _S), ("Lead 4 (chiff)", "synth_lead", _S),
    ("Lead 5 (charang)", "synth_lead", _S), ("Lead 6 (voice)", "synth_lead", _S),
    ("Lead 7 (fifths)", "synth_lead", _S), ("Lead 8 (bass + lead)", "synth_lead", _S),
    # 88–95 synth pad
    ("Pad 1 (new age)", "synth_lead", _S), ("Pad 2 (warm)", "synth_lead", _S), ("Pad 3 (polysynth)", "synth_lead", _S),
    ("Pad 4 (choir)", "vocal", _S), ("Pad 5 (bowed)", "synth_lead", _S), ("Pad 6 (metallic)", "synth_lead", _S),
    ("Pad 7 (halo)", "synth_lead", _S), ("Pad 8 (sweep)", "synth_lead", _S),
    # 96–103 synth effects
    ("FX 1 (rain)", "synth_lead", _S), ("FX 2 (soundtrack)", "synth_lead", _S), ("FX 3 (crystal)", "synth_lead", _S),
    ("FX 4 (atmosphere)", "synth_lead", _S), ("FX 5 (brightness)", "synth_lead", _S),
    ("FX 6 (goblins)", "synth_lead", _S), ("FX 7 (echoes)", "synth_lead", _S), ("FX 8 (sci-fi)", "synth_lead", _S),
    # 104–111 ethnic
    ("Sitar", "string", _A), ("Banjo", "guitar", _A), ("Shamisen", "string", _A), ("Koto", "string", _A),
    ("Kalimba", "mallet", _A), ("Bagpipe", "reed", _A), ("Fiddle", "string", _A), ("Shanai", "reed", _A),
    # 112–119 percussive
    ("Tinkle Bell", "mallet", _A, False), ("Agogo", "mallet", _A, False), ("Steel Drums", "mallet", _A, False),
    ("Woodblock", "mallet", _A, False), ("Taiko Drum", "mallet", _A, False), ("Melodic Tom", "mallet", _A, False),
    ("Synth Drum", "mallet", _S, False), ("Reverse Cymbal", "mallet", _S, False),
    # 120–127 sound effects
    ("Guitar Fret Noise", "guitar", _A, False), ("Breath Noise", "flute", _A, False),
    ("Seashore", "synth_lead", _S, False), ("Bird Tweet", "synth_lead", _S, False),
    ("Telephone Ring", "synth_lead", _S, False), ("Helicopter", "synth_lead", _S, False),
    ("Applause", "synth_lead", _S, False), ("Gunshot", "synth_lead", _S, False),
]

GM_PROGRAMS: tuple[GMProgram, ...] = tuple(GMProgram(i, *row) for i, row in enumerate(_TABLE))
assert len(GM_PROGRAMS) == 128

#: Programs with a clear pitch (everything except timpani, orchestra hit and 112–127).
PITCHED_PROGRAMS: tuple[int, ...] = tuple(p.number for p in GM_PROGRAMS if p.pitched)
