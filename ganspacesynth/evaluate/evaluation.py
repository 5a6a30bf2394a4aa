"""`evaluate`: measure generated notes beside held-out real notes with the same metrics.

Generated notes take their labels (pitch and the model's other conditions) from held-out notes of the
dataset, cycling through them, so both sets share one label distribution. Every note, generated or real,
is judged from its audio: generated spectrograms are turned into waves and analysed again, as a listener
would hear them. Reference statistics (FID's Gaussian, NDB's k-means bins) come from training notes;
real held-out notes scored against them are the ceiling a perfect generator would reach. Timbre measures
(evaluate/timbre.py) keep one scalar per note of both sets and generate notes of their own for diversity and
condition effects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from ..errors import UserError
from .classifier import Classifier
from .metrics import NDB, accuracy, frechet_distance, gaussian_stats, inception_score, mean_entropy, pooled_logmag
from .pitch import F0Settings, pitch_check, track_f0
from .timbre import TimbreSettings, measure_timbre, note_measures, summarise_notes

EXAMPLES = 6  # notes of each set kept for the report's pictures and sound files


@dataclass
class NoteSet:
    """Everything measured on one set of notes (generated or real)."""

    name: str
    midi: list[np.ndarray] = field(default_factory=list)  # requested / true MIDI pitch
    targets: dict[str, list[np.ndarray]] = field(default_factory=dict)  # class index per classifier head (−1: n/a)
    probs: dict[str, list[np.ndarray]] = field(default_factory=dict)
    embedding: list[np.ndarray] = field(default_factory=list)
    pooled: list[np.ndarray] = field(default_factory=list)
    f0_midi: list[np.ndarray] = field(default_factory=list)
    f0_hz: list[np.ndarray] = field(default_factory=list)
    f0_voiced: list[np.ndarray] = field(default_factory=list)
    example_specs: list[np.ndarray] = field(default_factory=list)
    example_waves: list[np.ndarray] = field(default_factory=list)
    timbre: dict[str, list[np.ndarray]] = field(default_factory=dict)  # per-note scalars (timbre.note_measures)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, classifier: Classifier, specs: np.ndarray, waves: np.ndarray, sample_rate: int, midi: np.ndarray,
            targets: dict[str, np.ndarray], f0: F0Settings | None, device: str) -> None:
        t = time.perf_counter()
        out = classifier.predict(specs, device=device)
        self._tick("classifier", t)
        self.embedding.append(out["embedding"])
        for h in classifier.config.heads:
            self.probs.setdefault(h.name, []).append(out[h.name])
            self.targets.setdefault(h.name, []).append(targets[h.name])
        self.pooled.append(pooled_logmag(specs))
        self.midi.append(np.asarray(midi))
        if f0 is not None:
            t = time.perf_counter()
            res = track_f0(waves, sample_rate, f0)
            self._tick("f0", t)
            self.f0_midi.append(res.midi)
            self.f0_hz.append(res.median_hz)
            self.f0_voiced.append(res.voiced_fraction)
        t = time.perf_counter()
        for key, value in note_measures(waves, sample_rate).items():
            self.timbre.setdefault(key, []).append(value)
        self._tick("timbre", t)
        room = EXAMPLES - sum(len(s) for s in self.example_specs)
        if room > 0:
            self.example_specs.append(np.asarray(specs[:room], np.float32))
            self.example_waves.append(np.asarray(waves[:room], np.float32))

    def _tick(self, key: str, start: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - start

    def cat(self, name: str):
        value = getattr(self, name)
        if isinstance(value, dict):
            return {k: np.concatenate(v) for k, v in value.items()}
        return np.concatenate(value) if value else None


def _label_names(ds, rows: np.ndarray, name: str) -> list:
    """Label values (class names; lists of names for qualities) of dataset rows."""
    classes = ds.vocab[name]
    arr = ds.labels[name][rows]
    if arr.ndim == 2:
        return [[classes[j] for j in np.flatnonzero(r)] for r in arr]
    return [classes[i] if i >= 0 else None for i in arr]


def _head_targets(classifier: Classifier, values: dict[str, list]) -> dict[str, np.ndarray]:
    """Class indices in each head's vocabulary (−1 when the value is unknown to the head or missing)."""
    out = {}
    for h in classifier.config.heads:
        lookup = {c: i for i, c in enumerate(h.classes)}
        vals = values.get(h.name)
        out[h.name] = np.array([lookup.get(str(v), -1) if v is not None else -1 for v in vals] if vals
                               else [-1] * len(next(iter(values.values()))), np.int64)
    return out


