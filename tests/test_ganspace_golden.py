"""Every GANSpace estimator gives the results recorded before the estimator protocol (ganspace/estimators.py,
sums.py, eigen.choose_solver) replaced the code's `"cov"` special cases and `on_cpu` branches, and a checkpoint
written by that code still resumes.

tests/fixtures/ganspace/golden.npz holds the components, standard deviations, variance ratios, means, latent
directions and solver reports of each case below, computed by the code at commit 042b653 (the recording's
`environment` names the CPU and library versions; tests/fixtures/ganspace/README.md says how it was made).
On that CPU with those versions the comparison is bit for bit; elsewhere BLAS kernels round differently and
the results are compared to a tolerance (leading directions, variances, means).
`python tests/test_ganspace_golden.py --record` rewrites the fixtures (only do that on purpose).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ganspacesynth.ganspace import eigen
from ganspacesynth.ganspace import estimators as E
from ganspacesynth.ganspace.checkpoint import load_checkpoint, save_checkpoint
from ganspacesynth.ganspace.fit import fit_components
from ganspacesynth.ganspace.regression import RegressionAccumulator
from ganspacesynth.ganspace.sampling import ActivationSampler

pytestmark = pytest.mark.heavy  # its tests take over about 1 s each: outside the quick tier (docs/DEVELOPING.md)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ganspace"
GOLDEN = FIXTURES / "golden.npz"
OLD_CHECKPOINT = FIXTURES / "checkpoint_v1.npz"
#: The run identity stored in OLD_CHECKPOINT (fit.py builds one like it for every checkpointed fit).
CHECKPOINT_RUN = {"model_fingerprint": "golden", "layer": "synthetic", "seed": 5, "count": 900, "batch_size": 50,
                  "rank": 0, "processes": 1, "shard": [0, 900]}
DECOMPOSITION = ("comp", "stdev", "var_ratio", "mean", "count")


def generator_like(n, seed, dim, latent, offset=4.0):
    """Samples shaped like a generator layer: a leaky-ReLU image of a Gaussian latent plus a small tail."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((latent, dim)) / np.sqrt(latent)
    z = rng.standard_normal((n, latent))
    h = z @ w
    x = np.where(h > 0, h, 0.2 * h) + 0.05 * rng.standard_normal((n, dim)) + offset
    return x.astype(np.float32), z.astype(np.float32)


def feed(est, x, batch):
    for i in range(0, len(x), batch):
        est.fit_partial(x[i:i + batch])
    return est


def result(dec, **extra):
    out = {name: np.asarray(getattr(dec, name)) for name in DECOMPOSITION}
    out["info"] = dict(dec.info)
    out.update(extra)
    return out


