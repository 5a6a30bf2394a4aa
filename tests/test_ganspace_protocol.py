"""The GANSpace estimator protocol: fit_components drives any estimator through it (capabilities, not names), the
covariance sums have two backends with the same state, and eigen.choose_solver is the one solver choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganspacesynth.errors import UserError
from ganspacesynth.ganspace import eigen
from ganspacesynth.ganspace import estimators as E
from ganspacesynth.ganspace.eigen import SolverPlan, choose_solver
from ganspacesynth.ganspace.fit import fit_components
from ganspacesynth.ganspace.protocol import Decomposition, Estimator, Unsupported, decomposition
from ganspacesynth.training.distributed import DistInfo


def test_capabilities_of_every_estimator():
    assert E.capable("reducible") == E.capable("checkpointable") == E.capable("shifted") == ("cov",)
    assert E.capable("streaming") == ("cov", "ipca")
    for name in E.ESTIMATORS:
        est = E.get_estimator(name, 2, 8)
        assert isinstance(est, Estimator) and est.name == name
        if not est.checkpointable:
            with pytest.raises(Unsupported, match=f"the {name} estimator cannot be checkpointed"):
                est.state_dict()
            with pytest.raises(Unsupported):
                est.config(8)
        if not est.reducible:
            with pytest.raises(Unsupported, match="cannot be split over processes"):
                est.reduce(lambda tensors: None)


class Recorder(Estimator):
    """A made-up estimator that declares every capability and records what fit_components calls."""

    name = "ipca"  # takes the place of ipca in the registry for the test
    shifted = checkpointable = reducible = True
    state_keys = ("count", "total")
    calls: list = []

    def __init__(self, k):
        self.k, self.total, self.count = k, None, 0

    @classmethod
    def create(cls, name, n_components, **options):
        cls.calls.append(("create", sorted(options)))
        return cls(n_components)

    def set_shift(self, shift):
        self.calls.append(("set_shift", len(shift)))

    def fit_partial(self, x):
        x = x.reshape(len(x), -1).double()
        self.total = x.sum(0) if self.total is None else self.total + x.sum(0)
        self.count += len(x)

    def config(self, dim):
        return {"recorder": dim}

    def state_dict(self):
        return {"count": np.array(self.count), "total": self.total.numpy()}

    def load_state_dict(self, state):
        self.calls.append(("load_state_dict", int(state["count"])))
        self.count, self.total = int(state["count"]), torch.from_numpy(np.array(state["total"]))

    def components(self):
        mean = (self.total / self.count).numpy()
        comp = np.eye(self.k, len(mean))
        return decomposition(comp, np.arange(self.k, 0, -1.0), float(self.k), mean, self.count, {"method": "made up"})


def test_fit_components_drives_any_estimator_through_the_protocol(tiny_synth, tmp_path, monkeypatch):
    monkeypatch.setitem(E.ESTIMATOR_CLASSES, "ipca", Recorder)
    Recorder.calls = []
    common = dict(estimator="ipca", n_components=3, pitches=[40], seed=1, batch_size=50, regression_samples=0)
    comps = fit_components(tiny_synth, "conv0", 300, checkpoint=tmp_path / "c.npz", checkpoint_every=1e-9, **common)
    assert Recorder.calls == [("create", ["chunk_size", "device", "min_block", "seed", "solver", "sparsity"]),
                              ("set_shift", 512)]
    assert comps.meta["sample_count"] == 300 and comps.meta["solver"] == {"method": "made up"}
    Recorder.calls = []
    again = fit_components(tiny_synth, "conv0", 300, checkpoint=tmp_path / "c.npz", resume=True, **common)
    assert ("load_state_dict", 300) in Recorder.calls and ("set_shift", 512) not in Recorder.calls  # resumed
    np.testing.assert_array_equal(again.mean, comps.mean)


def test_refusals_follow_the_capabilities(tiny_synth, tmp_path):
    common = dict(n_components=4, pitches=[40], regression_samples=0)
    with pytest.raises(UserError, match=r"^only the cov estimator runs across processes \(torchrun\), not 'pca'$"):
        fit_components(tiny_synth, "conv0", 100, estimator="pca", world=DistInfo(0, 2), **common)
    with pytest.raises(UserError, match=r"^checkpoints and --resume work with the cov estimator, not 'spca'$"):
        fit_components(tiny_synth, "conv0", 100, estimator="spca", resume=True, checkpoint=tmp_path / "c", **common)


def test_damaged_checkpoint_state_is_a_user_error(tiny_synth, tmp_path):
    from ganspacesynth.fileio import write_npz

    common = dict(n_components=4, pitches=[40], regression_samples=0, seed=2, batch_size=50)
    ckpt = tmp_path / "c.npz"
    fit_components(tiny_synth, "conv0", 200, checkpoint=ckpt, checkpoint_every=1e-9, **common)
    with np.load(ckpt) as data:
        arrays = {name: np.array(data[name]) for name in data.files}
    meta = __import__("json").loads(str(arrays.pop("meta")))
    arrays["sxx"] = arrays["sxx"][:5, :5]
    write_npz(ckpt, arrays, meta)
    with pytest.raises(UserError, match="is damaged .inconsistent estimator state"):
        fit_components(tiny_synth, "conv0", 200, checkpoint=ckpt, resume=True, **common)


@pytest.mark.parametrize("dim, k, solver, backend, plan", [
    (512, 256, "auto", "numpy", SolverPlan(False, "float64")),      # narrow: LAPACK (MRRR for a subset)
    (8192, 256, "auto", "numpy", SolverPlan(True, "float32")),      # conv0 of mel_prog_hires, default count
    (8192, 1024, "auto", "numpy", SolverPlan(True, "float32")),     # at ITERATIVE_MAX_FRACTION
    (8192, 1025, "auto", "numpy", SolverPlan(False, "float32")),    # beyond it
    (8192, 8192, "auto", "numpy", SolverPlan(False, "float32-from-sums")),  # all of a wide layer
    (4096, 4096, "iterative", "numpy", SolverPlan(False, "float64")),  # all pairs: nothing to iterate for
    (512, 16, "iterative", "numpy", SolverPlan(True, "float64")),
    (8192, 256, "lapack", "numpy", SolverPlan(False, "float32")),
    (8192, 256, "auto", "torch", SolverPlan(False, "torch")),       # devices: torch.linalg.eigh
    (8192, 256, "iterative", "torch", SolverPlan(False, "torch")),
])
def test_choose_solver(dim, k, solver, backend, plan):
    assert choose_solver(dim, k, solver=solver, backend=backend) == plan


def test_choose_solver_is_the_one_choice(monkeypatch):
    """Estimators read the thresholds through choose_solver alone."""
    with pytest.raises(ValueError, match="solver must be one of"):
        choose_solver(10, 2, solver="fast")
    seen = []
    real = eigen.choose_solver
    monkeypatch.setattr(eigen, "choose_solver", lambda *a, **kw: seen.append((a, kw)) or real(*a, **kw))
    est = E.CovarianceEstimator(3, solver="lapack")
    est.fit(np.random.default_rng(0).standard_normal((50, 12)).astype(np.float32))
    assert est.components().info["method"] == "lapack-evr"
    assert seen == [((12, 3), {"solver": "lapack", "backend": "numpy"})]
    source = (Path(E.__file__).parent / "fit.py").read_text() + Path(E.__file__).read_text()
    assert "ITERATIVE_MIN_DIM" not in source and "FLOAT32_SOLVE_ABOVE" not in source
    assert '== "cov"' not in source and "!= \"cov\"" not in source and "on_cpu" not in source


@pytest.mark.parametrize("products", ["float32", "float64"])
def test_numpy_and_torch_sums_agree(products):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((700, 24)) @ rng.standard_normal((24, 24)) + 30.0).astype(np.float32)
    a = E.CovarianceEstimator(products=products, chunk_rows=64)
    b = E.CovarianceEstimator(backend="torch")
    assert a.config(24) == {"products": products, "chunk_rows": 64 if products == "float32" else None,
                            "device": "cpu"}
    assert b.config(24) == {"products": "float64", "chunk_rows": None, "device": "cpu", "backend": "torch"}
    for i in range(0, 700, 33):
        a.fit_partial(x[i:i + 33])
        b.fit_partial(torch.from_numpy(x[i:i + 33]))
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb) == ["count", "pending", "shift", "sum", "sxx"]
    assert b.state_dict()["pending"].shape == (0, 24)
    (ma, ca), (mb, cb) = a.covariance(), b.covariance()
    tol = 2e-6 if products == "float32" else 1e-12  # float32: rows centred in float32 (sums.py)
    np.testing.assert_allclose(ma.numpy(), mb.numpy(), rtol=tol)
    assert float((ca - cb).abs().max() / cb.abs().max()) < tol
    da, db = a.components(), b.components()
    assert da.info["products"] == products and db.info == {"method": "torch-eigh", "device": "cpu"}
    np.testing.assert_allclose(da.stdev[:8], db.stdev[:8], rtol=1e-5)


def test_backend_choice():
    from ganspacesynth.ganspace.sums import backend_for

    assert backend_for(torch.device("cpu")) == "numpy"
    assert backend_for(torch.device("cuda")) == "torch"  # a device object only: no GPU needed
    assert backend_for(torch.device("cpu"), "torch") == "torch"
    with pytest.raises(ValueError, match="on the CPU"):
        backend_for(torch.device("cuda"), "numpy")
    assert E.CovarianceEstimator(backend="numpy").config(4) == E.CovarianceEstimator().config(4)


def test_consumed_sums_refuse_a_second_solve():
    est = E.CovarianceEstimator(2)
    est.fit(np.random.default_rng(1).standard_normal((20, 4)))
    est.covariance_upper(consume=True)
    with pytest.raises(ValueError, match="consumed"):
        est.components()
    with pytest.raises(UserError, match="at least 2 samples"):
        E.CovarianceEstimator(2).components()
    assert isinstance(Decomposition(np.eye(2), np.ones(2), np.ones(2), np.zeros(2), 2).info, dict)
