"""The instrument model: its notes (samples with their measures) and how a sampler plays them (zones, names, the
SoundFont it becomes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .analysis import Envelope, Loop

DEFAULT_RELEASE_S = 0.3
FILTER_OCTAVES_PER_LAYER = 1.0


@dataclass
class NoteSample:
    root: int
    key_range: tuple[int, int]
    layer: int
    data: np.ndarray  # float64, final gain applied
    onset: int  # samples cut from the generated note
    envelope: Envelope
    loop: Loop | None
    gain_db: float = 0.0
    release_s: float = DEFAULT_RELEASE_S


@dataclass
class Instrument:
    name: str
    sample_rate: int
    notes: list[NoteSample]  # layer-major: layer 0's roots, then layer 1's (or one set shared by every layer)
    velocity_ranges: list[tuple[int, int]]
    shared_layers: bool  # True: the layers share the samples and differ by a low-pass filter
    metadata: dict = field(default_factory=dict)
    loudness_spread_db: float = 0.0

    @property
    def looped(self) -> int:
        return sum(n.loop is not None for n in self.notes)

    def zones(self) -> list[tuple[int, int, tuple[int, int], dict]]:
        """(sample index, layer, velocity range, sampler settings) for every zone, top layer last."""
        out = []
        layers = len(self.velocity_ranges)
        for layer, vel in enumerate(self.velocity_ranges):
            for i, note in enumerate(self.notes):
                if not self.shared_layers and note.layer != layer:
                    continue
                settings = {"loop": note.loop is not None, "release_s": note.release_s}
                if self.shared_layers and layer < layers - 1:
                    settings["cutoff_hz"] = 20000.0 / 2 ** (FILTER_OCTAVES_PER_LAYER * (layers - 1 - layer))
                out.append((i, layer, vel, settings))
        return out

    def bank_name(self) -> str:
        """What a sampler shows as the bank: the name, the model's fingerprint and the timbre, e.g.
        'GANSpaceSynth pad: model ac31ba8d370f, seed 3, keys 24-84'."""
        meta = self.metadata
        parts = [f"GANSpaceSynth {self.name}"]
        fp = (meta.get("model") or {}).get("fingerprint")
        if fp:
            parts.append(f"model {fp[:12]}")
        timbre = meta.get("timbre") or {}
        if timbre.get("seed") is not None:
            parts.append(f"seed {timbre['seed']}")
        elif "z" in timbre:
            parts.append("z given")
        if timbre.get("coefficients"):
            parts.append(f"{timbre.get('mode')} {','.join(f'{c:g}' for c in timbre['coefficients'][:8])}")
        keys = (meta.get("keyboard") or {}).get("pitches")
        if keys:
            parts.append(f"keys {keys}")
        return ", ".join([": ".join(parts[:2])] + parts[2:])[:250]

    def sample_name(self, note: NoteSample) -> str:
        layer = f"v{note.layer + 1}" if not self.shared_layers and len(self.velocity_ranges) > 1 else ""
        return f"{self.name[:13]}-{note.root:03d}{layer}"

    # -- files
    def soundfont(self):
        from ...audio import sf2

        samples = [sf2.Sample(self.sample_name(n), n.data, self.sample_rate, n.root,
                              None if n.loop is None else (n.loop.start, n.loop.end)) for n in self.notes]
        zones = []
        for i, _layer, vel, st in self.zones():
            note = self.notes[i]
            gens = {"sampleModes": sf2.LOOP_CONTINUOUS if st["loop"] else sf2.NO_LOOP,
                    "overridingRootKey": note.root, "releaseVolEnv": sf2.timecents(st["release_s"])}
            if "cutoff_hz" in st:
                gens["initialFilterFc"] = sf2.hz_to_cents(st["cutoff_hz"])
            zones.append(sf2.Zone(i, note.key_range, vel, gens))
        meta = self.metadata
        return sf2.SoundFont(
            name=self.bank_name(), preset_name=self.name[:19], instrument_name=self.name[:19],
            samples=samples, zones=zones, comment=json.dumps(meta, separators=(",", ":")),
            engineer="GANSpaceSynth", creation_date=meta.get("created", ""),
            software=f"GANSpaceSynth {meta.get('ganspacesynth', '')}".strip())


def notes_table(notes: Sequence[NoteSample]) -> dict:
    """Per-note measures as columns (compact enough for the SoundFont's 64 KB comment)."""
    def r(v, nd):
        return None if v is None or not np.isfinite(v) else round(float(v), nd)

    return {
        "root": [n.root for n in notes], "layer": [n.layer for n in notes], "onset": [n.onset for n in notes],
        "attack_s": [r(n.envelope.attack_s, 3) for n in notes], "body_db": [r(n.envelope.body_db, 2) for n in notes],
        "gain_db": [r(n.gain_db, 2) for n in notes], "release_s": [r(n.release_s, 3) for n in notes],
        "release_measured": [n.envelope.release_s is not None for n in notes],
        "loop": [None if n.loop is None else [n.loop.start, n.loop.end] for n in notes],
        "loop_match_error": [None if n.loop is None else r(n.loop.match_error, 4) for n in notes],
        "loop_seam_step": [None if n.loop is None else r(n.loop.seam_step, 4) for n in notes],
    }
