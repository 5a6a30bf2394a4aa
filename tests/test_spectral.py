"""The Mel-IF representation: Magenta's inverse, round trips on musical audio, shapes, normaliser."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ganspacesynth.audio.spectral import MelIF, SpectralConfig, linear_to_mel_matrix, mel_to_linear_matrix

SR = 16000


def harmonic_tone(n: int, f0: float = 220.0, vibrato_hz: float = 5.0, depth: float = 0.01, decay: float = 1.5) -> np.ndarray:
    t = np.arange(n) / SR
    inst_f = f0 * (1 + depth * np.sin(2 * np.pi * vibrato_hz * t))
    phase = 2 * np.pi * np.cumsum(inst_f) / SR
    wave = sum((0.6 / k) * np.sin(k * phase) for k in range(1, 9))
    env = np.minimum(t / 0.01, 1.0) * np.exp(-t * decay)
    return (wave * env).astype(np.float32)


def noise_burst(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    env = np.exp(-t * 8.0) * (t < 1.0)
    return (0.5 * rng.standard_normal(n) * env).astype(np.float32)


def log_spectral_distance(a: np.ndarray, b: np.ndarray, n_fft: int = 1024, hop: int = 256) -> float:
    """RMS difference of log power spectra in dB, averaged over frames with energy."""
    def spec(x):
        x = torch.from_numpy(x)
        s = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs().square()
        return 10 * torch.log10(s + 1e-10)

    sa, sb = spec(a), spec(b)
    floor = sa.max() - 80.0  # an 80 dB range, as audible in practice; avoids log(0) between harmonics
    sa, sb = sa.clamp(min=floor), sb.clamp(min=floor)
    active = sa.max(dim=0).values > sa.max() - 60  # ignore silent frames
    d = (sa - sb)[:, active]
    return float(torch.sqrt(d.square().mean(dim=0)).mean())


@pytest.fixture(scope="module")
def mel_if() -> MelIF:
    return MelIF(SpectralConfig())


def test_shapes_match_gansynth(mel_if):
    c = mel_if.config
    assert c.shape == (128, 1024)
    assert c.padding == 3072  # 512 * 127 + 2048 - 64000, all at the front
    specs = mel_if.waves_to_specgrams(np.zeros((2, 64000), np.float32))
    assert specs.shape == (2, 2, 128, 1024)


def test_magenta_inverse_matches_reference(mel_if, magenta_fixture_dir):
    """Magenta's own denormalised spectrograms → waves, against Magenta's waves."""
    ref = np.load(magenta_fixture_dir / "expected.npz")
    specs = torch.from_numpy(ref["specgram_denorm"]).permute(0, 3, 1, 2)  # the fixture keeps the first note
    waves = mel_if.specgrams_to_waves(specs, normalized=False).numpy()
    rel = np.linalg.norm(waves - ref["waves"][:1]) / np.linalg.norm(ref["waves"][:1])
    assert rel < 1e-3, rel
    # The normaliser is Magenta's affine map.
    pred = torch.from_numpy(ref["predictions"][:1]).permute(0, 3, 1, 2)
    den = mel_if.denormalize(pred).permute(0, 2, 3, 1).numpy()
    assert np.allclose(den, ref["specgram_denorm"], rtol=1e-5, atol=1e-5)


def test_mel_matrix_properties():
    m = linear_to_mel_matrix(1024, 1024, SR)
    inv = mel_to_linear_matrix(1024, 1024, SR)
    assert m.shape == (1024, 1024) and inv.shape == (1024, 1024)
    assert np.all(m[0] == 0)  # the DC row is dropped as in HTK/Magenta
    # Magenta's minimum band width gives every mel band but the lowest (which sits on the dropped DC bin) a bin.
    assert np.all((m > 0).sum(axis=0)[1:] >= 1)
    # Mel warping then its approximate inverse keeps a smooth spectrum within a few percent.
    smooth = np.exp(-np.linspace(0, 4, 1024))[None]
    back = (smooth @ m) @ inv
    assert np.median(np.abs(back[0, 50:] - smooth[0, 50:]) / smooth[0, 50:]) < 0.05


@pytest.mark.parametrize("signal", ["tone", "noise"])
def test_linear_if_round_trip_is_near_exact(signal):
    """Without mel warping the STFT/IF round trip is exact up to float error.

    The last n_fft samples are excluded: with all padding at the front (as in Magenta) the final
    window is not fully overlapped, the "edge effects in the tail" Magenta's comment mentions.
    """
    cfg = dataclasses.replace(SpectralConfig(), mel=False)
    m = MelIF(cfg)
    x = harmonic_tone(64000) if signal == "tone" else noise_burst(64000)
    y = m.specgrams_to_waves(m.waves_to_specgrams(x[None]))[0].numpy()
    core = slice(0, 64000 - 2048)
    err = np.linalg.norm(y[core] - x[core]) / np.linalg.norm(x[core])
    # float32 phase accumulation (cumsum of IF, as Magenta) limits noise, whose IF is wild, to ~1e-2.
    assert err < (1e-3 if signal == "tone" else 3e-2), err


@pytest.mark.heavy
def test_mel_if_round_trip_on_musical_audio(mel_if):
    """The Mel-IF round trip is lossy (mel pseudo-inverse) but keeps the sound: LSD in dB."""
    tone = harmonic_tone(64000)
    noise = noise_burst(64000)
    out = mel_if.specgrams_to_waves(mel_if.waves_to_specgrams(np.stack([tone, noise]))).numpy()
    lsd_tone = log_spectral_distance(tone, out[0])
    lsd_noise = log_spectral_distance(noise, out[1])
    print(f"Mel-IF round trip LSD: tone {lsd_tone:.2f} dB, noise {lsd_noise:.2f} dB")
    # Measured: tone ≈ 1.9 dB; noise ≈ 9.6 dB (mel bands average the phase of noisy bins away).
    assert lsd_tone < 4.0
    assert lsd_noise < 12.0
    # A semitone away is much further than the round trip: the metric discriminates.
    assert log_spectral_distance(tone, harmonic_tone(64000, f0=233.08)) > 3 * lsd_tone
    # Energy is kept within 1.5 dB.
    ratio_db = 10 * np.log10(np.sum(out[0] ** 2) / np.sum(tone**2))
    assert abs(ratio_db) < 1.5, ratio_db


def test_normalised_range_and_small_config():
    cfg = SpectralConfig(audio_length=16384, n_fft=512, hop_length=128, frames=128)
    m = MelIF(cfg)
    x = harmonic_tone(16384, f0=440.0)
    s = m.waves_to_specgrams(x[None])
    assert s.shape == (1, 2, 128, 256)
    # Normalised values of a real note stay in a bounded range around [-1, 1].
    assert float(s.abs().max()) < 3.0
    y = m.specgrams_to_waves(s)[0].numpy()
    assert y.shape == (16384,)
    assert log_spectral_distance(x, y, n_fft=256, hop=64) < 8.0


def test_invalid_config_is_refused():
    with pytest.raises(ValueError):
        SpectralConfig(n_fft=1000).validate()
    with pytest.raises(ValueError):
        SpectralConfig(frames=64).validate()  # too few frames for 64000 samples
    with pytest.raises(ValueError):
        MelIF().waves_to_specgrams(np.zeros((1, 1000), np.float32))


@pytest.mark.heavy
def test_inverse_shortcut_equals_gansynths_chain(mel_if):
    """specgrams_to_waves skips the linear phase's unwrap/differentiate/integrate round trip; the waves must
    equal GANSynth's full chain (mel IF → linear IF → phase → STFT) to float32 rounding."""
    specs = mel_if.waves_to_specgrams(np.stack([harmonic_tone(64000), noise_burst(64000)]))
    chain = mel_if.stfts_to_waves(mel_if.specgrams_to_stfts(mel_if.melspecgrams_to_specgrams(mel_if.denormalize(specs))))
    fast = mel_if.specgrams_to_waves(specs)
    for a, b in zip(fast.numpy(), chain.numpy()):
        rel = np.linalg.norm(a - b) / np.linalg.norm(b)
        assert rel < 2e-5, rel
