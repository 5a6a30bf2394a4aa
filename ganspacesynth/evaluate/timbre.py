"""Timbre measures of generated notes beside real ones: how varied, how much a condition changes the sound,
how bright after the attack, whether notes start with a click, how loud, and pitch accuracy per octave band.

Two kinds of measure:

- **per note**, on notes the evaluation already has (`note_measures(waves, sr)` → one scalar per note, kept
  instead of the waves; `summarise_notes` turns them into medians and counts, with pYIN accuracy per band);
- **per model**, which generate notes of their own (`measure_timbre(synth, train_ds, valid_ds, …)`):
  timbre diversity (`diversity`) and the effect of each categorical condition other than pitch
  (`condition_effect`), both divided by the same measure on real notes.

Distances between notes are RMS differences of log-mel spectrograms in dB (`log_mel_db`: 80 mels, n_fft 1024,
hop 256, fmin 20 Hz, each note's power in dB relative to its own maximum, floored at −80 dB), so two notes
differing only in level are at distance 0. docs/evaluation.md defines every number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

#: MIDI bands for pYIN accuracy (inclusive): GANSynth's 24..84 in octaves from C1.
BANDS: tuple[tuple[int, int], ...] = ((24, 35), (36, 47), (48, 59), (60, 71), (72, 84))
MEL = {"n_mels": 80, "n_fft": 1024, "hop_length": 256, "fmin": 20.0}
TOP_DB = 80.0
UPPER_HZ = 5000.0  # the upper band starts here
ATTACK_S = 0.1  # the attack: the first 0.1 s; the upper-band share is measured after it
CLICK_SAMPLES = 4  # the start of a note, for the click measures
SPIKE_CONTEXT = 64  # samples CLICK_SAMPLES..SPIKE_CONTEXT are what a start spike stands out from
SPIKE_FACTOR = 4.0
CLICK_THRESHOLD = 0.1  # a start click above this fraction of the peak is counted
QUIET_DBFS = -50.0  # notes quieter than this (whole-note RMS) are counted
SILENT = 1e-10  # RMS floor: a silent note reads −200 dBFS


@dataclass(frozen=True)
class TimbreSettings:
    """What `measure_timbre` generates: `count` notes at each of `pitches` (clamped to the model's range) for the
    diversity, against `count` real notes of different instruments; `latents` latents × every class of each
    categorical condition other than pitch, at each pitch, for the condition effect."""

    pitches: tuple[int, ...] = (48, 60)
    count: int = 30
    latents: int = 8

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# -- distances -------------------------------------------------------------------------------------------------------
def log_mel_db(waves: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log-mel spectrograms `[B, 80, frames]` in dB: librosa's mel power spectrogram (80 mels, n_fft 1024, hop 256,
    fmin 20 Hz), then `librosa.power_to_db(S, ref=np.max, top_db=80)` per note."""
    import librosa

    waves = np.asarray(waves, dtype=np.float32)
    if waves.ndim == 1:
        waves = waves[None]
    mel = librosa.feature.melspectrogram(y=waves, sr=sample_rate, power=2.0, **MEL)
    return np.stack([librosa.power_to_db(m, ref=np.max, top_db=TOP_DB) for m in mel]).astype(np.float32)


def mean_pairwise_distance(mels: np.ndarray) -> float:
    """Mean over all pairs of notes of the RMS difference (dB) of their log-mel spectrograms (`log_mel_db`);
    NaN for fewer than two notes."""
    x = np.asarray(mels, dtype=np.float64).reshape(len(mels), -1)
    if len(x) < 2:
        return float("nan")
    dists = [np.sqrt(np.mean((x[i + 1:] - x[i]) ** 2, axis=1)) for i in range(len(x) - 1)]
    return float(np.mean(np.concatenate(dists)))


# -- per-note measures -----------------------------------------------------------------------------------------------
def level_dbfs(waves: np.ndarray) -> np.ndarray:
    """Whole-note RMS in dBFS `[B]` (every sample counts, silence included; a silent note reads −200)."""
    x = np.atleast_2d(np.asarray(waves, dtype=np.float64))
    return 20.0 * np.log10(np.maximum(np.sqrt(np.mean(x * x, axis=1)), SILENT))


def start_click(waves: np.ndarray) -> np.ndarray:
    """max(|x[0:4]|) / max(|x|) per note `[B]`: 0 for a note that fades in, 1 for one that starts at its peak
    (NaN for a silent note)."""
    a = np.abs(np.atleast_2d(np.asarray(waves, dtype=np.float64)))
    peak = a.max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(peak > 0, a[:, :CLICK_SAMPLES].max(axis=1) / np.where(peak > 0, peak, 1.0), np.nan)


def start_spike(waves: np.ndarray) -> np.ndarray:
    """Whether a note starts with an isolated spike `[B]` (bool): some sample among the first 4 has |value| above
    0.1 × the note's peak |value| and above 4 × the largest |value| of samples 4..63."""
    a = np.abs(np.atleast_2d(np.asarray(waves, dtype=np.float64)))
    peak = a.max(axis=1, keepdims=True)
    head = a[:, :CLICK_SAMPLES]
    context = a[:, CLICK_SAMPLES:SPIKE_CONTEXT].max(axis=1, keepdims=True) if a.shape[1] > CLICK_SAMPLES \
        else np.zeros_like(peak)
    return np.any((head > CLICK_THRESHOLD * peak) & (head > SPIKE_FACTOR * context) & (peak > 0), axis=1)


def _band_powers(x: np.ndarray, sample_rate: int, upper_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(power above `upper_hz`, total power) `[B]` of Hann-windowed frames (~32 ms, hop a quarter) of `x` `[B, N]`."""
    n_fft = 1 << int(round(np.log2(0.032 * sample_rate)))
    if x.shape[1] < n_fft:
        x = np.pad(x, ((0, 0), (0, n_fft - x.shape[1])))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=1)[:, :: n_fft // 4]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1)) ** 2
    power = power.sum(axis=1)  # [B, bins]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    return power[:, freqs >= upper_hz].sum(axis=1), power.sum(axis=1)


def upper_band_share_db(waves: np.ndarray, sample_rate: int, start_s: float = ATTACK_S, stop_s: float | None = None,
                        upper_hz: float = UPPER_HZ) -> np.ndarray:
    """Energy above `upper_hz` over the total energy, in dB, of each note's audio from `start_s` to `stop_s` (end
    of the note when None) `[B]`; NaN where that part is silent or the band is above Nyquist."""
    x = np.atleast_2d(np.asarray(waves, dtype=np.float64))
    start = int(round(start_s * sample_rate))
    stop = x.shape[1] if stop_s is None else int(round(stop_s * sample_rate))
    if upper_hz >= sample_rate / 2 or stop <= start:
        return np.full(len(x), np.nan)
    upper, total = _band_powers(x[:, start:stop], sample_rate, upper_hz)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, upper / np.where(total > 0, total, 1.0), np.nan)
        return 10.0 * np.log10(np.maximum(share, 1e-30))


def note_measures(waves: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """One scalar per note `[B]` of each per-note measure: `upper_band_db` (share above 5 kHz after the first 0.1 s,
    dB), `upper_band_change_db` (that minus the same share over the first 0.1 s), `click`, `spike`, `level_dbfs`."""
    waves = np.atleast_2d(np.asarray(waves, dtype=np.float32))
    after = upper_band_share_db(waves, sample_rate, ATTACK_S)
    attack = upper_band_share_db(waves, sample_rate, 0.0, ATTACK_S)
    return {"upper_band_db": after, "upper_band_change_db": after - attack, "click": start_click(waves),
            "spike": start_spike(waves), "level_dbfs": level_dbfs(waves)}


def band_accuracy(tracked_midi: np.ndarray, requested_midi: np.ndarray,
                  bands: Sequence[tuple[int, int]] = BANDS) -> dict[str, dict]:
    """Exact-pitch accuracy of a tracker per band of requested pitch: `{"24-35": {"accuracy", "count"}, …}`
    (accuracy None for a band without notes; −1 in `tracked_midi` means unvoiced: never right)."""
    tracked, req = np.asarray(tracked_midi), np.asarray(requested_midi)
    out = {}
    for lo, hi in bands:
        inside = (req >= lo) & (req <= hi)
        out[f"{lo}-{hi}"] = {"accuracy": float(np.mean(tracked[inside] == req[inside])) if inside.any() else None,
                             "count": int(inside.sum())}
    return out


def _nanmedian(x: np.ndarray) -> float | None:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if len(x) else None


def summarise_notes(measures: dict[str, np.ndarray], f0_midi: np.ndarray | None = None,
                    midi: np.ndarray | None = None) -> dict:
    """Medians and counts of `note_measures` over a set of notes, plus pYIN accuracy per band when the tracked
    (`f0_midi`) and requested (`midi`) pitches are given."""
    out = {
        "count": int(len(measures["level_dbfs"])),
        "upper_band_db": _nanmedian(measures["upper_band_db"]),
        "upper_band_change_db": _nanmedian(measures["upper_band_change_db"]),
        "click_median": _nanmedian(measures["click"]),
        "click_over_threshold": int(np.sum(np.nan_to_num(measures["click"]) > CLICK_THRESHOLD)),
        "start_spikes": int(np.sum(measures["spike"])),
        "level_dbfs": _nanmedian(measures["level_dbfs"]),
        "quiet_notes": int(np.sum(measures["level_dbfs"] < QUIET_DBFS)),
    }
    if f0_midi is not None and midi is not None:
        out["f0_band_accuracy"] = band_accuracy(f0_midi, midi)
    return out


# -- notes of the dataset ----------------------------------------------------------------------------------------------
def _label_values(ds, rows: np.ndarray, name: str) -> list:
    """Label values (class names; lists of names for multilabel conditions) of dataset rows."""
    classes = ds.vocab[name]
    arr = ds.labels[name][rows]
    if arr.ndim == 2:
        return [[classes[j] for j in np.flatnonzero(r)] for r in arr]
    return [classes[i] if i >= 0 else None for i in arr]


def _real_waves(ds, rows: Sequence[int]) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows)
    waves = np.empty((len(rows), ds.audio.shape[1]), np.float32)
    waves[order] = ds.audio.take(rows[order]).astype(np.float32) / 32767.0
    return waves


def _nearest_row(rows: np.ndarray, pitches: np.ndarray, pitch: int, rng: np.random.Generator) -> int:
    """A row among `rows` at `pitch`, else at the nearest pitch (a random one of them)."""
    dist = np.abs(pitches - pitch)
    best = rows[dist == dist.min()]
    return int(best[rng.integers(len(best))])


def _instruments(ds) -> dict[str, np.ndarray]:
    """Rows of each instrument of a split (the note's id when it names no instrument)."""
    names = [str(e.get("instrument") or e.get("id")) for e in ds.examples]
    out: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        out.setdefault(n, []).append(i)
    return {n: np.array(r, np.int64) for n, r in out.items()}


def real_instrument_notes(valid_ds, train_ds, pitch: int, count: int, seed: int) -> list[tuple[object, int]]:
    """`count` real notes of `count` different instruments at `pitch` (or each instrument's nearest pitch):
    held-out instruments first (in random order), then training instruments. Returns `(dataset, row)` pairs."""
    rng = np.random.default_rng([seed, pitch, 1])
    chosen: list[tuple[object, int]] = []
    seen: set[str] = set()
    for ds in (valid_ds, train_ds):
        if ds is None or len(chosen) >= count:
            continue
        insts = _instruments(ds)
        all_pitches = ds.pitches
        for name in rng.permutation(sorted(insts)):
            if len(chosen) >= count:
                break
            if name in seen:
                continue
            seen.add(name)
            rows = insts[name]
            chosen.append((ds, _nearest_row(rows, all_pitches[rows], pitch, rng)))
    return chosen


def _waves_of(notes: list[tuple[object, int]]) -> np.ndarray:
    if not notes:
        return np.zeros((0, 0), np.float32)
    waves = [None] * len(notes)
    for ds in {id(d): d for d, _ in notes}.values():
        idx = [i for i, (d, _) in enumerate(notes) if d is ds]
        for i, w in zip(idx, _real_waves(ds, [notes[i][1] for i in idx])):
            waves[i] = w
    return np.stack(waves)


# -- generation ------------------------------------------------------------------------------------------------------
def clamp_pitches(pitches: Sequence[int], model_pitches: Sequence[int]) -> list[int]:
    """Each pitch moved to the nearest the model has (unchanged for a model without pitch), duplicates dropped."""
    out: list[int] = []
    for p in pitches:
        q = min(model_pitches, key=lambda m: (abs(m - p), m)) if model_pitches else int(p)
        if q not in out:
            out.append(int(q))
    return out


def _draw_conditions(synth, ds, n: int, rng: np.random.Generator, skip: Sequence[str] = ()) -> dict[str, list]:
    """Labels of the model's conditions other than pitch (and `skip`) for `n` notes, each note's from one random
    training note whose labels the model knows; uniformly over the classes where the dataset lacks them."""
    names = [s for s in synth.config.conditions if s.name != "pitch" and s.name not in skip]
    if not names:
        return {}
    known = [s for s in names if ds is not None and s.name in ds.vocab]
    rows = np.arange(len(ds)) if ds is not None else np.arange(0)
    usable = np.ones(len(rows), bool)
    for s in known:
        if s.kind == "categorical":
            usable &= np.array([v in s.classes for v in _label_values(ds, rows, s.name)], bool)
    pool = rows[usable]
    picked = pool[rng.integers(len(pool), size=n)] if len(pool) else None
    out: dict[str, list] = {}
    for s in names:
        if picked is not None and s in known:
            vals = _label_values(ds, picked, s.name)
            out[s.name] = [[c for c in v if c in s.classes] for v in vals] if s.kind == "multilabel" else vals
        elif s.kind == "categorical":
            out[s.name] = [s.classes[i] for i in rng.integers(s.size, size=n)]
        else:
            out[s.name] = [[] for _ in range(n)]
    return out


def generated_log_mels(synth, z: np.ndarray, pitch: int | None, conditions: dict[str, list] | None,
                       batch_size: int = 16) -> np.ndarray:
    """Log-mel spectrograms (`log_mel_db`) of the notes `synth` makes for latents `z` at one pitch."""
    mels = []
    for start in range(0, len(z), batch_size):
        sl = slice(start, start + batch_size)
        conds = {k: v[sl] for k, v in (conditions or {}).items()} or None
        specs = synth.generate_specgrams(z[sl], pitch=pitch, conditions=conds, batch_size=batch_size)
        mels.append(log_mel_db(synth.specgrams_to_waves(specs), synth.sample_rate))
    return np.concatenate(mels)


def _ratio(a, b) -> float | None:
    return float(a / b) if a is not None and b is not None and np.isfinite(a) and np.isfinite(b) and b > 0 else None


def _finite(x) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def diversity(synth, train_ds, valid_ds, settings: TimbreSettings = TimbreSettings(), *, seed: int = 0,
              batch_size: int = 16) -> dict:
    """Timbre diversity: mean pairwise log-mel distance (dB) of `settings.count` generated notes at each pitch
    (latents `synth.random_z(count × pitches, seed)`, other conditions drawn from training notes' labels) over
    the same for `settings.count` real notes of different instruments (`real_instrument_notes`)."""
    pitches = clamp_pitches(settings.pitches, synth.pitches)
    has_pitch = "pitch" in synth.conditions.names
    z = synth.random_z(settings.count * len(pitches), seed)
    rng = np.random.default_rng([seed, 2])
    per_pitch = {}
    for k, p in enumerate(pitches):
        conds = _draw_conditions(synth, train_ds, settings.count, rng)
        gen = mean_pairwise_distance(generated_log_mels(synth, z[k * settings.count:(k + 1) * settings.count],
                                                        p if has_pitch else None, conds, batch_size))
        notes = real_instrument_notes(valid_ds, train_ds, p, settings.count, seed)
        real_waves = _waves_of(notes)
        real = mean_pairwise_distance(log_mel_db(real_waves, synth.sample_rate)) if len(notes) > 1 else float("nan")
        per_pitch[str(p)] = {"generated_db": _finite(gen), "real_db": _finite(real), "ratio": _ratio(gen, real),
                             "real_count": len(notes),
                             "real_heldout": sum(1 for d, _ in notes if d is valid_ds),
                             "real_pitches": sorted({int(d.pitches[r]) for d, r in notes})}
    gen_db = _mean([v["generated_db"] for v in per_pitch.values()])
    real_db = _mean([v["real_db"] for v in per_pitch.values()])
    return {"pitches": pitches, "count": settings.count, "generated_db": gen_db, "real_db": real_db,
            "ratio": _ratio(gen_db, real_db), "per_pitch": per_pitch,
            "conditions": "other conditions drawn from training notes' labels"}


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def categorical_conditions(synth) -> list[str]:
    """The model's categorical conditions other than pitch (those `condition_effect` measures)."""
    return [s.name for s in synth.config.conditions if s.name != "pitch" and s.kind == "categorical"]


def condition_effect(synth, train_ds, valid_ds, name: str, settings: TimbreSettings = TimbreSettings(), *,
                     seed: int = 0, batch_size: int = 16) -> dict:
    """How much one categorical condition changes the sound. For each of `settings.latents` latents
    (`synth.random_z(latents, seed + 1)`) and each pitch: the same latent played with every class of `name`, the
    mean pairwise log-mel distance across classes (dB); real: one note per class at that pitch (each class's
    nearest pitch when it has none there; held-out and training notes pooled), the mean pairwise distance, over
    as many random draws as latents. `ratio` = generated / real. `within_class_db`: the same class played with
    different latents (the latent's own effect, for context)."""
    spec = synth.conditions.spec(name)
    pitches = clamp_pitches(settings.pitches, synth.pitches)
    has_pitch = "pitch" in synth.conditions.names
    z = synth.random_z(settings.latents, seed + 1)
    rng = np.random.default_rng([seed, 3])
    others = _draw_conditions(synth, train_ds, settings.latents, rng, skip=(name,))
    real_sets = [ds for ds in (valid_ds, train_ds) if ds is not None and name in ds.vocab]
    labels = {id(ds): np.array(_label_values(ds, np.arange(len(ds)), name), dtype=object) for ds in real_sets}
    candidates = []  # per class with real notes: [(split, its rows of that class)]
    for c in spec.classes:
        rows = [(ds, np.flatnonzero(labels[id(ds)] == c)) for ds in real_sets]
        rows = [(ds, r) for ds, r in rows if len(r)]
        if rows:
            candidates.append(rows)
    per_pitch = {}
    for p in pitches:
        # every class for every latent: rows latent-major, [latents × classes]
        zz = np.repeat(z, spec.size, axis=0)
        conds = {k: [v[i] for i in range(settings.latents) for _ in range(spec.size)] for k, v in others.items()}
        conds[name] = list(spec.classes) * settings.latents
        mels = generated_log_mels(synth, zz, p if has_pitch else None, conds, batch_size)
        mels = mels.reshape(settings.latents, spec.size, *mels.shape[1:])
        across = np.mean([mean_pairwise_distance(mels[i]) for i in range(settings.latents)])
        within = np.mean([mean_pairwise_distance(mels[:, c]) for c in range(spec.size)])
        real_draws = []
        if len(candidates) >= 2:
            for _ in range(settings.latents):
                notes = []
                for rows in candidates:
                    ds, r = _pick_split(rows, [np.abs(ds.pitches[r] - p).min() for ds, r in rows], rng)
                    notes.append((ds, _nearest_row(r, ds.pitches[r], p, rng)))
                real_draws.append(mean_pairwise_distance(log_mel_db(_waves_of(notes), synth.sample_rate)))
        real = float(np.mean(real_draws)) if real_draws else float("nan")
        per_pitch[str(p)] = {"generated_db": _finite(across), "real_db": _finite(real), "ratio": _ratio(across, real),
                             "within_class_db": _finite(within)}
    gen_db = _mean([v["generated_db"] for v in per_pitch.values()])
    real_db = _mean([v["real_db"] for v in per_pitch.values()])
    return {"condition": name, "classes": spec.size, "real_classes": len(candidates), "latents": settings.latents,
            "pitches": pitches, "generated_db": gen_db, "real_db": real_db, "ratio": _ratio(gen_db, real_db),
            "within_class_db": _mean([v["within_class_db"] for v in per_pitch.values()]), "per_pitch": per_pitch}


def _pick_split(rows, dist, rng):
    """Held-out and training notes pooled: a split holding the nearest pitch, chosen in proportion to its notes."""
    best = min(dist)
    options = [(ds, r) for (ds, r), d in zip(rows, dist) if d == best]
    sizes = np.array([len(r) for _, r in options], np.float64)
    return options[int(rng.choice(len(options), p=sizes / sizes.sum()))]


def measure_timbre(synth, train_ds, valid_ds, settings: TimbreSettings = TimbreSettings(), *, seed: int = 0,
                   batch_size: int = 16, log: Callable[[str], None] = lambda s: None) -> dict:
    """The measures that generate notes of their own: `{"settings", "diversity", "condition_effect"}`, where
    `condition_effect` maps each categorical condition other than pitch to `condition_effect(...)`'s dict, or is
    None when the model has no such condition. Deterministic given `seed`."""
    out: dict = {"settings": settings.to_dict()}
    out["diversity"] = diversity(synth, train_ds, valid_ds, settings, seed=seed, batch_size=batch_size)
    d = out["diversity"]
    log(f"timbre diversity {_show(d['generated_db'])} dB (real {_show(d['real_db'])} dB)")
    names = categorical_conditions(synth)
    out["condition_effect"] = {n: condition_effect(synth, train_ds, valid_ds, n, settings, seed=seed,
                                                   batch_size=batch_size) for n in names} or None
    for n, e in (out["condition_effect"] or {}).items():
        log(f"{n} effect {_show(e['generated_db'])} dB (real {_show(e['real_db'])} dB)")
    return out


def _show(x, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def curve_summary(timbre: dict, which: str = "generated") -> dict:
    """The headline timbre numbers of an evaluation's `timbre` block for one note set ('generated' or 'real'):
    diversity ratio, condition-effect ratio (instrument_family, else the first categorical condition), median
    level (dBFS), median start click and median upper-band share (dB). Real notes' ratios are 1 by definition."""
    notes = timbre.get(which) or {}
    div = timbre.get("diversity") or {}
    effects = timbre.get("condition_effect") or {}
    effect = effects.get("instrument_family") or next(iter(effects.values()), None)
    real = which == "real"
    return {"diversity_ratio": (1.0 if div.get("ratio") is not None else None) if real else div.get("ratio"),
            "family_effect_ratio": (1.0 if effect and effect.get("ratio") is not None else None) if real
            else (effect or {}).get("ratio"),
            "level_dbfs": notes.get("level_dbfs"), "click_median": notes.get("click_median"),
            "upper_band_db": notes.get("upper_band_db")}


def timbre_summary_line(timbre: dict) -> str:
    """One line of the headline timbre numbers, generated (real), for `evaluate`'s output."""
    g, r = timbre["generated"], timbre["real"]
    parts = []
    div = timbre.get("diversity")
    if div:
        parts.append(f"timbre diversity {_show(div['generated_db'])} dB (real {_show(div['real_db'])}, "
                     f"ratio {_show(div['ratio'], 2)})")
    for name, e in (timbre.get("condition_effect") or {}).items():
        parts.append(f"{name} effect ratio {_show(e['ratio'], 2)}")
    parts += [f"upper band {_show(g['upper_band_db'])} dB (real {_show(r['upper_band_db'])})",
              f"click median {_show(g['click_median'], 2)} (real {_show(r['click_median'], 2)})",
              f"level {_show(g['level_dbfs'])} dBFS (real {_show(r['level_dbfs'])})"]
    return ", ".join(parts)
