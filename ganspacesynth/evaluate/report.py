"""Writing evaluation and description reports: JSON for programs, Markdown + PNG plots for people."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from . import plots
from .descriptors import DESCRIPTORS


def _fmt(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _clean(obj):
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_evaluation_report(out_dir: Path, metrics: dict, sets: dict, sample_rate: int, header: dict) -> None:
    """metrics.json, report.md, examples.png, accuracy_per_pitch.png and a few example WAVs into `out_dir`."""
    from ..audio.io import write_wav
    from ..audio.levels import peak_safe

    data = _clean({**header, **metrics})
    (out_dir / "metrics.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    rows = []
    for key, title in (("generated", "generated"), ("real", "real held-out")):
        s = sets[key]
        if not s.example_specs:
            continue
        specs = np.concatenate(s.example_specs)
        midi = s.cat("midi")[: len(specs)]
        rows.append((title, specs, [f"pitch {int(p)}" for p in midi]))
        audio = out_dir / "audio"
        audio.mkdir(exist_ok=True)
        for i, (wave, p) in enumerate(zip(np.concatenate(s.example_waves), midi)):
            write_wav(audio / f"{key}_{i:02d}_p{int(p)}.wav", peak_safe(wave), sample_rate)
    if rows:
        plots.example_spectrograms(out_dir / "examples.png", rows)
    plots.accuracy_per_pitch(out_dir / "accuracy_per_pitch.png", metrics["per_pitch"])
    (out_dir / "report.md").write_text(evaluation_markdown(data), encoding="utf-8")


def evaluation_markdown(data: dict) -> str:
    g, r = data["generated"], data["real"]
    setup = data["setup"]
    lines = [
        "# GANSpaceSynth evaluation report",
        "",
        f"- model: `{data.get('model')}` (fingerprint `{data.get('model_fingerprint')}`)",
        f"- dataset: `{data.get('dataset')}`; classifier: `{data.get('classifier')}` "
        f"(its own held-out accuracy: {data.get('classifier_heldout_accuracy')})",
        f"- {setup['count']} generated notes (labels drawn from held-out notes, seed {setup['seed']}), "
        f"{setup['real_count']} real held-out notes; reference statistics from {setup['reference_count']} training notes",
        f"- evaluation took {_fmt(data['seconds']['total'], 0)} s",
        "",
        "The real held-out column is the ceiling: what a generator indistinguishable from the data would score.",
        "",
        "| metric | generated | real held-out (ceiling) |",
        "|---|---|---|",
        f"| pitch accuracy (classifier) ↑ | {_fmt(g['pitch_accuracy'])} | {_fmt(r['pitch_accuracy'])} |",
        f"| pitch entropy (classifier, nats) ↓ | {_fmt(g['pitch_entropy'])} | {_fmt(r['pitch_entropy'])} |",
    ]
    if "f0" in g:
        lines += [
            f"| pitch accuracy (f0 tracker, median f0 rounds to the pitch) ↑ | {_fmt(g['f0']['f0_accuracy'])} | "
            f"{_fmt(r['f0']['f0_accuracy'])} |",
            f"| octave errors (f0 tracker) ↓ | {_fmt(g['f0']['octave_errors'])} | {_fmt(r['f0']['octave_errors'])} |",
            f"| no pitch found (f0 tracker) ↓ | {_fmt(g['f0']['unvoiced'])} | {_fmt(r['f0']['unvoiced'])} |",
        ]
    lines += [
        f"| FID (classifier features, vs training notes) ↓ | {_fmt(g['fid'], 2)} | {_fmt(r['fid'], 2)} |",
        f"| Inception Score (pitch head) ↑ | {_fmt(g['inception_score'], 2)} | {_fmt(r['inception_score'], 2)} |",
        f"| NDB (of {g['ndb']['bins']} k-means bins) ↓ | {g['ndb']['ndb']} | {r['ndb']['ndb']} |",
        f"| NDB bin-histogram JS divergence ↓ | {_fmt(g['ndb']['js_divergence'])} | {_fmt(r['ndb']['js_divergence'])} |",
    ]
    for name, acc in g["condition_accuracy"].items():
        if name != "pitch":
            conditioned = name in setup["model_conditions"]
            note = "" if conditioned else " (not a model condition: informative only)"
            lines.append(f"| {name} accuracy (classifier){note} | {_fmt(acc)} | {_fmt(r['condition_accuracy'][name])} |")
    missing = [c for c in setup["model_conditions"] if c not in setup["classifier_heads"]]
    lines += ["", *(f"Condition `{c}` is not measured: the classifier has no head for it." for c in missing)]
    lines += timbre_markdown(data.get("timbre"))
    lines += ["", "## Pitch accuracy per pitch", "", "![accuracy per pitch](accuracy_per_pitch.png)", "",
              "## Example spectrograms", "", "![examples](examples.png)", "",
              "Example notes are in `audio/`. All numbers are in `metrics.json`.", ""]
    return "\n".join(lines)


def timbre_markdown(timbre: dict | None) -> list[str]:
    """The report's timbre section (docs/evaluation.md defines each measure)."""
    if not timbre:
        return []
    g, r = timbre["generated"], timbre["real"]
    lines = ["", "## Timbre", "", "| measure | generated | real held-out |", "|---|---|---|"]
    div = timbre.get("diversity")
    if div:
        for p, v in div["per_pitch"].items():
            lines.append(f"| timbre diversity at pitch {p} (mean pairwise log-mel distance, dB; real: "
                         f"{v['real_count']} instruments) | {_fmt(v['generated_db'], 1)} | {_fmt(v['real_db'], 1)} |")
        lines.append(f"| timbre diversity, mean over pitches (dB) | {_fmt(div['generated_db'], 1)} | "
                     f"{_fmt(div['real_db'], 1)} |")
        per = ", ".join(f"{_fmt(v['ratio'], 2)} at {p}" for p, v in div["per_pitch"].items())
        lines.append(f"| timbre diversity ratio (generated / real; {per}) → 1 | {_fmt(div['ratio'], 2)} | 1 |")
    for name, e in (timbre.get("condition_effect") or {}).items():
        per = ", ".join(f"{_fmt(v['ratio'], 2)} at {p}" for p, v in e["per_pitch"].items())
        lines += [
            f"| {name} effect (same latent, {e['classes']} classes; real: one note per class, dB) | "
            f"{_fmt(e['generated_db'], 1)} | {_fmt(e['real_db'], 1)} |",
            f"| {name} effect ratio (generated / real; {per}) → 1 | {_fmt(e['ratio'], 2)} | 1 |",
            f"| latent effect within one {name} class (dB, for context) | {_fmt(e['within_class_db'], 1)} | |",
        ]
    n, m = g["count"], r["count"]
    lines += [
        f"| upper-band share after 0.1 s (above 5 kHz, dB, median) | {_fmt(g['upper_band_db'], 1)} | "
        f"{_fmt(r['upper_band_db'], 1)} |",
        f"| upper-band share change, attack → after 0.1 s (dB, median) | {_fmt(g['upper_band_change_db'], 1)} | "
        f"{_fmt(r['upper_band_change_db'], 1)} |",
        f"| start click max(abs(x[0:4])) / peak (median) ↓ | {_fmt(g['click_median'], 2)} | "
        f"{_fmt(r['click_median'], 2)} |",
        f"| notes with a start click above 0.1 ↓ | {g['click_over_threshold']}/{n} | "
        f"{r['click_over_threshold']}/{m} |",
        f"| notes with an isolated spike in the first 4 samples ↓ | {g['start_spikes']}/{n} | "
        f"{r['start_spikes']}/{m} |",
        f"| level (whole-note RMS, dBFS, median) | {_fmt(g['level_dbfs'], 1)} | {_fmt(r['level_dbfs'], 1)} |",
        f"| notes below −50 dBFS | {g['quiet_notes']}/{n} | {r['quiet_notes']}/{m} |",
    ]
    for band, v in (g.get("f0_band_accuracy") or {}).items():
        rv = r["f0_band_accuracy"][band]
        lines.append(f"| pitch accuracy (f0 tracker), MIDI {band} ↑ | {_fmt(v['accuracy'])} ({v['count']} notes) | "
                     f"{_fmt(rv['accuracy'])} ({rv['count']} notes) |")
    if div is None:
        lines += ["", "Timbre diversity and condition effects were not measured (skipped)."]
    elif not timbre.get("condition_effect"):
        lines += ["", "No condition effect: the model has no categorical condition other than pitch."]
    return lines


