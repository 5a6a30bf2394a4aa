"""GANSynth's Mel-IF representation (Magenta `specgrams_helper`, `mel_prog_hires`), in PyTorch.

Waves `[B, N]` <-> normalised spectrograms `[B, 2, T, F]` (channel 0: log magnitude, channel 1:
instantaneous frequency). The arithmetic follows Magenta step by step (front padding, DC bin dropped,
Magenta's own unwrap and mel matrix with its minimum band width, its pseudo-inverse built from the
normalised transpose, the fixed affine normaliser), because models trained or imported from Magenta
only sound right when the representation is the same to float precision. torch.stft/istft are not
used for that reason: their padding, windowing and normalisation conventions differ from
tf.signal's, which Magenta used.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

_MEL_BREAK_FREQUENCY_HERTZ = 700.0
_MEL_HIGH_FREQUENCY_Q = 1127.0


@dataclass(frozen=True)
class SpectralConfig:
    """Shape and normalisation of the spectrogram representation.

    Defaults are GANSynth's `mel_prog_hires`: 4 s at 16 kHz, nfft 2048, hop 512 → 128 × 1024.
    """

    sample_rate: int = 16000
    audio_length: int = 64000
    n_fft: int = 2048
    hop_length: int = 512
    frames: int = 128
    mel: bool = True
    ifreq: bool = True
    mag_normalizer_a: float = 0.0661371661726
    mag_normalizer_b: float = 0.113718730221
    p_normalizer_a: float = 0.8
    p_normalizer_b: float = 0.0

    @property
    def freq_bins(self) -> int:
        return self.n_fft // 2

    @property
    def shape(self) -> tuple[int, int]:
        """(time frames, frequency bins)."""
        return (self.frames, self.freq_bins)

    @property
    def padding(self) -> int:
        """Samples of zero padding in front of the audio (Magenta puts all of it at the front)."""
        return self.hop_length * (self.frames - 1) + self.n_fft - self.audio_length

    def frame_seconds(self) -> np.ndarray:
        """Where each time frame's window is centred, in seconds from the note's first sample (the first frames,
        centred in the front padding, are negative)."""
        return (np.arange(self.frames) * self.hop_length + self.n_fft / 2 - self.padding) / self.sample_rate

    def bin_hertz(self) -> np.ndarray:
        """Each frequency bin's centre in Hz: the weighted mean of the linear frequencies a mel band sums (Magenta's
        widened low bands included), or the linear bin's own frequency (DC dropped)."""
        linear = np.linspace(0.0, self.sample_rate / 2.0, self.freq_bins + 1)
        if not self.mel:
            return linear[1:]
        weights = linear_to_mel_matrix(self.freq_bins, self.freq_bins, self.sample_rate)  # [freq, mel]
        total = weights.sum(0)
        used = np.flatnonzero(total > 0)  # a band no linear bin falls in: between its neighbours
        centres = (weights[:, used] * np.linspace(0.0, self.sample_rate / 2.0, self.freq_bins)[:, None]).sum(0)
        return np.interp(np.arange(self.freq_bins), used, centres / total[used])

    def validate(self) -> None:
        if self.n_fft & (self.n_fft - 1):
            raise ValueError(f"n_fft must be a power of two, not {self.n_fft}")
        if self.n_fft % self.hop_length:
            raise ValueError("n_fft must be a multiple of hop_length")
        if self.padding < 0:
            raise ValueError(
                f"{self.frames} frames of hop {self.hop_length} cover fewer than audio_length={self.audio_length} samples"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SpectralConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _hertz_to_mel(freq):
    return _MEL_HIGH_FREQUENCY_Q * np.log(1.0 + (freq / _MEL_BREAK_FREQUENCY_HERTZ))


def _mel_to_hertz(mel):
    return _MEL_BREAK_FREQUENCY_HERTZ * (np.exp(mel / _MEL_HIGH_FREQUENCY_Q) - 1.0)


@functools.lru_cache(maxsize=8)
def linear_to_mel_matrix(num_mel_bins: int, num_spectrogram_bins: int, sample_rate: int) -> np.ndarray:
    """Magenta's `spectral_ops.linear_to_mel_weight_matrix` ([freq, mel], float64).

    Differs from tf.signal's by widening bands narrower than 1.5 frequency bins, so the low mel
    bands are not empty; the lowest (DC) row is zero. Spans 0 Hz to Nyquist.
    """
    lower_edge_hertz, upper_edge_hertz = 0.0, sample_rate / 2.0
    bands_to_zero = 1
    nyquist_hertz = sample_rate / 2.0
    linear_frequencies = np.linspace(0.0, nyquist_hertz, num_spectrogram_bins)[bands_to_zero:, np.newaxis]
    band_edges_mel = np.linspace(_hertz_to_mel(lower_edge_hertz), _hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)
    # These are views of one array, as in Magenta: widening band i also moves the neighbouring
    # bands' edges and centres. Keep the aliasing, or the matrix (and every sound) changes.
    lower_edge_mel = band_edges_mel[0:-2]
    center_mel = band_edges_mel[1:-1]
    upper_edge_mel = band_edges_mel[2:]

    freq_res = nyquist_hertz / float(num_spectrogram_bins)
    freq_th = 1.5 * freq_res
    for i in range(num_mel_bins):
        center_hz = _mel_to_hertz(center_mel[i])
        lower_hz = _mel_to_hertz(lower_edge_mel[i])
        upper_hz = _mel_to_hertz(upper_edge_mel[i])
        if upper_hz - lower_hz < freq_th:
            rhs = 0.5 * freq_th / (center_hz + _MEL_BREAK_FREQUENCY_HERTZ)
            dm = _MEL_HIGH_FREQUENCY_Q * np.log(rhs + np.sqrt(1.0 + rhs**2))
            lower_edge_mel[i] = center_mel[i] - dm
            upper_edge_mel[i] = center_mel[i] + dm

    lower_edge_hz = _mel_to_hertz(lower_edge_mel)[np.newaxis, :]
    center_hz = _mel_to_hertz(center_mel)[np.newaxis, :]
    upper_edge_hz = _mel_to_hertz(upper_edge_mel)[np.newaxis, :]
    lower_slopes = (linear_frequencies - lower_edge_hz) / (center_hz - lower_edge_hz)
    upper_slopes = (upper_edge_hz - linear_frequencies) / (upper_edge_hz - center_hz)
    mel_weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    return np.pad(mel_weights, [[bands_to_zero, 0], [0, 0]], "constant")


@functools.lru_cache(maxsize=8)
def mel_to_linear_matrix(num_mel_bins: int, num_spectrogram_bins: int, sample_rate: int) -> np.ndarray:
    """Magenta's approximate inverse: the transpose normalised by the column sums of M Mᵀ ([mel, freq])."""
    m = linear_to_mel_matrix(num_mel_bins, num_spectrogram_bins, sample_rate)
    m_t = np.transpose(m)
    p = np.matmul(m, m_t)
    d = [1.0 / x if np.abs(x) > 1.0e-8 else x for x in np.sum(p, axis=0)]
    return np.matmul(m_t, np.diag(d))


def _diff(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x.narrow(dim, 1, x.shape[dim] - 1) - x.narrow(dim, 0, x.shape[dim] - 1)


def unwrap(p: torch.Tensor, dim: int = -1, discont: float = math.pi) -> torch.Tensor:
    """Magenta's `spectral_ops.unwrap` (note: it never zeroes small corrections, unlike numpy's)."""
    dd = _diff(p, dim)
    ddmod = torch.remainder(dd + math.pi, 2.0 * math.pi) - math.pi
    idx = (ddmod == -math.pi) & (dd > 0)
    ddmod = torch.where(idx, torch.full_like(ddmod, math.pi), ddmod)
    ph_correct = ddmod - dd
    ph_cumsum = torch.cumsum(ph_correct, dim=dim)
    zeros = torch.zeros_like(p.narrow(dim, 0, 1))
    return p + torch.cat([zeros, ph_cumsum], dim=dim)


def instantaneous_frequency(phase: torch.Tensor, time_dim: int = -2) -> torch.Tensor:
    """Time derivative of the unwrapped phase, divided by π; the first frame keeps its phase."""
    dphase = _diff(unwrap(phase, dim=time_dim), time_dim)
    first = phase.narrow(time_dim, 0, 1)
    return torch.cat([first, dphase], dim=time_dim) / math.pi


class MelIF:
    """Converts waves to normalised (Mel-)IF spectrograms and back, exactly as GANSynth does.

    Works on any device; matrices and windows are cached per (device, dtype).
    """

    eps = 1.0e-6

    def __init__(self, config: SpectralConfig | None = None):
        self.config = config or SpectralConfig()
        self.config.validate()
        self._cache: dict = {}

    # -- constants -----------------------------------------------------------------------------
    def _const(self, name: str, device, dtype=torch.float32) -> torch.Tensor:
        key = (name, str(device), dtype)
        if key not in self._cache:
            c = self.config
            if name == "window":
                n = torch.arange(c.n_fft, dtype=torch.float64)
                value = 0.5 - 0.5 * torch.cos(2.0 * math.pi * n / c.n_fft)  # periodic Hann (tf.signal)
            elif name == "inverse_window":
                window = self._const("window", "cpu", torch.float64)
                # tf.signal.inverse_stft_window_fn: window / Σ over overlapping frames of window².
                overlaps = -(-c.n_fft // c.hop_length)
                denom = torch.nn.functional.pad(window.square(), (0, overlaps * c.hop_length - c.n_fft))
                denom = denom.reshape(overlaps, c.hop_length).sum(0, keepdim=True).repeat(overlaps, 1).reshape(-1)
                value = (window.float() / denom[: c.n_fft].float()).double()
            elif name == "l2mel":
                value = torch.from_numpy(linear_to_mel_matrix(c.freq_bins, c.freq_bins, c.sample_rate))
            elif name == "mel2l":
                value = torch.from_numpy(mel_to_linear_matrix(c.freq_bins, c.freq_bins, c.sample_rate))
            else:  # pragma: no cover
                raise KeyError(name)
            # Magenta casts the float64 matrices to float32 (tf.to_float) before use.
            self._cache[key] = value.to(torch.float32).to(device=device, dtype=dtype)
        return self._cache[key]

    def _mel_matmul(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """`x @ M` over the last axis for the mel matrices, which are 99.8% zeros.

        On the CPU a sparse (CSR) product is about 4× faster than the dense one and skips only exact zeros.
        """
        matrix = self._const(name, x.device)
        if x.device.type != "cpu" or x.dtype != torch.float32:
            return x @ matrix
        key = (name + "_csr_t", "cpu", torch.float32)
        if key not in self._cache:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
                self._cache[key] = matrix.t().contiguous().to_sparse_csr()
        flat = x.reshape(-1, x.shape[-1])
        return torch.sparse.mm(self._cache[key], flat.t()).t().reshape(x.shape[:-1] + (matrix.shape[1],))

    # -- STFT ----------------------------------------------------------------------------------
    def waves_to_stfts(self, waves: torch.Tensor) -> torch.Tensor:
        """[B, N] float → complex [B, T, F] (DC dropped)."""
        c = self.config
        waves = torch.as_tensor(waves, dtype=torch.float32)
        if waves.shape[-1] != c.audio_length:
            raise ValueError(f"expected {c.audio_length} samples, got {waves.shape[-1]}")
        padded = torch.nn.functional.pad(waves, (c.padding, 0))
        frames = padded.unfold(-1, c.n_fft, c.hop_length) * self._const("window", waves.device)
        stfts = torch.fft.rfft(frames, n=c.n_fft)
        return stfts[..., 1:]

    def stfts_to_waves(self, stfts: torch.Tensor) -> torch.Tensor:
        """complex [B, T, F] → [B, N] by inverse STFT with tf.signal's inverse window and overlap-add."""
        c = self.config
        stfts = torch.nn.functional.pad(stfts, (1, 0))  # restore a zero DC bin
        frames = torch.fft.irfft(stfts, n=c.n_fft) * self._const("inverse_window", stfts.device)
        batch, n_frames = frames.shape[0], frames.shape[1]
        ratio = c.n_fft // c.hop_length
        pieces = frames.reshape(batch, n_frames, ratio, c.hop_length)
        out = frames.new_zeros(batch, n_frames + ratio - 1, c.hop_length)
        for k in range(ratio):
            out[:, k : k + n_frames] += pieces[:, :, k]
        waves = out.reshape(batch, -1)
        return waves[:, c.padding : c.padding + c.audio_length]

    # -- spectrograms ----------------------------------------------------------------------------
    def stfts_to_specgrams(self, stfts: torch.Tensor) -> torch.Tensor:
        """complex [B, T, F] → [B, 2, T, F] (log magnitude, IF)."""
        logmag = torch.log(stfts.abs() + self.eps)
        phase = torch.angle(stfts)
        p = instantaneous_frequency(phase) if self.config.ifreq else phase / math.pi
        return torch.stack([logmag, p], dim=1)

    def specgrams_to_stfts(self, specgrams: torch.Tensor) -> torch.Tensor:
        logmag, p = specgrams[:, 0], specgrams[:, 1]
        mag = torch.exp(logmag)
        phase = torch.cumsum(p * math.pi, dim=-2) if self.config.ifreq else p * math.pi
        return torch.polar(mag, phase)

    def specgrams_to_melspecgrams(self, specgrams: torch.Tensor) -> torch.Tensor:
        if not self.config.mel:
            return specgrams
        logmag, p = specgrams[:, 0], specgrams[:, 1]
        mag2 = torch.exp(2.0 * logmag)
        phase = torch.cumsum(p * math.pi, dim=-2)
        logmelmag2 = torch.log(self._mel_matmul(mag2, "l2mel") + self.eps)
        mel_p = instantaneous_frequency(self._mel_matmul(phase, "l2mel"))
        return torch.stack([logmelmag2, mel_p], dim=1)

    def melspecgrams_to_specgrams(self, melspecgrams: torch.Tensor) -> torch.Tensor:
        if not self.config.mel:
            return melspecgrams
        logmelmag2, mel_p = melspecgrams[:, 0], melspecgrams[:, 1]
        mag2 = self._mel_matmul(torch.exp(logmelmag2), "mel2l")
        logmag = 0.5 * torch.log(mag2 + self.eps)
        mel_phase = torch.cumsum(mel_p * math.pi, dim=-2)
        p = instantaneous_frequency(self._mel_matmul(mel_phase, "mel2l"))
        return torch.stack([logmag, p], dim=1)

    # -- normalisation -------------------------------------------------------------------------
    def _affine(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        a = torch.tensor([c.mag_normalizer_a, c.p_normalizer_a], dtype=torch.float32, device=device)
        b = torch.tensor([c.mag_normalizer_b, c.p_normalizer_b], dtype=torch.float32, device=device)
        return a.view(1, 2, 1, 1), b.view(1, 2, 1, 1)

    def normalize(self, specgrams: torch.Tensor) -> torch.Tensor:
        a, b = self._affine(specgrams.device)
        return specgrams * a + b

    def denormalize(self, specgrams: torch.Tensor) -> torch.Tensor:
        a, b = self._affine(specgrams.device)
        return (specgrams - b) / a

    # -- end to end ------------------------------------------------------------------------------
    def waves_to_specgrams(self, waves: torch.Tensor | np.ndarray, normalize: bool = True) -> torch.Tensor:
        """[B, N] waves → [B, 2, T, F] (normalised unless told otherwise)."""
        waves = torch.as_tensor(waves, dtype=torch.float32)
        specs = self.specgrams_to_melspecgrams(self.stfts_to_specgrams(self.waves_to_stfts(waves)))
        return self.normalize(specs) if normalize else specs

    def specgrams_to_waves(self, specgrams: torch.Tensor, normalized: bool = True) -> torch.Tensor:
        """[B, 2, T, F] → [B, N] waves (float32)."""
        specgrams = specgrams.float()
        if normalized:
            specgrams = self.denormalize(specgrams)
        if not (self.config.mel and self.config.ifreq):
            return self.stfts_to_waves(self.specgrams_to_stfts(self.melspecgrams_to_specgrams(specgrams)))
        # GANSynth's chain mel IF → linear IF → phase (melspecgrams_to_specgrams, then specgrams_to_stfts)
        # unwraps and differentiates the linear phase only to integrate it straight back: the phase it hands
        # to polar() differs from the mel product's by multiples of 2π (and rounding). Skipping the round trip,
        # and exp(½·log(m + eps)) for √(m + eps), halves the inverse's time; the waves agree with the chain to
        # float32 rounding (tests/test_spectral.py).
        logmelmag2, mel_p = specgrams[:, 0], specgrams[:, 1]
        mag = self._mel_matmul(torch.exp(logmelmag2), "mel2l").add_(self.eps).sqrt_()
        phase = self._mel_matmul(torch.cumsum(mel_p * math.pi, dim=-2), "mel2l")
        return self.stfts_to_waves(torch.polar(mag, phase))
