"""The reconstruction objectives: `glo` (no discriminator) and `glo+gan` (a discriminator joins later).

Generative Latent Optimization (Bojanowski et al. 2018, "Optimizing the latent space of generative
networks"): every training note i has a latent code z_i, learned together with the generator so that
G(z_i, labels_i) reconstructs note i (L1 on both Mel-IF channels, at the stage's resolution). Every step
gives the generator a dense, supervised signal, and it costs one generator pass instead of a GAN step's
generator and three to four discriminator passes, which is what lets one CPU core train a generator that
plays in tune in two hours (docs/reports/training-history.md has the learning curves).

Notes may share codes (`latent_code_label`, e.g. one code per instrument, so pitch must come from the pitch
condition). Random latents, which are what users and GANSpace draw, must land where the codes are:
- `latent_code_kl_weight` > 0 makes every code a Gaussian (a learned mean and scale) sampled anew each step,
  with a KL divergence from N(0, I) in the loss: a VAE whose encoder is a table, so N(0, I) draws fall among
  the instruments instead of between them;
- `latent_code_dropout` reconstructs a fraction of each batch from fresh random latents instead (which
  teaches a random z the average note of its labels: the older recipe).
`glo+gan` adds Magenta's critic (gan.py's `Critic`) from `adversarial_start` on: random latents must then
also make notes the critic cannot tell from real ones, which sharpens what an L1 loss blurs (as RAVE, VQGAN
and Parallel WaveGAN start a discriminator on a reconstruction-trained generator).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ...model.prior import LatentPrior, sample_mixture
from .. import distributed
from ..config import ReconstructionSettings
from ..draws import PRIOR_STEP, RECONSTRUCTION_STEP, real_rows, seeded
from ..schedule import StagePoint
from .base import Objective, ObjectiveContext, StepClock
from .gan import Critic


class LatentCodes(torch.nn.Module):
    """Learned latent codes, initialised from N(0, 1) by `seed`; `owner[row]` is the code of each training note.

    Notes that share a code (every note of one instrument, `latent_code_label`) can only differ through their
    conditions, so the generator must take pitch from the pitch condition and the code comes to mean timbre:
    GANSynth's division of labour, where one z played at every pitch is one instrument.
    """

    def __init__(self, owner: torch.Tensor, latent: int, seed: int = 0, variational: bool = False):
        super().__init__()
        _, owner = torch.unique(torch.as_tensor(owner).long().cpu(), return_inverse=True)
        g = torch.Generator().manual_seed(int(seed) + 7919)
        self.codes = torch.nn.Parameter(torch.randn(int(owner.max()) + 1, latent, generator=g))
        self.register_buffer("owner", owner)
        # A Gaussian per code (mean `codes`, log standard deviation `log_scale`).
        self.log_scale = torch.nn.Parameter(torch.full_like(self.codes, -1.0)) if variational else None

    def index(self, rows: torch.Tensor) -> torch.Tensor:
        return self.owner.index_select(0, rows.to(self.owner.device))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """The codes' means (their points, for point codes)."""
        return self.codes.index_select(0, self.index(rows))

    def sample(self, rows: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes drawn from each row's Gaussian with the given standard-normal `noise`, and the KL divergence of
        those Gaussians from N(0, I) (summed over latent dimensions, mean over rows)."""
        idx = self.index(rows)
        mean, log_scale = self.codes.index_select(0, idx), self.log_scale.index_select(0, idx)
        kl = 0.5 * (mean.square() + (2 * log_scale).exp() - 1 - 2 * log_scale).sum(dim=1).mean()
        return mean + log_scale.exp() * noise.to(mean), kl


def code_owners(data, label: str) -> tuple[torch.Tensor, str]:
    """Which code each training note uses: its `label` (e.g. instrument) when the data have that label as
    one class per note, else its own; and a description for the log."""
    value = data.labels.get(label) if label else None
    if value is not None and value.dim() == 1:
        return value.cpu(), f"one per {label}"
    return torch.arange(len(data)), "one per note"


def reconstruction_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over both channels (log magnitude and instantaneous frequency)."""
    return (fake.float() - real.float()).abs().mean()


@dataclass
class ReconstructionDraws:
    """One step's draws for the global batch: the real rows, the codes' sampling noise, the dropout."""

    real_rows: torch.Tensor
    noise: torch.Tensor
    dropout: torch.Tensor  # uniform [0, 1): rows below latent_code_dropout use `z` instead of their code
    z: torch.Tensor

    def local(self, rows: slice) -> "ReconstructionDraws":
        return ReconstructionDraws(self.real_rows[rows], self.noise[rows], self.dropout[rows], self.z[rows])


def draw_reconstruction(seed: int, step: int, images: int, batch_size: int, n_data: int,
                        latent: int) -> ReconstructionDraws:
    g = seeded(seed, RECONSTRUCTION_STEP, step)
    return ReconstructionDraws(real_rows(seed, images, batch_size, n_data), torch.randn(batch_size, latent, generator=g),
                               torch.rand(batch_size, generator=g), torch.randn(batch_size, latent, generator=g))


class Reconstruction:
    """The codes, their optimiser and the reconstruction loss (the part `glo` and `glo+gan` share)."""

    def __init__(self, ctx: ObjectiveContext, settings: ReconstructionSettings):
        self.ctx, self.settings = ctx, settings
        owners, how = code_owners(ctx.data, settings.latent_code_label)
        self.codes = LatentCodes(owners, ctx.model_cfg.latent_vector_size, ctx.cfg.seed,
                                 variational=settings.latent_code_kl_weight > 0).to(ctx.device)
        self.opt = ctx.adam(self.codes.parameters(), settings.latent_code_learning_rate)
        kind = "Gaussian" if self.codes.log_scale is not None else "point"
        ctx.message(f"reconstruction objective: {self.codes.codes.shape[0]} {kind} latent codes ({how})")

    def draws(self, clock: StepClock, local: slice) -> ReconstructionDraws:
        ctx = self.ctx
        return draw_reconstruction(ctx.cfg.seed, clock.step, clock.images, clock.point.batch_size, len(ctx.data),
                                   ctx.model_cfg.latent_vector_size).local(local)

    def prior(self) -> LatentPrior | None:
        """`latent_prior: codes`: the codes' means (now) plus N(0, spread² I); else None (N(0, I))."""
        s = self.settings
        if s.latent_prior != "codes":
            return None
        centres = self.codes.codes.detach().float().cpu().numpy()
        return LatentPrior(centres.shape[1], centres, s.latent_prior_spread)

    def prior_latents(self, clock: StepClock, local: slice, count: int = 2) -> list[torch.Tensor]:
        """`count` batches of random latents from the codes' prior (this process's rows), drawn from
        (seed, PRIOR_STEP, step) like every other draw; the codes get no gradient through them."""
        ctx, batch = self.ctx, clock.point.batch_size
        noise = torch.randn(count, batch, 1 + ctx.model_cfg.latent_vector_size,
                            generator=seeded(ctx.cfg.seed, PRIOR_STEP, clock.step))[:, local]
        centres = self.codes.codes.detach()
        return [sample_mixture(centres, self.settings.latent_prior_spread, n.to(centres.device)) for n in noise]

    def loss(self, draws: ReconstructionDraws, point: StagePoint) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ctx, s = self.ctx, self.settings
        real, labels = ctx.real(draws.real_rows, point)
        cond = ctx.conditions.encode(labels, batch=len(draws.real_rows), device=ctx.device)
        kl = None
        if self.codes.log_scale is not None:
            z, kl = self.codes.sample(draws.real_rows, draws.noise.to(ctx.device))
        else:
            z = self.codes(draws.real_rows)
        if s.latent_code_dropout > 0:
            dropped = (draws.dropout < s.latent_code_dropout).to(ctx.device)
            z = torch.where(dropped[:, None], draws.z.to(ctx.device, z.dtype), z)
        with ctx.amp:
            fake = ctx.generator(z, cond, num_blocks=point.num_blocks, alpha=point.alpha)
            rec = reconstruction_loss(fake, real)
        loss = rec if kl is None else rec + s.latent_code_kl_weight * kl
        with torch.no_grad():
            magnitude = F.l1_loss(fake[:, 0].float(), real[:, 0].float())
        stats = {"reconstruction": rec.detach(), "reconstruction_magnitude": magnitude}
        if kl is not None:
            stats["latent_code_kl"] = kl.detach()
        return loss, stats


class ReconstructionObjective(Objective):
    """`glo`: the generator and the codes learn to reconstruct every training note."""

    name = "glo"
    # Format-1 checkpoints kept the codes in the discriminator's slot, trained by its optimiser.
    legacy_slots = {"discriminator": "codes", "opt_g": "generator", "opt_d": "codes"}

    def __init__(self, ctx: ObjectiveContext):
        super().__init__(ctx)
        self.reconstruction = Reconstruction(ctx, ctx.cfg.reconstruction)
        self.opt_g = ctx.adam(ctx.generator.parameters(), ctx.cfg.generator_learning_rate)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"codes": self.reconstruction.codes}

    def latent_prior(self) -> LatentPrior | None:
        return self.reconstruction.prior()

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, "codes": self.reconstruction.opt}

    def step(self, clock: StepClock) -> dict[str, torch.Tensor]:
        rec = self.reconstruction
        loss, stats = rec.loss(rec.draws(clock, self.local(clock.point.batch_size)), clock.point)
        self.apply(loss, (self.opt_g, self.ctx.generator), (rec.opt, rec.codes))
        return stats