def _drift_cell(drift: dict | None) -> str:
    if not drift:
        return "–"
    median = drift.get("median_semitones")
    return f"{100 * drift['changed']:.0f} % of {drift['notes']}" + ("" if not drift["changed"] or median is None
                                                                   else f", median {median:.1f} st")


def write_describe_report(out_dir: Path, descriptions: Sequence[dict], var_ratio: np.ndarray, header: dict) -> None:
    """descriptions.json, describe.md, variance_explained.png and descriptor_curves.png into `out_dir`."""
    data = _clean({**header, "descriptions": list(descriptions)})
    (out_dir / "descriptions.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    labels = [d["label"] for d in descriptions] + [""] * (len(var_ratio) - len(descriptions))
    plots.variance_explained(out_dir / "variance_explained.png", np.asarray(var_ratio), labels)
    plots.descriptor_curves(out_dir / "descriptor_curves.png", descriptions, list(DESCRIPTORS))
    contexts = descriptions[0]["contexts"]
    contexts = ", ".join(contexts) if isinstance(contexts, list) else f"{contexts}"
    lines = ["# Component descriptions", "",
             f"- model `{header.get('model')}`, components `{header.get('components')}` (layer {header.get('layer')})",
             f"- sweep {descriptions[0]['values']} × stdev, mode {header.get('mode')}, contexts: {contexts}",
             "", "A descriptor is listed when it changes monotonically (mean Spearman ρ) and audibly (effect ≥ 1: "
             "at least its minimum audible change over the sweep).", "",
             "Pitch drift: the share of the direction's notes (coefficient ≠ 0) whose pYIN pitch moved by half a "
             "semitone or more from the same context's unedited note (or lost or gained its voicing), and the median "
             "size of those changes.", "",
             "| component | variance | label | changes (ρ, effect) | most monotone descriptor (ρ, effect) | pitch drift |",
             "|---|---|---|---|---|---|"]
    for i, d in enumerate(descriptions):
        changes = "; ".join(f"{c['descriptor']} ({c['rho']:+.2f}, {c['effect']:+.1f})" for c in d["changes"]) or "–"
        finite = {k: v for k, v in d["stats"].items() if v["rho"] is not None and math.isfinite(v["rho"])}
        best = max(finite, key=lambda k: abs(finite[k]["rho"]), default=None)
        trend = f"{best} ({finite[best]['rho']:+.2f}, {finite[best]['effect']:+.2f})" if best else "–"
        lines.append(f"| {i} | {var_ratio[i]:.4f} | {d['label'] or '(no clear change)'} | {changes} | {trend} | "
                     f"{_drift_cell(d.get('pitch_drift'))} |")
    lines += ["", "![variance explained](variance_explained.png)", "", "![descriptor curves](descriptor_curves.png)", ""]
    (out_dir / "describe.md").write_text("\n".join(lines), encoding="utf-8")
