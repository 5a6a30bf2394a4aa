"""The progressive GANSynth training loop, top to bottom.

    result = train("runs/gm", TrainingData.from_folder("data/gm", ["pitch"]), resolve_config("fast"),
                   conditions=["pitch"])

1. the run folder: a new run writes `config.json`; `resume=True` reads it and the newest checkpoint;
2. the generator, its EMA copy, and the objective (training/objectives/: `gan`, `glo` or `glo+gan`), which
   builds its own modules and optimisers (fresh moments every stage, as Magenta starts every stage with new
   optimisers);
3. the loop: schedule point → the objective's step → EMA → statistics, samples, checkpoints;
4. the end (or SIGINT/SIGTERM, or `max_steps`): a last checkpoint and the exported model file.

Every random draw of step s comes from counters (training/draws.py), so a resumed run and an R-process run
repeat a straight run.
"""

from __future__ import annotations

import copy
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..errors import UserError
from ..fileio import read_json, write_json
from ..model.conditions import ConditionSet
from ..model.config import ModelConfig
from ..model.generator import Generator
from ..model.layers import upscale
from ..runtime import cpu_model, keep_training_allocations_in_heap, resolve_precision
from . import distributed
from .checkpoint import Position, export_model, init_modules, init_states, latest_checkpoint, save_checkpoint
from .config import ResolvedConfig, resolve_config, with_overrides
from .data import TrainingData
from .draws import FIXED_SAMPLES, seeded
from .ema import update_ema
from .losses import check_profile_cut
from .objectives import ObjectiveContext, StepClock, make_objective
from .schedule import Schedule, StagePoint, schedule_span
from .stats import Rate, RunLog, truncate_stats
from .threads import make_tuner, wait_policy

CONFIG_FILE = "config.json"
#: Settings a resumed run may change (they do not alter the networks or the past schedule).
RESUMABLE_KEYS = {"total_num_images", "train_time_limit", "save_summaries_num_images", "checkpoint_every_seconds",
                  "checkpoint_every_images", "keep_checkpoints", "log_every_steps"}


@dataclass
class RunOptions:
    """How to run (not what to learn): device, arithmetic, reporting."""

    device: str | None = None  # default: cuda (this rank's GPU under torchrun) if available, else cpu
    precision: str = "auto"  # "auto": bfloat16 on CUDA and on CPUs with native bfloat16, float32 elsewhere
    threads: int | None = None  # CPU intra-op threads; None: timed against one thread per stage (threads.py)
    channels_last: bool | None = None  # None: on CUDA
    compile: bool = False  # torch.compile the generator's layers (the critic needs double backward)
    progress: bool = True
    tensorboard: bool = True
    samples: bool = True  # spectrogram images and audio of fixed latents in TensorBoard
    max_steps: int | None = None  # stop (checkpoint + export) after this many steps in all
    preload: bool | str = "auto"  # dataset folders: copy the split to the device when it fits


@dataclass
class TrainResult:
    run_dir: Path
    position: Position
    finished: bool  # the schedule is complete
    interrupted: bool  # stopped by SIGINT/SIGTERM
    stop_signal: int | None = None
    last: dict = field(default_factory=dict)  # the last logged statistics


# -- run folder ----------------------------------------------------------------------------------
def read_run_config(run_dir: Path) -> tuple[ResolvedConfig, dict]:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{run_dir} is not a training run (no {CONFIG_FILE}); drop --resume to start one")
    data = read_json(path)
    return ResolvedConfig.from_dict(data), data


def _check_data(model_cfg: ModelConfig, data: TrainingData, spectral_checks: Mapping[str, Any]) -> None:
    if model_cfg.output_shape != data.spectral.shape:
        raise UserError(f"the data's spectrograms are {data.spectral.shape[0]}x{data.spectral.shape[1]} but this "
                        f"architecture makes {model_cfg.output_shape[0]}x{model_cfg.output_shape[1]}: choose the preset "
                        f"the dataset was built for")
    spectral = data.spectral.to_dict()
    for key, value in spectral_checks.items():
        if key in spectral and not np.isclose(float(spectral[key]), float(value)):
            raise UserError(f"{key}={value} in the config but the dataset was built with {key}={spectral[key]}")


