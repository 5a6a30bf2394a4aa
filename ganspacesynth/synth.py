"""The one API every interface uses: a loaded model on a device, ready to generate notes.

    synth = Synth.load("model.safetensors")
    z = synth.random_z(4, seed=0)
    waves = synth.generate(z, pitch=60)          # float32 [4, 64000]

Every note it hands out (`generate`, `specgrams_to_waves`, so every command, composer, server and export) is
finished in one place, `finish_waves`: a 4 ms fade-in (no onset click) and the model file's calibrated output
gain (`output_gain_db`, 0 dB when the file has none), never clipping; `set_level` overrides the gain or
peak-normalises instead (the `--gain` / `--normalize` options).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from .audio.levels import SAFE_PEAK, check_gain_db, finish_notes
from .audio.spectral import MelIF
from .conditions import check_pitch, check_pitches
from .errors import UserError
from .model.conditions import ConditionSet
from .model.config import ModelConfig
from .model.files import ModelFile, load_model, output_gain_of
from .model.prior import LatentPrior
from .model.generator import Generator
from .model.inference import prepare
from .model.inference.generator import PRECISIONS
from .runtime import cpu_runs_bfloat16, keep_generation_allocations_in_heap, resolve_precision  # noqa: F401 (API)


def run_one_thread_each(fn, items: Sequence, workers: int) -> list:
    """`[fn(item) for item in items]` on `workers` threads that each run torch on one core.

    Full-size notes go one per forward pass on a CPU; two passes side by side on one core each beat one pass on
    two cores (paired at batch 8 on the 2-core VM: float32 0.93–1.01, bfloat16 0.72–0.79 of the time:
    single-threaded convolutions and memory-bound activations scale better than split ones). The results are
    bit for bit those of the threaded pass (MKL runs in its reproducible mode, see ganspacesynth/__init__.py;
    tests/test_generator.py). torch's thread count is per thread for its own kernels but global for MKL, so it
    is restored afterwards.
    """
    from concurrent.futures import ThreadPoolExecutor

    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,))
    try:
        return list(pool.map(fn, items))
    finally:  # on an error or Ctrl-C, drop the notes not started instead of finishing the whole batch
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str | None) -> str:
    """A device string this machine can run (`cpu`, `cuda`, `cuda:N`, `mps`), else a one-line UserError."""
    import re

    if device is None:
        return default_device()
    text = str(device).strip().lower()
    m = re.fullmatch(r"(cpu|cuda|mps)(?::(\d{1,4}))?", text)
    if m is None:
        raise UserError(f"unknown device {str(device)[:40]!r}: use cpu, cuda or cuda:N")
    kind, index = m.group(1), m.group(2)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {text}: CUDA is not available on this machine (PyTorch {torch.__version__}"
                            f"{', built without CUDA' if torch.version.cuda is None else ', no GPU found'}); "
                            f"use --device cpu")
        if index is not None and int(index) >= torch.cuda.device_count():
            raise UserError(f"device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UserError("device mps is not available on this machine; use --device cpu")
    elif index not in (None, "0"):
        raise UserError(f"unknown device {text!r}: use cpu")
    return text


def check_weights(state: Mapping[str, torch.Tensor], where: object = "the model") -> None:
    """Refuse weights holding NaN or infinity, naming the first such tensor (they would make noise or DC)."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{where}: weight tensor {name} holds NaN or infinite values (the file is damaged "
                            f"or training diverged)")


def check_waves(waves: np.ndarray) -> np.ndarray:
    """Refuse notes no model should produce: NaN or infinite samples, or a note that is one constant value."""
    if not np.all(np.isfinite(waves)):
        raise UserError("the model produced NaN or infinite audio (are its weights damaged?); nothing was written")
    if waves.ndim == 2 and waves.shape[1] > 1:
        flat = np.flatnonzero(waves.max(axis=1) == waves.min(axis=1))
        if flat.size:
            raise UserError(f"the model produced a constant note (note {int(flat[0])}: every sample is "
                            f"{float(waves[flat[0], 0]):g}); its weights are probably damaged; nothing was written")
    return waves


#: The largest latent value `check_z` accepts (a standard-normal latent stays within about ±6).
MAX_LATENT = 1000.0