class ReconstructionGanObjective(ReconstructionObjective):
    """`glo+gan`: the reconstruction objective, joined by Magenta's critic once the run reaches
    `adversarial_start` (seconds of a timed run, else images); the generator's adversarial loss on random
    latents is added to the reconstruction with `adversarial_weight`."""

    name = "glo+gan"
    legacy_slots = {}

    def __init__(self, ctx: ObjectiveContext):
        super().__init__(ctx)
        self.critic = Critic(ctx, ctx.cfg.gan)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {**super().modules(), "discriminator": self.critic.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super().optimizers(), "discriminator": self.critic.opt}

    def adversarial(self, clock: StepClock) -> bool:
        start = self.ctx.cfg.adversarial.adversarial_start
        return (clock.seconds if self.ctx.cfg.train_time_limit is not None else clock.images) >= start

    def step(self, clock: StepClock) -> dict[str, torch.Tensor]:
        if not self.adversarial(clock):
            return super().step(clock)
        ctx, rec, local = self.ctx, self.reconstruction, self.local(clock.point.batch_size)
        draws = self.critic.draws(clock, local)
        if rec.settings.latent_prior == "codes":  # the critic judges the latents users will draw
            z_d, z_g = rec.prior_latents(clock, local)
            draws = replace(draws, z_d=z_d, z_g=z_g)
        real, labels = ctx.real(draws.real_rows, clock.point)
        penalize = clock.step % ctx.cfg.gan.gradient_penalty_interval == 0
        stats = self.critic.update(real, labels, draws, clock.point, penalize)
        loss, rec_stats = rec.loss(rec.draws(clock, local), clock.point)
        adversarial, profile, g_stats = self.critic.generator_loss(draws, clock.point)
        weight = ctx.cfg.adversarial.adversarial_weight * self.adaptive_weight(loss, adversarial, clock.point)
        # The profile loss joins the reconstruction's side, outside the adaptive weight: it is a dense term that
        # keeps random latents' harmonics where their pitch puts them while the critic reshapes their timbre
        # (inside, it would be scaled down with the critic's gradient, to ~1e-3 in the pilots).
        if profile is not None:
            loss = loss + ctx.cfg.gan.profile_loss_weight * profile
        self.apply(loss + weight * adversarial, (self.opt_g, ctx.generator), (rec.opt, rec.codes))
        return {**rec_stats, **stats, **g_stats, "adversarial_weight": weight.detach()}

    def adaptive_weight(self, reconstruction: torch.Tensor, adversarial: torch.Tensor, point) -> torch.Tensor:
        """‖∇rec‖ / ‖∇adv‖ at the weights of the stage's output layer (clamped to [0, 1e4]), or 1."""
        if not self.ctx.cfg.adversarial.adversarial_adaptive:
            return torch.ones((), device=adversarial.device)
        last = self.ctx.generator.blocks[point.num_blocks - 1].to_rgb.weight
        (g_rec,) = torch.autograd.grad(reconstruction, last, retain_graph=True)
        (g_adv,) = torch.autograd.grad(adversarial, last, retain_graph=True)
        g_rec, g_adv = distributed.mean_over_ranks(torch.stack([g_rec.norm(), g_adv.norm()]).float(), self.ctx.info)
        return (g_rec / (g_adv + 1e-4)).clamp(0.0, 1e4).detach()