@contextlib.contextmanager
def thresholds(**values):
    """Set eigen.py's solver thresholds for the block (the recording's shim maps them to the old names)."""
    old = {name: getattr(eigen, name) for name in values}
    for name, value in values.items():
        setattr(eigen, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(eigen, name, value)


@contextlib.contextmanager
def products(min_dim, chunk_rows):
    old = E.FLOAT32_PRODUCTS_MIN_DIM, E.CHUNK_ROWS
    E.FLOAT32_PRODUCTS_MIN_DIM, E.CHUNK_ROWS = min_dim, chunk_rows
    try:
        yield
    finally:
        E.FLOAT32_PRODUCTS_MIN_DIM, E.CHUNK_ROWS = old


def torch_sums(**options):
    """A cov estimator on the torch sums (the device backend), here on the CPU."""
    return E.CovarianceEstimator(backend="torch", **options)


def reduced(make, x, halves=2):
    """Statistics of `halves` processes summed by `reduce` (an all-reduce simulated in one process)."""
    parts = [feed(make(), x[i::halves], 37) for i in range(halves)]
    captured = []
    for est in parts[1:]:
        est.reduce(lambda tensors: captured.append([t.clone() for t in tensors]))
    parts[0].reduce(lambda tensors: [t.add_(o) for other in captured for t, o in zip(tensors, other)])
    return parts[0].components()


# -- estimator-level cases: synthetic data, no generator --------------------------------------------------------
X48, _ = generator_like(900, 5, 48, 6)
X96, _ = generator_like(2000, 3, 96, 12)
X400, _ = generator_like(3000, 2, 400, 40)
ISO = np.random.default_rng(3).standard_normal((1500, 200)).astype(np.float32)
SHIFT48 = X48[:256].astype(np.float64).mean(0)

CASES = {
    "cov_float64_all": lambda: result(feed(E.CovarianceEstimator(products="float64"), X48, 37).components()),
    "cov_float32_all": lambda: result(feed(E.CovarianceEstimator(products="float32", chunk_rows=128), X48, 37)
                                      .components()),
    "cov_evr_top5": lambda: result(feed(E.CovarianceEstimator(5), X48, 100).components()),
    "cov_iterative": lambda: result(feed(E.CovarianceEstimator(24, solver="iterative", min_block=40), X400, 500)
                                    .components()),
    "cov_auto_iterative": lambda: _with(thresholds(ITERATIVE_MIN_DIM=100), lambda: result(
        feed(E.CovarianceEstimator(24, min_block=40), X400, 500).components())),
    "cov_lapack_forced": lambda: _with(thresholds(ITERATIVE_MIN_DIM=100), lambda: result(
        feed(E.CovarianceEstimator(24, solver="lapack"), X400, 500).components())),
    "cov_fallback": lambda: _with(thresholds(ITERATIVE_MIN_DIM=100), lambda: result(
        feed(E.CovarianceEstimator(8), ISO, 500).components())),
    "cov_full_float32_solve": lambda: _with(thresholds(FLOAT32_SOLVE_ABOVE=32), lambda: result(
        feed(E.CovarianceEstimator(None), X96, 2000).components())),
    "cov_evr_float32_solve": lambda: _with(thresholds(FLOAT32_SOLVE_ABOVE=32), lambda: result(
        feed(E.CovarianceEstimator(10), X96, 2000).components())),
    "cov_torch_all": lambda: result(feed(torch_sums(), X48, 37).components()),
    "cov_torch_top5": lambda: result(feed(torch_sums(n_components=5), X48, 37).components()),
    "cov_reduce_float32": lambda: result(reduced(
        lambda: E.CovarianceEstimator(products="float32", chunk_rows=128, shift=SHIFT48), X48)),
    "cov_reduce_float64": lambda: result(reduced(lambda: E.CovarianceEstimator(shift=SHIFT48), X48, 3)),
    "cov_reduce_torch": lambda: result(reduced(lambda: torch_sums(shift=SHIFT48), X48)),
    "cov_covariance": lambda: dict(zip(("cov_mean", "cov"), (t.numpy() for t in feed(
        E.CovarianceEstimator(products="float32", chunk_rows=200), X48, 37).covariance()))),
    "ipca": lambda: result(feed(E.get_estimator("ipca", 8, 48), X48, 100).components()),
    "pca": lambda: result(feed(E.get_estimator("pca", 8, 48), X48, 100).components()),
    "randomized": lambda: result(feed(E.get_estimator("randomized", 8, 48, seed=1), X48, 100).components()),
    "ica": lambda: _with(warnings.catch_warnings(), lambda: warnings.simplefilter("ignore") or result(
        feed(E.get_estimator("ica", 3, 48, seed=0), X48, 300).components())),
    "spca": lambda: result(feed(E.get_estimator("spca", 2, 48, seed=0), X48[:300], 100).components()),
}


def _with(ctx, fn):
    with ctx:
        return fn()


def _state_case(torch_backend=False):
    """A float32-chunk accumulation stopped at 450 rows (pending rows in the state), and its continuation."""
    make = (lambda: torch_sums()) if torch_backend else (
        lambda: E.CovarianceEstimator(products="float32", chunk_rows=128))
    first = feed(make(), X48[:450], 50)
    state = {k: np.array(v) for k, v in first.state_dict().items()}
    second = make()
    second.load_state_dict(state)
    out = {f"state_{k}": v for k, v in state.items()}
    out.update(result(feed(second, X48[450:], 50).components()))
    return out


CASES["cov_state"] = _state_case
CASES["cov_state_torch"] = lambda: _state_case(torch_backend=True)


def _regression(full):
    x, z = generator_like(4000, 8, 48, 6)
    est = feed(E.CovarianceEstimator(None if full else 6), x[:2000], 100)
    reg = RegressionAccumulator(est.components(), 6)
    for i in range(2000, 4000, 250):
        reg.update(z[i:i + 250], torch.from_numpy(x[i:i + 250]))
    r = reg.solve()
    return {"z_comp": r.z_comp, "z_mean": r.z_mean, "r2": np.array(r.report["r2"])}


CASES["regression_coordinates"] = lambda: _regression(False)
CASES["regression_activation_space"] = lambda: _regression(True)


# -- fit-level cases: the tiny model --------------------------------------------------------------------------
FIT = dict(pitches=[40, 52], seed=11, batch_size=64, centring="none")  # recorded before per-condition centring


def _fit(synth, count, rows=None, **options):
    comps = fit_components(synth, "conv0", count, **dict(FIT, **options))
    out = {name: np.asarray(getattr(comps, name)) for name in ("comp", "stdev", "var_ratio", "mean")}
    out["comp"] = out["comp"][:rows]  # all 512 components would make the fixture 1 MB larger
    if comps.z_comp is not None:
        out.update(z_comp=comps.z_comp, z_mean=comps.z_mean)
    out["info"] = {key: comps.meta[key] for key in ("estimator", "sample_count", "solver", "regression")
                   if key in comps.meta}
    return out


def _fit_checkpoint(synth):
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "c.npz"
        out = _fit(synth, 700, n_components=8, regression_samples=0, checkpoint=ckpt, checkpoint_every=1e-9)
        with np.load(ckpt) as data:
            meta = json.loads(str(data["meta"]))
            sxx = np.array(data["sxx"])
            out.update(ckpt_count=data["count"], ckpt_shift=data["shift"], ckpt_sum=data["sum"],
                       ckpt_pending=data["pending"], ckpt_sxx_diag=np.diagonal(sxx).copy(), ckpt_sxx_rows=sxx[:4])
    out["info"]["checkpoint_meta"] = meta
    return out


FIT_CASES = {
    "fit_cov": lambda s: _fit(s, 700, n_components=8, regression_samples=0),
    "fit_cov_all": lambda s: _fit(s, 700, rows=16, n_components="all", regression_samples=0),
    "fit_cov_regression": lambda s: _fit(s, 600, n_components=6, regression_samples=10000),
    "fit_cov_float32_iterative": lambda s: _with(products(1, 150), lambda: _fit(
        s, 1000, n_components=16, regression_samples=0, solver="iterative")),
    "fit_cov_checkpoint": _fit_checkpoint,
    **{f"fit_{name}": (lambda s, name=name: _fit(s, 300, estimator=name, n_components=4, regression_samples=0))
       for name in ("ipca", "pca", "randomized", "ica")},  # spca: 100 s at 512 dimensions; its case above
}


def activation_digest(synth) -> str:
    """The fit cases' first batch of activations: the fit cases compare only if the generator still makes them."""
    _, x = ActivationSampler(synth, "conv0", FIT["pitches"], seed=FIT["seed"], batch_size=64).batch(0, 64)
    return hashlib.sha256(x.numpy().astype(np.float32).tobytes()).hexdigest()


def environment() -> dict:
    """What the bits depend on besides the code: CPU, library versions, thread counts (BLAS splits sums by them)."""
    import scipy
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, so that threadpoolctl sees it)
    import sklearn
    from threadpoolctl import threadpool_info

    from ganspacesynth.runtime import cpu_model

    blas = sorted(f"{i['internal_api']} {i.get('version')} {i['num_threads']} threads" for i in threadpool_info())
    return {"cpu": cpu_model(), "numpy": np.__version__, "scipy": scipy.__version__, "torch": torch.__version__,
            "sklearn": sklearn.__version__, "torch_threads": torch.get_num_threads(), "blas": blas}


