"""The measures taken on one generated note: its onset, its envelope (attack, body level, release) and the best
sustain loop (see the package docstring, steps 2, 3 and 5). Pure numpy (scipy for the loop search)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ONSET_FRAME_S = 0.001
ONSET_DB = 40.0
FRAME_S = 0.01
ATTACK_DB = 3.0
BODY_S = 0.5
STABLE_DB = 10.0
MIN_LOOP_S, MAX_LOOP_S = 0.1, 1.0
#: Loops with a larger match error are not used (the note becomes a one-shot). 0.25: the waveform around the
#: loop end matches the one around its start to within −12 dB.
MAX_LOOP_ERROR = 0.25
#: Nor loops whose level changes more than this from start to end (each repetition would jump by it).
MAX_LOOP_DRIFT_DB = 1.5
CROSSFADE_S = 0.01
LOOP_GUARD = 32  # samples after the loop end (copies of those after its start, for the players' interpolation)
RELEASE_FROM_DB = 12.0
RELEASE_TO_DB = 60.0
RELEASE_RANGE_S = (0.02, 4.0)


def _frames_db(x: np.ndarray, hop: int) -> np.ndarray:
    n = max(1, len(x) // hop)
    fr = np.zeros((n, hop))
    seg = x[: n * hop]
    fr.reshape(-1)[: len(seg)] = seg
    rms = np.sqrt(np.mean(fr * fr, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-12))


def onset_index(x: np.ndarray, sample_rate: int) -> int:
    """First sample of the note: 1 ms before the first 1 ms frame within ONSET_DB of the loudest frame."""
    hop = max(1, int(round(ONSET_FRAME_S * sample_rate)))
    db = _frames_db(x, hop)
    if db.max() <= -200:
        return 0
    first = int(np.argmax(db >= db.max() - ONSET_DB))
    return max(0, (first - 1) * hop)


@dataclass
class Envelope:
    attack_end: int  # samples from the (trimmed) sample's start
    attack_s: float
    body_db: float  # the loudness measure: RMS dBFS of BODY_S from the attack end
    release_s: float | None  # None: the note does not decay within its length
    release_rate_db_s: float | None


def measure_envelope(x: np.ndarray, sample_rate: int) -> Envelope:
    hop = max(1, int(round(FRAME_S * sample_rate)))
    db = _frames_db(x, hop)
    top = db.max()
    a = int(np.argmax(db >= top - ATTACK_DB))
    attack_end = a * hop
    body = x[attack_end: attack_end + int(BODY_S * sample_rate)]
    rms = float(np.sqrt(np.mean(np.square(body, dtype=np.float64)))) if body.size else 0.0
    body_db = 20.0 * np.log10(rms) if rms > 0 else float("-inf")
    # release: from the last frame within RELEASE_FROM_DB of the loudest to RELEASE_TO_DB down (or the end)
    release_s = rate = None
    loud = np.flatnonzero(db >= top - RELEASE_FROM_DB)
    if top > -200 and loud.size:
        start = int(loud[-1])
        below = np.flatnonzero(db[start:] <= top - RELEASE_TO_DB)
        stop = start + int(below[0]) if below.size else len(db) - 1
        if stop - start >= 3:
            fall = float(db[start] - db[stop])
            r = fall / ((stop - start) * hop / sample_rate)
            if fall >= 6.0 and r > 1.0:
                rate = r
                release_s = float(np.clip(100.0 / r, *RELEASE_RANGE_S))
    return Envelope(attack_end, attack_end / sample_rate, body_db, release_s, rate)


@dataclass
class Loop:
    start: int
    end: int  # exclusive: the first sample after the loop (SoundFont convention)
    match_error: float
    drift_db: float
    crossfade: int
    seam_step: float = float("nan")

    @property
    def length(self) -> int:
        return self.end - self.start


def _upward_zero_crossings(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    lo = max(lo, 1)
    seg = x[lo - 1: hi]
    return lo + np.flatnonzero((seg[:-1] < 0) & (seg[1:] >= 0))


def _rms_db(x: np.ndarray) -> float:
    v = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20.0 * np.log10(max(v, 1e-12))


def find_loop(x: np.ndarray, sample_rate: int, attack_end: int, period: float | None = None,
              max_error: float = MAX_LOOP_ERROR, starts: int = 8) -> Loop | None:
    """The best loop in the stable part of note `x` (see the module docstring), or None when none is good enough."""
    from scipy.signal import correlate

    x = np.asarray(x, dtype=np.float64)
    hop = max(1, int(round(FRAME_S * sample_rate)))
    db = _frames_db(x, hop)
    top = db.max()
    if top <= -200:
        return None
    ok = db >= top - STABLE_DB
    ok[: attack_end // hop + 2] = False
    best_run, run_start = (0, 0), None
    for i, good in enumerate(np.append(ok, False)):
        if good and run_start is None:
            run_start = i
        elif not good and run_start is not None:
            if i - run_start > best_run[1] - best_run[0]:
                best_run = (run_start, i)
            run_start = None
    a, b = best_run[0] * hop, best_run[1] * hop
    half = int(round(max(0.004 * sample_rate, period or 0.0)))
    half = min(half, int(0.03 * sample_rate))
    fade = int(round(CROSSFADE_S * sample_rate))
    lmin = int(MIN_LOOP_S * sample_rate)
    lo_start = a + max(half, fade) + 8
    hi_end = min(b, len(x) - LOOP_GUARD) - half
    lmax = min(int(MAX_LOOP_S * sample_rate), int(0.75 * (hi_end - lo_start)))
    if lmax < lmin:
        return None
    cands = _upward_zero_crossings(x, lo_start, hi_end - lmin)
    cands = cands[cands <= lo_start + max(1, (hi_end - lmin - lo_start) // 2)]
    if cands.size == 0:
        return None
    picks = cands[np.unique(np.linspace(0, cands.size - 1, min(starts, cands.size)).round().astype(int))]
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    zc = np.zeros(len(x), dtype=bool)
    zc[_upward_zero_crossings(x, 1, len(x))] = True
    best: Loop | None = None
    for s in picks:
        tmpl = x[s - half: s + half]
        t_energy = float(np.dot(tmpl, tmpl))
        if t_energy <= 0:
            continue
        e_lo, e_hi = s + lmin, min(s + lmax, hi_end)
        if e_hi <= e_lo:
            continue
        region = x[e_lo - half: e_hi + half]
        cross = correlate(region, tmpl, mode="valid", method="fft")  # cross[j] = Σ x[e_lo+j+k-half]·tmpl[k]
        ends = np.arange(e_lo, e_lo + len(cross))
        mask = zc[ends]
        if not mask.any():
            continue
        ends, cross = ends[mask], cross[mask]
        x_energy = energy[ends + half] - energy[ends - half]
        err = np.sqrt(np.maximum(x_energy - 2 * cross + t_energy, 0.0) / t_energy)
        order = np.argsort(err, kind="stable")
        for j in order[:16]:  # the best few by match error; the first without level drift wins
            e = int(ends[j])
            edge = min(int(0.02 * sample_rate), (e - s) // 4)
            drift = abs(_rms_db(x[s:s + edge]) - _rms_db(x[e - edge:e]))
            if drift <= MAX_LOOP_DRIFT_DB:
                if best is None or err[j] < best.match_error:
                    best = Loop(int(s), e, float(err[j]), float(drift), min(fade, (e - s) // 4, int(s) - 1))
                break
    if best is None or best.match_error > max_error:
        return None
    return best


def apply_loop(x: np.ndarray, loop: Loop) -> np.ndarray:
    """The sample cut after the loop: the last `crossfade` samples before the loop end cross-faded into those before
    the loop start (so playing on from the end continues like playing on from just before the start), then
    LOOP_GUARD copies of the samples after the start; sets `loop.seam_step`."""
    s, e, f = loop.start, loop.end, loop.crossfade
    y = np.array(x[:e], dtype=np.float64)
    if f > 0:
        w = np.arange(1, f + 1, dtype=np.float64) / f
        y[e - f: e] = (1 - w) * y[e - f: e] + w * np.asarray(x[s - f: s], dtype=np.float64)
    y = np.concatenate([y, np.asarray(x[s: s + LOOP_GUARD], dtype=np.float64)])
    loop.seam_step = seam_step(y, s, e)
    return y


def seam_step(y: np.ndarray, start: int, end: int) -> float:
    """The step a player makes across the loop seam (y[end-1] → y[start]) over the largest step inside the loop:
    the measured discontinuity (≤ 1: no larger than the waveform's own steps, no click)."""
    inside = np.abs(np.diff(np.asarray(y[start:end], dtype=np.float64)))
    top = float(inside.max()) if inside.size else 0.0
    jump = abs(float(y[start]) - float(y[end - 1]))
    return jump / top if top > 0 else (0.0 if jump == 0 else float("inf"))