class StopRequest:
    """SIGINT/SIGTERM ask the loop to stop after the current step (a second SIGINT aborts)."""

    def __init__(self):
        self.requested = False
        self.signum: int | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _fixed_samples(seed: int, data: TrainingData, latent: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and label rows shown in every summary (rows sorted by pitch when there is one)."""
    g = seeded(seed, FIXED_SAMPLES)
    z = torch.randn(count, latent, generator=g)
    rows = torch.randint(len(data), (count,), generator=g)
    if "pitch" in data.labels:
        rows = rows[torch.argsort(data.labels["pitch"].cpu()[rows], stable=True)]
    return z, rows


@torch.no_grad()
def _write_samples(log: RunLog, ema: Generator, data: TrainingData, fixed, point: StagePoint, model_cfg: ModelConfig,
                   conditions: ConditionSet, images: int, device) -> None:
    from ..audio.spectral import MelIF

    z, rows = fixed
    cond = conditions.encode(data.labels_of(rows), batch=len(z), device=device)
    specs = ema(z.to(device), cond, num_blocks=point.num_blocks, alpha=point.alpha).float()
    factor = model_cfg.scale_base ** (model_cfg.num_resolutions - point.num_blocks)
    full = upscale(specs, factor).cpu()  # lower stages are heard blurred, as Magenta's summaries are
    waves = MelIF(model_cfg.spectral).specgrams_to_waves(full).numpy()
    log.samples(images, specs, waves, model_cfg.spectral.sample_rate)


# -- the loop ------------------------------------------------------------------------------------
def train(run_dir: str | Path, data: TrainingData, config: ResolvedConfig | None = None,
          conditions: Sequence[str] = ("pitch",), *, resume: bool = False, overrides: Mapping[str, Any] | None = None,
          options: RunOptions | None = None, init_from: str | Path | None = None) -> TrainResult:
    """Train (or, with `resume`, continue) a run in `run_dir`; see the module docstring. `init_from` (a new run
    only): a model file or run folder whose weights the run starts from (checkpoint.init_states)."""
    options = options or RunOptions()
    # Listen for Ctrl-C before joining the other processes: a signal that reaches one process while it is still
    # starting must become a stop request there too, or that process dies while the others wait for it.
    stop = StopRequest()
    try:
        info = distributed.setup(options.device)
        try:
            return _train(Path(run_dir), data, config, conditions, resume, dict(overrides or {}), options, info,
                          stop, init_from)
        finally:
            distributed.teardown()
    finally:
        stop.restore()


def _train(run_dir: Path, data: TrainingData, config: ResolvedConfig | None, condition_names: Sequence[str],
           resume: bool, overrides: dict, options: RunOptions, info: distributed.DistInfo, stop: StopRequest,
           init_from: str | Path | None = None) -> TrainResult:
    # 1. Run folder and configuration.
    if resume:
        config, saved = read_run_config(run_dir)
        bad = sorted(set(overrides) - RESUMABLE_KEYS)
        if bad:
            raise UserError(f"a resumed run cannot change {', '.join(bad)} (only {', '.join(sorted(RESUMABLE_KEYS))})")
        if config.train.train_time_limit is not None and overrides.get("train_time_limit") is not None:
            # A new limit must not move the stages the run has been through: pin them where they were.
            overrides = {**overrides, "train_time_schedule": schedule_span(config.train)}
        config.train = with_overrides(config.train, overrides)
        model_cfg = config.model
        condition_names = [c.name for c in model_cfg.conditions]
        if data.condition_specs(condition_names) != model_cfg.conditions:
            raise UserError("the data's condition vocabularies differ from the run's: resume with the same dataset")
    else:
        config = config or resolve_config("tiny")
        if overrides:
            raise UserError("pass overrides through resolve_config for a new run")
        if init_from is not None and resume:
            raise UserError("--init-from starts a new run; a resumed run continues from its own checkpoint")
        if run_dir.exists() and any(run_dir.iterdir()):
            raise UserError(f"{run_dir} already holds a run: add --resume to continue it, or choose another --out")
        model_cfg = config.model.replace(conditions=data.condition_specs(condition_names), spectral=data.spectral)
    _check_data(model_cfg, data, config.spectral_checks)
    model_cfg.validate()
    cfg = config.train
    cfg.validate(model_cfg.num_resolutions)
    check_profile_cut(cfg.gan.profile_loss_max_hz if cfg.gan is not None else None, model_cfg)
    initial = init_states(init_from, model_cfg) if init_from is not None else None
    precision = resolve_precision(options.precision, info.device.type, warn=info.is_main)  # refusals before writing
    info.barrier()  # every rank has checked the run folder before rank 0 writes into it
    if info.is_main:
        write_json(run_dir / CONFIG_FILE, {**config.to_dict(), "model": model_cfg.to_dict(), "data": data.source,
                                           "world_size": info.world_size})
    info.barrier()

    device = info.device
    if data.batcher is None:
        data.to(device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bfloat16" else nullcontext()
    use_cl = options.channels_last if options.channels_last is not None else device.type == "cuda"
    memory_format = torch.channels_last if use_cl else torch.contiguous_format
    if device.type == "cpu":
        keep_training_allocations_in_heap(model_cfg, max(cfg.batch_size_schedule))

    # 2. The generator, its EMA copy and the objective (the same seed gives every rank the same initial weights).
    torch.manual_seed(cfg.seed)
    G = Generator(model_cfg).to(device, memory_format=memory_format)
    ema = copy.deepcopy(G).requires_grad_(False).eval()
    conditions = ConditionSet(model_cfg.conditions)
    ctx = ObjectiveContext(G, model_cfg, cfg, data, conditions, info, amp, memory_format,
                           message=lambda text: print(text, flush=True) if info.is_main else None)
    objective = make_objective(ctx)
    modules = {"generator": G, "ema": ema, **objective.modules()}
    optimizers = objective.optimizers()
    position = Position()
    if resume:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise UserError(f"{run_dir} has no checkpoint to resume from")
        for reason in ckpt.skipped:
            if info.is_main:
                print(f"warning: skipped {reason}; resuming from {ckpt.path.name}", flush=True)
        ckpt.restore(modules, optimizers, objective.legacy_slots)
        position = ckpt.position
        if info.is_main:
            truncate_stats(run_dir, position.step)
    elif initial is not None:
        started_from = init_modules(initial, modules)
        if info.is_main:
            print(f"starting from {init_from}: {', '.join(started_from)}", flush=True)
    if options.compile:
        for module in G.modules():
            if module is not G and hasattr(module, "weight"):
                module.compile()
    schedule = Schedule(cfg, model_cfg)

    total = float(cfg.train_time_limit) if schedule.timed else float(cfg.total_num_images)
    start = position.seconds if schedule.timed else float(position.images)
    log = RunLog(run_dir, active=info.is_main, tensorboard=options.tensorboard, progress=options.progress,
                 total=total, initial=start, unit="s" if schedule.timed else "img")
    point = schedule.at(position.images, position.seconds)
    log.message(f"{'resuming' if resume else 'training'} {run_dir} at step {position.step}, {position.images} images, "
                f"{point.describe(model_cfg)}; {len(data)} notes, conditions {', '.join(condition_names) or 'none'}, "
                f"{info.world_size} process(es) on {device.type}, {precision}")
    tuner = make_tuner(device.type, options.threads)
    if device.type == "cpu":
        how = f"timed against {' vs '.join(map(str, tuner.candidates))} at each stage" if tuner.tuning else "fixed"
        log.message(f"CPU {cpu_model()}: {tuner.chosen} intra-op thread(s) ({how}), OpenMP wait policy {wait_policy()}")

    fixed = _fixed_samples(cfg.seed, data, model_cfg.latent_vector_size, cfg.fake_batch_size)
    rate = Rate(position.images)
    started = time.monotonic()  # wall clock of this process (a resumed run starts again at 0)
    last_checkpoint = time.monotonic()
    record: dict = {}
    stage_id = position.stage_id

    def checkpoint() -> None:
        nonlocal last_checkpoint
        if info.is_main:
            position.stage_id = stage_id
            save_checkpoint(run_dir, position, modules, optimizers, keep=cfg.keep_checkpoints, objective=cfg.objective)
            export_model(run_dir, model_cfg, ema, info={
                "trained_images": position.images, "step": position.step, "stage": stage_id,
                "num_blocks_trained": schedule.at(position.images, position.seconds).num_blocks,
                "preset": config.preset, "data": data.source}, prior=objective.latent_prior())
        last_checkpoint = time.monotonic()

    # 3. The loop.
    try:
        while not schedule.done(position.images, position.seconds):
            if options.max_steps is not None and position.step >= options.max_steps:
                break
            t0 = time.perf_counter()
            point = schedule.at(position.images, position.seconds)
            if point.stage_id != stage_id:
                objective.new_stage()
                stage_id = point.stage_id
                log.message(f"step {position.step}, {position.images} images: {point.describe(model_cfg)}")
            threads = tuner.before_step(point.stage_id)
            stats = objective.step(StepClock(position.step, position.images, position.seconds, point))
            update_ema(ema, G, cfg.ema_decay)

            previous_images = position.images
            position.step += 1
            position.images += point.batch_size
            if schedule.timed and device.type == "cuda":
                torch.cuda.synchronize(device)  # time the GPU's work, not the launches
            elapsed = time.perf_counter() - t0
            if (chosen := tuner.after_step(elapsed)) is not None:
                log.message(f"step {position.step}: {chosen}")
            agreed = distributed.max_over_ranks(torch.tensor([float(stop.requested), elapsed], dtype=torch.float64,
                                                             device=device if info.enabled else "cpu"), info)
            stop.requested = bool(agreed[0].item())
            position.seconds += float(agreed[1].item())
            last_step = schedule.done(position.images, position.seconds) or stop.requested or (
                options.max_steps is not None and position.step >= options.max_steps)

            if position.step % cfg.log_every_steps == 0 or last_step:
                values = distributed.mean_over_ranks(torch.stack([v.float() for v in stats.values()]), info)
                record = {"step": position.step, "images": position.images, "time": round(position.seconds, 3),
                          "stage": point.stage_id, "num_blocks": point.num_blocks, "alpha": point.alpha,
                          "batch_size": point.batch_size, "images_per_s": rate.update(position.images),
                          "threads": threads, "wall": round(time.monotonic() - started, 3)}
                record.update(_named_stats(stats.keys(), values.tolist()))
                log.scalars(record)
                log.progress(position.seconds if schedule.timed else position.images, point.describe(model_cfg), record)

            every = cfg.save_summaries_num_images
            if (options.samples and info.is_main and log.writer is not None and every > 0
                    and (position.images // every > previous_images // every or position.step == 1)):
                _write_samples(log, ema, data, fixed, point, model_cfg, conditions, position.images, device)

            by_images = cfg.checkpoint_every_images > 0 and (
                position.images // cfg.checkpoint_every_images > previous_images // cfg.checkpoint_every_images)
            if by_images or time.monotonic() - last_checkpoint >= cfg.checkpoint_every_seconds:
                checkpoint()
            if stop.requested:
                break

        # 4. The end: a last checkpoint, the model file, and its output gain measured against the data.
        checkpoint()
        if info.is_main and Path(data.source).is_dir() and schedule.done(position.images, position.seconds):
            _calibrate(run_dir, data.source, device, log)
        info.barrier()
    finally:
        log.close()
    finished = schedule.done(position.images, position.seconds)
    if stop.requested:
        log.message(f"stopped at step {position.step} ({position.images} images); continue with --resume")
    return TrainResult(run_dir, position, finished, stop.requested, stop.signum, record)


def _calibrate(run_dir: Path, dataset: str, device, log: RunLog) -> None:
    """Write the finished run's output gain into its model file (calibration.py: the data's median level minus
    the model's), so every player hears it at its data's level."""
    from ..calibration import calibrate_model_file
    from ..model.files import MODEL_FILENAME

    _, result = calibrate_model_file(run_dir / MODEL_FILENAME, dataset, device=str(device), count=128)
    log.message(f"output gain {result['output_gain_db']:+.2f} dB (data {result['target_rms_dbfs']:.1f} dBFS, "
                f"model {result['raw_rms_dbfs']:.1f} dBFS median RMS)")


_LABELS = {"d_loss": "loss/d", "g_loss": "loss/g", "wasserstein": "loss/wasserstein",
           "gradient_penalty": "loss/gradient_penalty", "drift": "loss/drift", "d_real": "score/real",
           "d_fake": "score/fake", "ac_real": "loss/ac_real", "ac_fake": "loss/ac_fake",
           "g_adversarial": "loss/g_adversarial", "profile": "loss/profile",
           "reconstruction": "loss/reconstruction", "reconstruction_magnitude": "loss/reconstruction_magnitude",
           "latent_code_kl": "loss/latent_code_kl", "adversarial_weight": "loss/adversarial_weight"}


def _named_stats(keys, values: list[float]) -> dict[str, float]:
    out = {}
    for key, value in zip(keys, values):
        if key.startswith("acc_real/"):
            name = "accuracy/real_" + key.split("/", 1)[1]
        elif key.startswith("acc_fake/"):
            name = "accuracy/fake_" + key.split("/", 1)[1]
        else:
            name = _LABELS.get(key, key)
        out[name] = float(value)
    return out