# -- comparison ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN, allow_pickle=False) as data:
        arrays = {name: np.array(data[name]) for name in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    return arrays, meta


def compare(name, got, golden):
    arrays, meta = golden
    exact = meta["environment"] == environment()
    keys = sorted(k.split("/", 1)[1] for k in arrays if k.startswith(name + "/"))
    assert sorted(k for k in got if k != "info") == keys, name
    for key in keys:
        want, have = arrays[f"{name}/{key}"], np.asarray(got[key])
        assert have.shape == want.shape and have.dtype == want.dtype, (name, key)
        if exact or not want.size:
            np.testing.assert_array_equal(have, want, err_msg=f"{name}/{key}")
        elif key in ("comp", "z_comp"):  # leading directions, up to BLAS rounding on another CPU
            rows = min(4, len(want))
            cos = np.abs(np.sum(have[:rows].astype(np.float64) * want[:rows], axis=1))
            assert np.all(cos > 1 - 1e-3), (name, key, cos)
        else:
            scale = max(float(np.abs(want).max()), 1e-30)
            np.testing.assert_allclose(have, want, rtol=1e-3, atol=1e-4 * scale, err_msg=f"{name}/{key}")
    want_info = meta["info"].get(name)
    if want_info is not None:
        have_info = json.loads(json.dumps(got["info"]))
        if not exact:  # residuals and round counts depend on rounding
            for info in (want_info, have_info):
                for section in (info, info.get("solver", {})):
                    for volatile in ("max_relative_residual", "float32_rounds", "float64_rounds", "r2",
                                     "z_comp_max_abs_cosine", "z_comp_raw_norms_first"):
                        section.pop(volatile, None)
                info.get("regression", {}).pop("r2", None)
        assert have_info == want_info, name


def test_comparison_is_bit_for_bit_here(golden):
    """Says (as a skip) when the cases below compare to a tolerance: another CPU, library or thread count."""
    recorded = golden[1]["environment"]
    if recorded != environment():
        differ = sorted(key for key in recorded if recorded[key] != environment().get(key))
        pytest.skip(f"compared to a tolerance, not bit for bit: {', '.join(differ)} differ from the recording")


@pytest.mark.parametrize("name", sorted(CASES))
def test_estimators_match_recorded_results(name, golden):
    compare(name, CASES[name](), golden)


@pytest.mark.parametrize("name", sorted(FIT_CASES))
def test_fits_match_recorded_results(name, golden, tiny_synth):
    if activation_digest(tiny_synth) != golden[1]["activation_digest"]:
        pytest.skip("the tiny model's activations changed (generator code, not GANSpace): re-record the golden "
                    "results on purpose (tests/fixtures/ganspace/README.md)")
    compare(name, FIT_CASES[name](tiny_synth), golden)


def test_checkpoint_written_before_the_protocol_resumes(golden):
    """checkpoint_v1.npz was written by the old code 450 rows into `cov_state`; it loads into today's estimator
    (same format, same run identity) and continues to the recorded result."""
    est = E.CovarianceEstimator(products="float32", chunk_rows=128)
    run = dict(CHECKPOINT_RUN, estimator=est.config(48))
    state, position = load_checkpoint(OLD_CHECKPOINT, run)
    assert position == 450 and len(state["pending"]) == 450 % 128
    est.load_state_dict(state)
    got = result(feed(est, X48[position:], 50).components())
    arrays, _ = golden
    got.update({f"state_{k}": arrays[f"cov_state/state_{k}"] for k in ("count", "shift", "sum", "sxx", "pending")})
    compare("cov_state", got, golden)


# -- recording -------------------------------------------------------------------------------------------------
def record(synth) -> None:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))  # as tests/conftest.py
    arrays, infos = {}, {}
    for name, fn in [*CASES.items(), *((n, lambda f=f: f(synth)) for n, f in FIT_CASES.items())]:
        print(name, flush=True)
        out = fn()
        infos[name] = out.pop("info", None)
        arrays.update({f"{name}/{key}": np.asarray(value) for key, value in out.items()})
    meta = {"environment": environment(), "activation_digest": activation_digest(synth),
            "info": json.loads(json.dumps(infos))}
    FIXTURES.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(GOLDEN, **arrays, meta=np.array(json.dumps(meta, sort_keys=True)))
    first = feed(E.CovarianceEstimator(products="float32", chunk_rows=128), X48[:450], 50)
    save_checkpoint(OLD_CHECKPOINT, first, dict(CHECKPOINT_RUN, estimator=first.config(48)), 450)


def tiny_synth_for_recording(tmp: Path):
    """The tiny_synth fixture of tests/conftest.py."""
    from ganspacesynth.model.config import preset
    from ganspacesynth.model.files import save_model
    from ganspacesynth.model.generator import Generator
    from ganspacesynth.synth import Synth

    torch.manual_seed(0)
    cfg = preset("tiny")
    save_model(tmp / "tiny.safetensors", cfg, Generator(cfg).state_dict(), info={"untrained": True})
    return Synth.load(tmp / "tiny.safetensors", device="cpu")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: python tests/test_ganspace_golden.py --record   (rewrites tests/fixtures/ganspace)")
    os.environ.setdefault("GANSPACESYNTH_AUTO_PRECISION", "float32")
    with tempfile.TemporaryDirectory() as folder:
        record(tiny_synth_for_recording(Path(folder)))
