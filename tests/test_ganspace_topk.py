"""Top-k GANSpace without a full eigendecomposition: the subspace-iteration solver agrees with LAPACK on the same
covariance (top-16 |cos| ≥ 0.9999, explained-variance ratios within 1e-6), falls back to LAPACK when the
spectrum has no gap, and float32 products keep the covariance exact to float32 rounding of one chunk."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ganspacesynth.ganspace import eigen
from ganspacesynth.ganspace import estimators as E
from ganspacesynth.ganspace.eigen import block_size, top_eigh
from ganspacesynth.ganspace.fit import DEFAULT_COMPONENTS, fit_components, resolve_n_components

pytestmark = pytest.mark.heavy  # its tests take over about 1 s each: outside the quick tier (docs/DEVELOPING.md)

DIM = 400
LATENT = 40


def generator_like(n=3000, seed=0, dim=DIM, latent=LATENT):
    """Samples shaped like a generator layer: a nonlinear image of a `latent`-dim Gaussian (a cliff in the
    spectrum after `latent` directions, near-degenerate eigenvalues before it) plus a small tail and a mean."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((latent, dim)) / np.sqrt(latent)
    z = rng.standard_normal((n, latent))
    h = z @ w
    x = np.where(h > 0, h, 0.2 * h) + 0.05 * rng.standard_normal((n, dim)) + 4.0
    return x.astype(np.float32)


def reference(cov):
    w, v = scipy.linalg.eigh(cov)
    return w[::-1], v[:, ::-1]


def test_top_eigh_matches_lapack():
    x = generator_like().astype(np.float64)
    cov = np.asfortranarray(np.cov(x, rowvar=False))
    w_ref, v_ref = reference(cov)
    total = np.trace(cov)
    for k in (16, 32):
        w, v, info = top_eigh(cov, k, min_block=LATENT)
        assert info["method"] == "subspace-iteration" and info["max_relative_residual"] <= 1e-7
        assert info["block"] == block_size(k, DIM, LATENT) < DIM
        cos = np.abs(np.sum(v[:, :16] * v_ref[:, :16], axis=0))
        assert cos.min() >= 0.9999, cos
        assert np.abs(w / total - w_ref[:k] / total).max() <= 1e-6
        np.testing.assert_allclose(v.T @ v, np.eye(k), atol=1e-10)
    # Deterministic: the same matrix gives the same bits.
    a = top_eigh(cov, 16, min_block=LATENT)
    b = top_eigh(cov, 16, min_block=LATENT)
    np.testing.assert_array_equal(a[1], b[1])


def test_top_eigh_gives_up_without_a_gap():
    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    flat = np.linspace(1.0, 0.9, DIM)  # no gap anywhere: subspace iteration would crawl
    cov = np.asfortranarray((basis * flat) @ basis.T)
    logged = []
    assert top_eigh(cov, 8, log=logged.append) is None
    assert "LAPACK" in logged[-1]


@pytest.mark.parametrize("solver", ["iterative", "auto"])
def test_estimator_iterative_equals_lapack_on_the_same_covariance(solver, monkeypatch):
    monkeypatch.setattr(eigen, "ITERATIVE_MIN_DIM", 100)  # let "auto" choose subspace iteration at this size
    x = generator_like(seed=2)
    fast = E.CovarianceEstimator(24, solver=solver, min_block=LATENT)
    exact = E.CovarianceEstimator(24, solver="lapack")
    for i in range(0, len(x), 500):
        fast.fit_partial(x[i:i + 500])
        exact.fit_partial(x[i:i + 500])
    a, b = fast.components(), exact.components()
    assert a.info["method"] == "subspace-iteration" and b.info["method"] == "lapack-evr"
    cos = np.abs(np.sum(a.comp[:16] * b.comp[:16], axis=1))
    assert cos.min() >= 0.9999, cos
    assert np.abs(a.var_ratio - b.var_ratio).max() <= 1e-6
    np.testing.assert_allclose(a.stdev, b.stdev, rtol=1e-6)
    np.testing.assert_array_equal(a.mean, b.mean)


def test_estimator_falls_back_to_lapack(monkeypatch):
    monkeypatch.setattr(eigen, "ITERATIVE_MIN_DIM", 100)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 300)).astype(np.float32)  # isotropic: no gap
    est = E.CovarianceEstimator(8)
    est.fit(x)
    dec = est.components()
    assert dec.info["method"] == "lapack-evr" and "did not converge" in dec.info["note"]
    w_ref, v_ref = reference(np.cov(x.astype(np.float64), rowvar=False))
    np.testing.assert_allclose(dec.stdev ** 2, w_ref[:8], rtol=1e-6)


def test_float32_products_match_float64():
    """Chunked float32 products about a shift: the covariance of data with a large mean to ~1e-6."""
    x = generator_like(n=1500, seed=4, dim=64, latent=8) + np.float32(50.0)
    f32 = E.CovarianceEstimator(products="float32", chunk_rows=200)
    f64 = E.CovarianceEstimator(products="float64")
    for i in range(0, len(x), 37):  # batches straddle the chunks
        f32.fit_partial(x[i:i + 37])
        f64.fit_partial(x[i:i + 37])
    m32, c32 = f32.covariance()
    m64, c64 = f64.covariance()
    np.testing.assert_allclose(m32.numpy(), m64.numpy(), rtol=0, atol=1e-12)
    assert float((c32 - c64).abs().max() / c64.abs().max()) < 2e-6
    ref = np.cov(x.astype(np.float64), rowvar=False)
    assert np.abs(c64.numpy() - ref).max() / np.abs(ref).max() < 1e-12
    a, b = f32.components(), f64.components()
    assert a.info["products"] == "float32" and b.info["products"] == "float64"
    cos = np.abs(np.sum(a.comp[:8] * b.comp[:8], axis=1))
    assert cos.min() > 1 - 1e-6, cos
    np.testing.assert_allclose(a.var_ratio[:8], b.var_ratio[:8], rtol=1e-5)


