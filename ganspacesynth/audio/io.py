"""Reading and writing audio: any format soundfile reads, resampled with soxr, mixed to mono."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import UserError
from ..fileio import atomic_path


def read_audio(path: str | os.PathLike, sample_rate: int | None = 16000, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file as float32, mixed to mono and resampled to `sample_rate` (None keeps the file's rate).

    Returns (samples, rate); samples are `[n]` when mono, else `[n, channels]`.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"audio file not found: {path}")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise UserError(f"cannot read audio file {path}: {exc}") from None
    if mono:
        data = data.mean(axis=1)
    if sample_rate is not None and rate != sample_rate:
        data = resample(data, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(data, dtype=np.float32), int(rate)


def resample(data: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """High-quality resampling (soxr VHQ)."""
    import soxr

    if rate_in == rate_out:
        return data
    return soxr.resample(data, rate_in, rate_out, quality="VHQ").astype(np.float32)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write a WAV file atomically (temp file, then rename). Samples are clipped to [-1, 1]."""
    path = Path(path)
    samples = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, int(sample_rate), subtype=subtype, format="WAV")
    return path


#: File name endings that are meant to be audio: a file with one of these that soundfile cannot
#: read is reported as broken instead of being skipped silently.
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .ogg .oga .opus .aif .aiff .aifc .mp3 .au .snd .caf .w64 .rf64 .voc .sd2".split()
)

#: Sample formats that keep full resolution (the original make_dataset accepted int16 WAV only).
LOSSLESS_SUBTYPES = frozenset({"PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})


def list_audio_files(root: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """All files under `root` (recursive, sorted, hidden ones skipped) that soundfile can open.

    Returns (readable, broken): `broken` lists files with an audio extension that soundfile
    cannot open; other unreadable files (READMEs, images) are ignored.
    """
    root = Path(root)
    if not root.is_dir():
        if root.exists():
            raise UserError(f"{root} is a file, not a folder: give the folder that holds the audio files")
        raise UserError(f"input folder not found: {root}")
    readable, broken = [], []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        try:
            sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
            if path.suffix.lower() in AUDIO_EXTENSIONS:
                broken.append(path)
            continue
        readable.append(path)
    return readable, broken


def rms_db(samples: np.ndarray) -> float:
    """Root-mean-square level in dBFS (−inf dB for digital silence)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples))))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def fade(samples: np.ndarray, fade_in: int = 0, fade_out: int = 0) -> np.ndarray:
    """Linear fade-in over the first `fade_in` samples and fade-out over the last `fade_out` (a copy)."""
    out = np.array(samples, dtype=np.float32, copy=True)
    n = out.shape[0]
    if fade_in > 0:
        k = min(fade_in, n)
        out[:k] *= np.linspace(0.0, 1.0, k, endpoint=False, dtype=np.float32)
    if fade_out > 0:
        k = min(fade_out, n)
        out[n - k :] *= np.linspace(1.0, 0.0, k, endpoint=True, dtype=np.float32)
    return out


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] → int16 (clipped, rounded), as soundfile writes PCM_16."""
    return np.round(np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)