def _real_batches(ds, rows: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    for start in range(0, len(rows), batch_size):
        r = np.sort(rows[start : start + batch_size])
        specs = ds.specs.take(r).astype(np.float32)
        waves = ds.audio.take(r).astype(np.float32) / 32767.0
        yield r, specs, waves


def evaluate_model(synth, classifier: Classifier, train_ds, valid_ds, *, count: int = 1000, reference_count: int = 1000,
                   seed: int = 0, batch_size: int = 16, f0: F0Settings | None = F0Settings(), ndb_bins: int = 50,
                   device: str = "cpu", timbre: TimbreSettings | None = TimbreSettings(),
                   log: Callable[[str], None] = lambda s: None) -> tuple[dict, dict[str, NoteSet]]:
    """Run the evaluation; returns (metrics dict, the two NoteSets for plots).

    `metrics["timbre"]` holds the per-note timbre measures of both sets and, unless `timbre` is None, the
    measures that generate notes of their own (diversity, condition effects: evaluate/timbre.py)."""
    spectral = synth.config.spectral
    classifier.check_spectral(spectral)
    train_ds.check_spectral(spectral)
    rng = np.random.default_rng(seed)
    pitch_classes = synth.conditions.spec("pitch").classes if "pitch" in synth.conditions.names else ()
    if classifier.config.head("pitch") is None:
        raise UserError("the classifier has no pitch head")

    # Held-out notes whose labels the model can be asked for.
    valid_pitch = valid_ds.pitches
    usable = np.array([str(p) in pitch_classes for p in valid_pitch]) if pitch_classes else np.ones(len(valid_ds), bool)
    for spec in synth.config.conditions:
        if spec.name == "pitch":
            continue
        if spec.name not in valid_ds.vocab:
            raise UserError(f"the model is conditioned on {spec.name} but the dataset has no such labels")
        if spec.kind == "categorical":
            names = _label_names(valid_ds, np.arange(len(valid_ds)), spec.name)
            usable &= np.array([n in spec.classes for n in names])
    pool = np.flatnonzero(usable)
    if len(pool) == 0:
        raise UserError("no held-out note has labels this model can generate (pitch range, conditions)")
    real_rows = np.sort(rng.permutation(pool)[: min(count, len(pool))])
    gen_rows = np.resize(rng.permutation(pool), count)  # cycles when count > held-out notes
    log(f"{count} generated notes, {len(real_rows)} held-out real notes, labels from the held-out split")

    sets = {"generated": NoteSet("generated"), "real": NoteSet("real held-out")}
    t0 = time.perf_counter()
    z = synth.random_z(count, seed)
    cond_names = [s.name for s in synth.config.conditions if s.name != "pitch"]
    head_names = [h.name for h in classifier.config.heads]
    for start in range(0, count, batch_size):
        rows = gen_rows[start : start + batch_size]
        pitches = valid_pitch[rows]
        conds = {n: _label_names(valid_ds, rows, n) for n in cond_names}
        t = time.perf_counter()
        gspecs = synth.generate_specgrams(z[start : start + len(rows)],
                                          pitch=[int(p) for p in pitches] if pitch_classes else None,
                                          conditions=conds or None, batch_size=batch_size)
        waves = synth.specgrams_to_waves(gspecs)
        specs = synth.spectral.waves_to_specgrams(waves).numpy()
        sets["generated"]._tick("generate", t)
        values = {n: _label_names(valid_ds, rows, n) for n in head_names if n != "pitch" and n in valid_ds.vocab}
        values["pitch"] = [str(p) for p in pitches]
        sets["generated"].add(classifier, specs, waves, synth.sample_rate, pitches, _head_targets(classifier, values),
                              f0, device)
        if (start // batch_size) % 10 == 0:
            log(f"generated {start + len(rows)}/{count} ({time.perf_counter() - t0:.0f} s)")
    for rows, specs, waves in _real_batches(valid_ds, real_rows, batch_size):
        values = {n: _label_names(valid_ds, rows, n) for n in head_names if n != "pitch" and n in valid_ds.vocab}
        values["pitch"] = [str(p) for p in valid_pitch[rows]]
        sets["real"].add(classifier, specs, waves, synth.sample_rate, valid_pitch[rows],
                         _head_targets(classifier, values), f0, device)
    log(f"real held-out notes done ({time.perf_counter() - t0:.0f} s)")

    # Reference statistics from training notes.
    t = time.perf_counter()
    ref_rows = np.sort(rng.permutation(len(train_ds))[: min(reference_count, len(train_ds))])
    ref_emb, ref_pooled = [], []
    for start in range(0, len(ref_rows), 64):
        specs = train_ds.specs.take(ref_rows[start : start + 64]).astype(np.float32)
        ref_emb.append(classifier.predict(specs, device=device)["embedding"])
        ref_pooled.append(pooled_logmag(specs))
    ref_emb, ref_pooled = np.concatenate(ref_emb), np.concatenate(ref_pooled)
    ref_stats = gaussian_stats(ref_emb)
    seconds_reference = time.perf_counter() - t
    t = time.perf_counter()
    ndb = NDB(ref_pooled, bins=min(ndb_bins, max(2, len(ref_pooled) // 10)), seed=seed)
    seconds_ndb_fit = time.perf_counter() - t

    t = time.perf_counter()
    metrics = {name: _set_metrics(s, classifier, ref_stats, ndb, pitch_classes, f0 is not None)
               for name, s in sets.items()}
    metrics["per_pitch"] = _per_pitch(sets, classifier, f0 is not None)
    seconds_metrics = time.perf_counter() - t
    t = time.perf_counter()
    metrics["timbre"] = {key: summarise_notes(s.cat("timbre"), s.cat("f0_midi"), s.cat("midi"))
                         for key, s in sets.items()}
    if timbre is not None:
        metrics["timbre"].update(measure_timbre(synth, train_ds, valid_ds, timbre, seed=seed, batch_size=batch_size,
                                                log=log))
    else:
        metrics["timbre"].update(settings=None, diversity=None, condition_effect=None)
    seconds_timbre = time.perf_counter() - t
    metrics["setup"] = {"count": count, "real_count": int(len(real_rows)), "reference_count": int(len(ref_rows)),
                        "seed": seed, "ndb_bins": ndb.bins, "f0_tracker": None if f0 is None else {"pyin": vars(f0)},
                        "model_conditions": synth.conditions.names, "classifier_heads": head_names}
    metrics["seconds"] = {"generated": sets["generated"].seconds, "real": sets["real"].seconds,
                          "reference": seconds_reference, "ndb_fit": seconds_ndb_fit, "metrics": seconds_metrics,
                          "timbre": seconds_timbre,
                          "total": time.perf_counter() - t0}
    return metrics, sets


def _set_metrics(s: NoteSet, classifier: Classifier, ref_stats, ndb: NDB, pitch_classes, with_f0: bool) -> dict:
    probs, targets = s.cat("probs"), s.cat("targets")
    emb = s.cat("embedding")
    out: dict = {"count": int(len(emb))}
    out["pitch_accuracy"] = accuracy(probs["pitch"].argmax(1), targets["pitch"])
    out["pitch_entropy"] = mean_entropy(probs["pitch"])
    out["inception_score"] = inception_score(probs["pitch"])
    out["fid"] = frechet_distance(*gaussian_stats(emb), *ref_stats) if len(emb) > 1 else float("nan")
    out["ndb"] = ndb.score(s.cat("pooled")).to_dict()
    out["condition_accuracy"] = {h.name: accuracy(probs[h.name].argmax(1), targets[h.name])
                                 for h in classifier.config.heads}
    if with_f0:
        out["f0"] = pitch_check(s.cat("f0_midi"), s.cat("midi"))
    return out


def _per_pitch(sets: dict[str, NoteSet], classifier: Classifier, with_f0: bool) -> dict:
    pitches = sorted({int(p) for s in sets.values() for p in s.cat("midi")})
    out: dict = {"pitches": pitches}
    for key, s in sets.items():
        midi = s.cat("midi")
        pred = s.cat("probs")["pitch"].argmax(1)
        target = s.cat("targets")["pitch"]
        out[f"{key}_classifier"] = [_mean_or_none(pred[midi == p] == target[midi == p]) for p in pitches]
        out[f"{key}_count"] = [int(np.sum(midi == p)) for p in pitches]
        if with_f0:
            f0m = s.cat("f0_midi")
            out[f"{key}_f0"] = [_mean_or_none(f0m[midi == p] == p) for p in pitches]
    return out


def _mean_or_none(x: np.ndarray) -> float | None:
    return float(np.mean(x)) if len(x) else None  # None: no note of that pitch in this set