class Synth:
    """A generator plus its representation and conditions on one device."""

    def __init__(self, config: ModelConfig, generator: Generator, *, device: str = "cpu",
                 precision: str = "float32", fingerprint: str | None = None, path: Path | None = None,
                 info: dict | None = None, impl: str = "fast", prior: LatentPrior | None = None):
        self.device = torch.device(resolve_device(device))
        precision = resolve_precision(precision, self.device.type)
        self.config = config
        self.precision = precision
        self.generator = generator.to(self.device).eval().requires_grad_(False)
        if self.device.type == "cpu":
            self.generator = self.generator.to(memory_format=torch.channels_last)
        # What generation runs: the generator's function by the fast routes ("fast") or the network itself
        # ("reference"), chosen layer by layer now (model/inference).
        self.engine = prepare(self.generator, impl, precision=precision)
        self.spectral = MelIF(config.spectral)
        self.conditions = ConditionSet(config.conditions)
        self.fingerprint = fingerprint
        self.path = path
        self.info = info or {}
        #: Where random latents come from (model/prior.py): N(0, I), or the codes a reconstruction run stored.
        self.prior = prior if prior is not None else LatentPrior(config.latent_vector_size)
        #: The model file's calibrated output gain (dB; 0 when it carries none).
        self.model_gain_db = output_gain_of(self.info, path or "the model")
        self._gain_override: float | None = None
        self._normalize: float | None = None

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None, *, device: str | None = None,
             precision: str = "float32") -> "Synth":
        """Load a model file, a training run folder, or (None) the bundled default model."""
        mf = load_model(path)
        return cls.from_model_file(mf, device=device or default_device(), precision=precision)

    @classmethod
    def from_model_file(cls, mf: ModelFile, *, device: str = "cpu", precision: str = "float32") -> "Synth":
        gen = Generator(mf.config)
        expected = {k: tuple(v.shape) for k, v in gen.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in mf.generator_state.items()}
        if expected != got:
            missing = sorted(set(expected) - set(got))[:3]
            unexpected = sorted(set(got) - set(expected))[:3]
            wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])[:3]
            raise UserError(f"model weights do not fit its config (missing: {missing}, unexpected: {unexpected}, "
                            f"wrong shape: {wrong})")
        check_weights(mf.generator_state, mf.path or "the model")
        gen.load_state_dict(mf.generator_state)
        return cls(mf.config, gen, device=device, precision=precision, fingerprint=mf.fingerprint, path=mf.path,
                   info=mf.info, prior=mf.prior)

    # -- facts ---------------------------------------------------------------------------------
    @property
    def pitches(self) -> list[int]:
        return self.config.pitches

    @property
    def sample_rate(self) -> int:
        return self.config.spectral.sample_rate

    @property
    def latent_size(self) -> int:
        return self.config.latent_vector_size

    def layer_names(self) -> list[str]:
        return self.generator.layer_names()

    # -- inputs --------------------------------------------------------------------------------
    def check_pitch(self, value) -> int:
        """A pitch from any interface (CLI, composer, OSC, web; Pd sends 60.0) as a MIDI note number in this
        model's range, else a one-line UserError. The one pitch check: every interface calls it."""
        return check_pitch(value, self.pitches)

    def check_pitches(self, values: Sequence) -> list[int]:
        """Several pitches, the ones outside the range named together ('pitches 10-23 are outside …')."""
        return check_pitches(values, self.pitches)

    def random_z(self, count: int, seed: int | None = 0) -> np.ndarray:
        """`count` random latents from the model's prior (standard normal, or its learned codes: `self.prior`);
        row i depends only on (seed, i), never on batching."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise UserError(f"a seed must be a whole number >= 0, not {seed!r}")
        return self.prior.draw(np.random.default_rng(seed), count)

    def check_z(self, z) -> np.ndarray:
        """Latents `[N, latent_size]` (or one `[latent_size]`) as float32: refuses other shapes, NaN/inf and
        values beyond ±MAX_LATENT (the generator pixel-normalises z with the labels: a huge z drowns the pitch,
        and one near float32's range overflows to a silent note)."""
        z = np.asarray(z, dtype=np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.latent_size:
            raise UserError(f"latents must have shape [N, {self.latent_size}], got {list(z.shape)}")
        if not np.all(np.isfinite(z)):
            raise UserError("latents contain NaN or infinity")
        if z.size and float(np.abs(z).max()) > MAX_LATENT:
            raise UserError(f"latents must lie within ±{MAX_LATENT:g} (random ones are standard normal), got "
                            f"{float(np.abs(z).max()):.3g}")
        return z

    def labels(self, count: int, pitch: int | Sequence[int] | None = None,
               conditions: Mapping[str, object] | None = None) -> dict[str, torch.Tensor]:
        """Label tensors for `count` notes. Values may be one value or one per note."""
        values: dict[str, object] = dict(conditions or {})
        if pitch is not None:
            values["pitch"] = pitch
        out: dict[str, torch.Tensor] = {}
        for name, value in values.items():
            spec = self.conditions.spec(name)
            seq = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value] * count
            if len(seq) != count:
                raise UserError(f"{len(seq)} values for {name} but {count} notes")
            if spec.kind == "categorical":
                out[name] = torch.tensor([self.conditions.index(name, v) for v in seq], dtype=torch.long)
            else:
                rows = []
                for v in seq:
                    names = [v] if isinstance(v, str) else list(v)
                    row = torch.zeros(spec.size)
                    for n in names:
                        row[self.conditions.index(name, n)] = 1.0
                    rows.append(row)
                out[name] = torch.stack(rows)
        if "pitch" in self.conditions.names and "pitch" not in out:
            raise UserError("a pitch is required for this model")
        return out

    # -- output level ----------------------------------------------------------------------------
    @property
    def output_gain_db(self) -> float:
        """The gain (dB) applied to every note: `set_level`'s, else the model file's calibrated one."""
        return self.model_gain_db if self._gain_override is None else self._gain_override

    @property
    def normalize(self) -> float | None:
        """The peak every note is normalised to (`set_level(normalize=True)`), or None: the gain applies."""
        return self._normalize

    def set_level(self, gain_db: float | None = None, normalize: bool | float = False) -> "Synth":
        """How loud notes come out from now on. `gain_db` replaces the model's calibrated gain (0: the raw
        model); `normalize` puts every note's peak at 0.99 (or at the value given) instead. No arguments: back
        to the model's calibrated level. Returns the synth."""
        if gain_db is not None and normalize not in (False, None):
            raise UserError("give either a gain or normalize, not both")
        self._gain_override = None if gain_db is None else check_gain_db(gain_db, "the gain")
        if normalize is True:
            self._normalize = SAFE_PEAK
        elif normalize in (False, None):
            self._normalize = None
        else:
            peak = float(normalize)
            if not 0.0 < peak <= 1.0:
                raise UserError(f"a normalisation peak must lie in (0, 1], not {normalize!r}")
            self._normalize = peak
        return self

    def finish_waves(self, waves: np.ndarray) -> np.ndarray:
        """Raw inverse-STFT waves → the notes handed out: onset fade-in, the output gain (or the peak
        normalisation), and no clipping (audio/levels.finish_notes). Every wave `Synth` returns went through it."""
        return finish_notes(waves, self.sample_rate, self.output_gain_db, self._normalize)

    # -- generation ----------------------------------------------------------------------------
    def _autocast(self):
        if self.precision == "float32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def _forward_batch(self, batch_size: int, stop_at: str | None = None) -> int:
        """Notes per forward pass. On a CPU, full-size spectrograms run one at a time: a note's activations
        (up to 32 × 128 × 1024 floats per layer) already fill the caches, and batching does not lower the
        per-note time (0.127 s at 1 vs 0.130 s at 8, mel_prog_hires, 2 cores). Small models still batch, and so
        does a pass that stops early (GANSpace sampling at conv0: one latent per pass cost 1 ms each): a pass
        holds at most 4 M activation values per layer. Large passes keep glibc from mmap()ing (and page-faulting)
        every big temporary afresh (runtime.keep_generation_allocations_in_heap)."""
        if self.device.type != "cpu":
            return batch_size
        last_block = None if stop_at is None else self.generator.layer_names().index(stop_at) // 2 + 1
        notes = max(1, min(batch_size, (1 << 22) // self.config.largest_activation(last_block)))
        keep_generation_allocations_in_heap(self.config, notes, last_block)
        return notes

    def _run(self, z: np.ndarray | None, labels: Mapping[str, torch.Tensor], count: int, batch_size: int,
             finish=None, **kwargs) -> torch.Tensor:
        """The generator over all notes in passes of `_forward_batch` notes; `finish(output)` (e.g. the inverse to
        waves) runs on each pass's output in the same thread, while it is still in cache."""
        batch_size = self._forward_batch(max(1, int(batch_size)), kwargs.get("stop_at"))
        slices = [slice(start, min(count, start + batch_size)) for start in range(0, count, batch_size)]

        def forward(sl: slice) -> torch.Tensor:
            n = sl.stop - sl.start
            with torch.inference_mode(), self._autocast():  # thread-local: entered by whichever thread runs it
                zb = None if z is None else torch.from_numpy(z[sl]).to(self.device)
                cond = self.conditions.encode({k: v[sl] for k, v in labels.items()}, batch=n, device=self.device)
                kw = dict(kwargs)
                if kw.get("start_activation") is not None:
                    kw["start_activation"] = kw["start_activation"][sl].to(self.device)
                if kw.get("offsets"):
                    kw["offsets"] = {k: (v[sl] if v.shape[0] == count else v).to(self.device)
                                     for k, v in kw["offsets"].items()}
                out = self.engine(zb, cond, **kw).float()
            if finish is None:
                return out
            with torch.inference_mode():  # in float32 whatever the generator's precision
                return finish(out)

        workers = min(len(slices), torch.get_num_threads()) if self.device.type == "cpu" and batch_size == 1 else 1
        if workers < 2:
            return torch.cat([forward(sl) for sl in slices])
        return torch.cat(run_one_thread_each(forward, slices, workers))

    def _generate(self, z, pitch, conditions, batch_size: int, finish=None, *,
                  offsets: Mapping[str, torch.Tensor] | None = None, start_at: str | None = None,
                  start_activation: torch.Tensor | None = None) -> torch.Tensor:
        """`generate_specgrams`, with `finish` applied to each pass's spectrograms (see `_run`)."""
        if start_at is None:
            z = self.check_z(z)
            count = z.shape[0]
        else:
            if start_activation is None:
                raise UserError("start_at needs start_activation")
            count = start_activation.shape[0]
            z = None if z is None else self.check_z(z)
        labels = self.labels(count, pitch, conditions)
        return self._run(z, labels, count, batch_size, finish, offsets=offsets, start_at=start_at,
                         start_activation=start_activation)

    def generate_specgrams(self, z=None, pitch=None, conditions=None, *, batch_size: int = 8,
                           offsets: Mapping[str, torch.Tensor] | None = None, start_at: str | None = None,
                           start_activation: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised spectrograms `[B, 2, T, F]` for latents z (or from a layer activation)."""
        return self._generate(z, pitch, conditions, batch_size, offsets=offsets, start_at=start_at,
                              start_activation=start_activation)

    def specgrams_to_waves(self, specs: torch.Tensor, *, raw: bool = False) -> np.ndarray:
        """Normalised spectrograms → notes, finished as `generate`'s are (`raw=True`: the inverse STFT alone,
        at the model's raw level, e.g. to measure it)."""
        with torch.inference_mode():
            waves = self.spectral.specgrams_to_waves(specs.float()).cpu().numpy()
        return waves if raw else self.finish_waves(waves)

    def generate(self, z=None, pitch=None, conditions=None, *, batch_size: int = 8, raw: bool = False,
                 **kwargs) -> np.ndarray:
        """Waves `[B, N]` (float32, sample rate `self.sample_rate`), finished by `finish_waves` (`raw=True`:
        the inverse STFT's output unchanged); keywords as for `generate_specgrams`."""
        # Each pass's spectrograms become waves in the thread that made them (on a CPU, notes side by side:
        # the inverse of 8 notes took 0.79 of its time on 2 threads, paired, 2-core VM).
        waves = check_waves(self._generate(z, pitch, conditions, batch_size, self.spectral.specgrams_to_waves,
                                           **kwargs).cpu().numpy())
        return waves if raw else self.finish_waves(waves)

    def activations(self, z, pitch=None, layer: str = "conv0", conditions=None, *, batch_size: int = 64) -> torch.Tensor:
        """The named layer's activation `[B, C, H, W]` (float32, on the synth's device)."""
        z = self.check_z(z)
        labels = self.labels(z.shape[0], pitch, conditions)
        return self._run(z, labels, z.shape[0], batch_size, stop_at=layer)

    def export_instrument(self, out: str | os.PathLike, **options):
        """One timbre across the keyboard as a SoundFont 2 (and SFZ): `compose.instrument.export_instrument`
        (options: z or seed, components, coefficients, mode, conditions, pitches, every, velocity_layers, loop,
        sfz, name). Returns its `ExportResult` (path, instrument, seconds)."""
        from .compose.instrument import export_instrument

        return export_instrument(self, out, **options)

    def invert(self, audio, sample_rate: int, **options):
        """The notes of a recording as this model's latents and conditions: `invert.invert` (options: pitch,
        conditions, start, length, settings (`invert.InvertSettings`), components, source, progress). Returns
        its `Inversion` (notes with z, pitch, conditions, distances; `.latents`, `.coefficients`)."""
        from .invert import invert

        return invert(self, audio, sample_rate, **options)