def test_products_default_by_width():
    assert E.CovarianceEstimator().products_for(E.FLOAT32_PRODUCTS_MIN_DIM) == "float32"
    assert E.CovarianceEstimator().products_for(E.FLOAT32_PRODUCTS_MIN_DIM - 1) == "float64"
    assert E.CovarianceEstimator(products="float64").products_for(8192) == "float64"


def test_state_dict_continues_bit_for_bit():
    """An estimator rebuilt from state_dict() (pending float32 rows included) ends where the original would."""
    x = generator_like(n=900, seed=5, dim=48, latent=6)
    straight = E.CovarianceEstimator(products="float32", chunk_rows=128)
    for i in range(0, 900, 50):
        straight.fit_partial(x[i:i + 50])
    first = E.CovarianceEstimator(products="float32", chunk_rows=128)
    for i in range(0, 450, 50):
        first.fit_partial(x[i:i + 50])
    state = {k: np.array(v) for k, v in first.state_dict().items()}
    assert len(state["pending"]) == 450 % 128
    second = E.CovarianceEstimator(products="float32", chunk_rows=128)
    second.load_state_dict(state)
    for i in range(450, 900, 50):
        second.fit_partial(x[i:i + 50])
    for a, b in zip(straight.state(), second.state()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    np.testing.assert_array_equal(straight.components().comp, second.components().comp)


def test_default_component_count(tiny_synth):
    assert resolve_n_components("default", 8192) == DEFAULT_COMPONENTS == 256
    assert resolve_n_components("default", 100) == 100
    assert resolve_n_components("all", 8192) == resolve_n_components(None, 8192) == 8192
    comps = fit_components(tiny_synth, "conv0", 600, pitches=[40], regression_samples=0)
    assert comps.n_components == 256 and comps.meta["solver"]["method"] == "lapack-evr"


def test_fit_components_iterative_equals_lapack(tiny_synth):
    """On real activations (tiny conv0, 512 dims, latent 32): top 16 by subspace iteration = LAPACK's."""
    common = dict(pitches=[40], seed=3, batch_size=200, regression_samples=0, n_components=16)
    fast = fit_components(tiny_synth, "conv0", 1200, solver="iterative", **common)
    exact = fit_components(tiny_synth, "conv0", 1200, solver="lapack", **common)
    assert fast.meta["solver"]["method"] == "subspace-iteration"
    assert fast.meta["solver"]["block"] == 32 + 64  # latent size + oversampling
    cos = np.abs(np.sum(fast.comp * exact.comp, axis=1))
    assert cos.min() >= 0.9999, cos
    assert np.abs(fast.var_ratio - exact.var_ratio).max() <= 1e-6


def test_regression_in_activation_space_equals_coordinates(tiny_synth):
    """With every component kept, regressing z on x and mapping to the components (no projection of the
    samples) gives the latent directions of the coordinate regression."""
    from ganspacesynth.ganspace.regression import RegressionAccumulator
    from ganspacesynth.ganspace.sampling import STREAM_REGRESSION, ActivationSampler

    comps = fit_components(tiny_synth, "conv0", 1500, pitches=[40], n_components="all", regression_samples=0)
    dec = E.Decomposition(comps.comp, comps.stdev, comps.var_ratio, comps.mean, 1500)
    fast = RegressionAccumulator(dec, tiny_synth.latent_size)
    slow = RegressionAccumulator(dec, tiny_synth.latent_size, activation_space=False)
    assert fast.in_activation_space and not slow.in_activation_space
    sampler = ActivationSampler(tiny_synth, "conv0", [40], seed=0, batch_size=500, stream=STREAM_REGRESSION)
    for z, x in sampler.iterate(0, 3000):
        fast.update(z, x)
        slow.update(z, x)
    a, b = fast.solve(), slow.solve()
    assert a.report["dead_components"] == b.report["dead_components"] == 0
    assert abs(a.report["r2"] - b.report["r2"]) < 1e-6
    cos = np.sum(a.z_comp * b.z_comp, axis=1)
    assert cos.min() > 1 - 1e-6, cos.min()
    np.testing.assert_allclose(a.z_mean, b.z_mean, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_full_eigh_stages_match_lapack(dtype):
    """sytrd + stevd (SciPy) + ormqr (torch) = LAPACK's syevd, reading only the upper triangle."""
    from ganspacesynth.ganspace.eigen import full_eigh

    x = generator_like(n=900, seed=6, dim=300, latent=30).astype(np.float64)
    cov = np.cov(x, rowvar=False)
    upper = np.asfortranarray(np.triu(cov)).astype(dtype)  # the lower triangle must not be read
    w, v = full_eigh(upper)
    w_ref, v_ref = scipy.linalg.eigh(cov)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert np.abs(w - w_ref).max() <= tol * w_ref.max()
    assert np.abs(v.T.astype(np.float64) @ v - np.eye(300)).max() <= 10 * tol
    residual = np.linalg.norm(cov @ v - v * w, axis=0).max() / w_ref.max()
    assert residual <= 10 * tol
    cos = np.abs(np.sum(v[:, -16:] * v_ref[:, -16:], axis=0))
    assert cos.min() >= 0.9999
    assert np.array_equal(upper, np.asfortranarray(np.triu(cov)).astype(dtype))  # input left alone
