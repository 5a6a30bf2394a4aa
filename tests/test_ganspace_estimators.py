"""GANSpace estimators recover directions planted in a synthetic generator; cov is exact PCA, whatever the batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganspacesynth.errors import UserError
from ganspacesynth.ganspace.estimators import CovarianceEstimator, get_estimator
from ganspacesynth.ganspace.fit import fit_components
from ganspacesynth.ganspace.sampling import ActivationSampler, latent_rows

DIM = 48
STDEVS = np.array([6.0, 4.0, 2.5, 1.5])
NOISE = 0.1


def planted(seed=0):
    """A synthetic generator: mean + Σ sᵢ·aᵢ·uᵢ + isotropic noise, with known orthonormal uᵢ."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    dirs = basis[:, :len(STDEVS)].T  # [4, DIM]
    mean = rng.standard_normal(DIM) * 3

    def sample(n, source="gauss"):
        if source == "gauss":
            a = rng.standard_normal((n, len(STDEVS)))
        else:  # unit-variance uniform sources (non-Gaussian, for ICA)
            a = rng.uniform(-np.sqrt(3), np.sqrt(3), (n, len(STDEVS)))
        x = mean + (a * STDEVS) @ dirs + NOISE * rng.standard_normal((n, DIM))
        return x.astype(np.float32)

    return dirs, mean, sample


def feed(est, x, batch):
    for i in range(0, len(x), batch):
        est.fit_partial(torch.from_numpy(x[i:i + batch]))
    return est.components()


@pytest.mark.parametrize("name", ["cov", "ipca", "pca", "randomized"])
def test_estimators_recover_planted_directions(name):
    dirs, mean, sample = planted(1)
    x = sample(6000)
    dec = feed(get_estimator(name, 8, DIM, seed=0), x, 500)
    cos = np.abs(np.sum(dec.comp[:4] * dirs, axis=1))
    assert np.all(cos > 0.995), cos
    np.testing.assert_allclose(dec.stdev[:4], STDEVS, rtol=0.06)
    np.testing.assert_allclose(dec.mean, mean, atol=0.25)
    np.testing.assert_allclose(np.linalg.norm(dec.comp, axis=1), 1.0, atol=1e-5)
    assert np.all(np.diff(dec.stdev) <= 1e-6), "components must be sorted by variance"
    planted_share = (STDEVS**2).sum() / ((STDEVS**2).sum() + DIM * NOISE**2)
    assert dec.var_ratio[:4].sum() == pytest.approx(planted_share, rel=0.03)


def test_ica_recovers_non_orthogonal_sources():
    rng = np.random.default_rng(3)
    mixing = rng.standard_normal((3, DIM))  # three non-orthogonal directions
    mixing /= np.linalg.norm(mixing, axis=1, keepdims=True)
    a = rng.uniform(-1, 1, (8000, 3)) * np.array([3.0, 2.0, 1.0])
    x = (a @ mixing + 0.01 * rng.standard_normal((8000, DIM))).astype(np.float32)
    dec = feed(get_estimator("ica", 3, DIM, seed=0), x, 1000)
    cos = np.abs(dec.comp @ mixing.T)  # [found, planted]
    assert np.all(cos.max(axis=0) > 0.98), cos


def test_spca_finds_sparse_supports():
    rng = np.random.default_rng(4)
    dirs = np.zeros((2, DIM))
    dirs[0, :6] = 1 / np.sqrt(6)
    dirs[1, 10:14] = 0.5
    x = (rng.standard_normal((3000, 2)) * [3.0, 2.0]) @ dirs + 0.05 * rng.standard_normal((3000, DIM))
    dec = feed(get_estimator("spca", 2, DIM, seed=0, sparsity=1.0), x.astype(np.float32), 1000)
    cos = np.abs(dec.comp @ dirs.T)
    assert cos[0, 0] > 0.98 and cos[1, 1] > 0.98, cos
    assert np.abs(dec.comp[0, 14:]).max() < 0.05  # off-support weights stay (near) zero


def test_cov_is_exact_pca_and_ignores_batching():
    from sklearn.decomposition import PCA

    _, _, sample = planted(2)
    x = sample(900)
    ref = PCA(svd_solver="full").fit(x.astype(np.float64))
    a = feed(CovarianceEstimator(), x, 7)
    b = feed(CovarianceEstimator(), x, 900)
    np.testing.assert_allclose(a.comp, b.comp, atol=1e-6)
    np.testing.assert_allclose(a.stdev**2, ref.explained_variance_, rtol=1e-5)
    np.testing.assert_allclose(a.var_ratio, ref.explained_variance_ratio_, rtol=1e-5, atol=1e-9)
    cos = np.abs(np.sum(a.comp[:20] * ref.components_[:20], axis=1))
    assert np.all(cos > 1 - 1e-6)
    np.testing.assert_allclose(a.mean, x.mean(0), atol=1e-5)
    # A top-k subset (MRRR) gives the same leading directions as the full solve.
    top = feed(CovarianceEstimator(n_components=5), x, 100)
    np.testing.assert_allclose(top.comp, a.comp[:5], atol=1e-6)


def test_estimator_errors():
    with pytest.raises(UserError, match="unknown estimator"):
        get_estimator("svd", 3, DIM)
    with pytest.raises(UserError, match="between 1 and the layer size"):
        get_estimator("cov", DIM + 1, DIM)
    est = get_estimator("pca", 10, DIM)
    est.fit_partial(np.zeros((5, DIM), np.float32))
    with pytest.raises(UserError, match="at least 10 samples"):
        est.components()


def test_latents_do_not_depend_on_batching():
    whole = latent_rows(0, 2500, 8, seed=5)
    parts = np.concatenate([latent_rows(a, min(a + 333, 2500), 8, seed=5) for a in range(0, 2500, 333)])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(whole, latent_rows(0, 2500, 8, seed=6))
    assert not np.array_equal(whole, latent_rows(0, 2500, 8, seed=5, stream=1))
    assert abs(whole.std() - 1) < 0.02


def test_activation_sampler_batching_and_pitch_cycle(tiny_synth):
    a = ActivationSampler(tiny_synth, "conv0", [30, 40], seed=1, batch_size=7)
    b = ActivationSampler(tiny_synth, "conv0", [30, 40], seed=1, batch_size=64)
    xa = torch.cat([x for _, x in a.iterate(0, 50)])
    xb = torch.cat([x for _, x in b.iterate(0, 50)])
    torch.testing.assert_close(xa, xb, rtol=1e-5, atol=1e-6)
    z = latent_rows(0, 50, tiny_synth.latent_size, seed=1)
    direct = tiny_synth.activations(z[1:2], 40, "conv0").reshape(1, -1)  # sample 1 plays pitches[1]
    torch.testing.assert_close(xa[1:2], direct, rtol=1e-5, atol=1e-6)


@pytest.mark.heavy
def test_fit_components_matches_sklearn_on_model_activations(tiny_synth):
    from sklearn.decomposition import PCA

    comps = fit_components(tiny_synth, "conv0", 1100, pitches=[40], seed=2, batch_size=100, regression_samples=0)
    other = fit_components(tiny_synth, "conv0", 1100, pitches=[40], seed=2, batch_size=333, regression_samples=0)
    np.testing.assert_allclose(comps.comp[:32], other.comp[:32], atol=1e-5)
    sampler = ActivationSampler(tiny_synth, "conv0", [40], seed=2, batch_size=1100)
    _, x = sampler.batch(0, 1100)
    ref = PCA(n_components=32, svd_solver="full").fit(x.numpy().astype(np.float64))
    cos = np.abs(np.sum(comps.comp[:32] * ref.components_, axis=1))
    assert np.all(cos > 1 - 1e-4), cos.min()
    np.testing.assert_allclose(comps.stdev[:32] ** 2, ref.explained_variance_, rtol=1e-4)
    assert comps.meta["sample_count"] == 1100 and comps.z_comp is None


def test_float32_solve_for_large_layers_matches_float64(monkeypatch):
    """Large layers solve in float32; the leading directions and stdevs match the float64 solve."""
    from ganspacesynth.ganspace import eigen
    from ganspacesynth.ganspace import estimators as E

    rng = np.random.default_rng(3)
    dim = 96
    scales = np.linspace(5.0, 0.1, dim)
    x = rng.standard_normal((2000, dim)) * scales @ np.linalg.qr(rng.standard_normal((dim, dim)))[0].T + 3.0
    exact = E.CovarianceEstimator(None)
    exact.fit(x)
    ref = exact.components()
    monkeypatch.setattr(eigen, "FLOAT32_SOLVE_ABOVE", 32)
    fast = E.CovarianceEstimator(None)
    fast.fit(x)
    dec = fast.components()
    cos = np.abs(np.sum(dec.comp[:16] * ref.comp[:16], axis=1))
    assert cos.min() > 1 - 1e-5, cos.min()
    np.testing.assert_allclose(dec.stdev[:16], ref.stdev[:16], rtol=1e-5)
    np.testing.assert_allclose(dec.mean, ref.mean, rtol=1e-12)
