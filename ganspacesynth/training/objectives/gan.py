"""The adversarial objective (`objective: gan`): Magenta's progressive WGAN-GP with AC-GAN heads.

Each step: one discriminator update (Wasserstein critic + gradient penalty + drift + classifying the real
notes), then one generator update (raise the critic's score of new fakes and make them classified as their
labels). Fake labels are the labels of random dataset rows, so fakes follow the data's label distribution.
`Critic` is the discriminator half on its own: `glo+gan` (reconstruction.py) uses it too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ...model.discriminator import Discriminator
from ...model.layers import downscale
from .. import distributed
from ..config import GanSettings
from ..draws import GAN_STEP, real_rows, seeded
from ..losses import (auxiliary_losses, bins_below, discriminator_loss, generator_loss, gradient_penalty,
                      profile_loss)
from ..schedule import StagePoint, profile_at_stage
from .base import Objective, ObjectiveContext, StepClock


@dataclass
class GanDraws:
    """One step's draws for the global batch (every process draws all of it and keeps its rows)."""

    real_rows: torch.Tensor
    z_d: torch.Tensor
    fake_rows_d: torch.Tensor  # fake labels = labels of random dataset rows: the data's label distribution
    eps: torch.Tensor  # gradient-penalty interpolation weights
    z_g: torch.Tensor
    fake_rows_g: torch.Tensor

    def local(self, rows: slice) -> "GanDraws":
        return GanDraws(**{k: v[rows] for k, v in asdict(self).items()})


def draw_gan(seed: int, step: int, images: int, batch_size: int, n_data: int, latent: int) -> GanDraws:
    g = seeded(seed, GAN_STEP, step)
    return GanDraws(
        real_rows=real_rows(seed, images, batch_size, n_data),
        z_d=torch.randn(batch_size, latent, generator=g),
        fake_rows_d=torch.randint(n_data, (batch_size,), generator=g),
        eps=torch.rand(batch_size, generator=g),
        z_g=torch.randn(batch_size, latent, generator=g),
        fake_rows_g=torch.randint(n_data, (batch_size,), generator=g),
    )


class Critic:
    """The discriminator, its optimiser and its two losses."""

    def __init__(self, ctx: ObjectiveContext, settings: GanSettings):
        self.ctx, self.settings = ctx, settings
        self.D = Discriminator(ctx.model_cfg).to(ctx.device, memory_format=ctx.memory_format)
        self.opt = ctx.adam(self.D.parameters(), settings.discriminator_learning_rate)
        self.profiles = None
        if settings.profile_loss_weight > 0:
            names = [c.name for c in ctx.model_cfg.conditions if c.kind == "categorical"]
            self.profiles = ctx.data.label_mean_profiles(names)
        self.bin_hertz, self._profile_bins = None, {}
        if settings.profile_loss_weight > 0 and settings.profile_loss_max_hz is not None:
            self.bin_hertz = ctx.model_cfg.spectral.bin_hertz()  # the cut was checked before the run began

    def profile_bins(self, width: int) -> torch.Tensor | None:
        """The frequency bins (of `width` at the stage's resolution) the profile loss compares, or None: all."""
        if self.bin_hertz is None:
            return None
        if width not in self._profile_bins:
            keep = bins_below(self.bin_hertz, width, self.settings.profile_loss_max_hz)
            self._profile_bins[width] = keep.to(self.ctx.device)
        return self._profile_bins[width]

    def draws(self, clock: StepClock, local: slice) -> GanDraws:
        ctx = self.ctx
        return draw_gan(ctx.cfg.seed, clock.step, clock.images, clock.point.batch_size, len(ctx.data),
                        ctx.model_cfg.latent_vector_size).local(local)

    def view(self, x: torch.Tensor, point: StagePoint) -> tuple[torch.Tensor, int, float]:
        """What the critic judges of stage-resolution spectrograms `x`: (x average-pooled to `critic_num_blocks`'
        resolution when that is lower, the critic's blocks, its fade-in alpha)."""
        k = self.settings.critic_num_blocks
        if k <= 0 or k >= point.num_blocks:
            return x, point.num_blocks, point.alpha
        return downscale(x, self.ctx.model_cfg.scale_base ** (point.num_blocks - k)), k, 1.0

    def update(self, real: torch.Tensor, real_labels: dict, draws: GanDraws, point: StagePoint,
               penalize: bool) -> dict[str, torch.Tensor]:
        """One discriminator update: critic + gradient penalty (unless `penalize` is False) + drift + AC on real."""
        ctx, G, D = self.ctx, self.ctx.generator, self.D
        cond = ctx.conditions.encode(ctx.data.labels_of(draws.fake_rows_d), batch=len(draws.z_d), device=ctx.device)
        D.requires_grad_(True)
        with ctx.amp:
            with torch.no_grad():
                fake = G(draws.z_d.to(ctx.device), cond, num_blocks=point.num_blocks, alpha=point.alpha)
                fake, _, _ = self.view(fake.contiguous(memory_format=ctx.memory_format), point)
            real, k, a = self.view(real, point)
            real_scores, real_logits = D(real, k, a)
            fake_scores, _ = D(fake, k, a)
            gp = gradient_penalty(lambda x: D(x, k, a)[0], real, fake, draws.eps.to(ctx.device),
                                  self.settings.gradient_penalty_target) if penalize else None
            ac_real, acc_real = auxiliary_losses(ctx.model_cfg.conditions, real_logits, real_labels)
            loss, stats = discriminator_loss(real_scores, fake_scores, gp, ac_real, self.settings)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(D.parameters(), ctx.info)
        self.opt.step()
        stats.update({f"acc_real/{n}": v for n, v in acc_real.items()})
        return stats

    def generator_loss(self, draws: GanDraws, point: StagePoint
                       ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
        """The generator's adversarial loss on new fakes (critic + AC on their labels) and, when
        `profile_loss_weight` > 0, their profile loss (unweighted; each objective decides how it adds it)."""
        ctx = self.ctx
        labels = ctx.data.labels_of(draws.fake_rows_g)
        cond = ctx.conditions.encode(labels, batch=len(draws.z_g), device=ctx.device)
        self.D.requires_grad_(False)
        with ctx.amp:
            fake = ctx.generator(draws.z_g.to(ctx.device), cond, num_blocks=point.num_blocks, alpha=point.alpha).contiguous(
                memory_format=ctx.memory_format)
            judged, k, a = self.view(fake, point)
            fake_scores, fake_logits = self.D(judged, k, a)
            ac_fake, acc_fake = auxiliary_losses(ctx.model_cfg.conditions, fake_logits, labels)
            profile = None
            if self.profiles is not None:
                rows = draws.fake_rows_g.to(self.profiles.device)
                target = profile_at_stage(self.profiles.index_select(0, rows).to(ctx.device), ctx.model_cfg, point)
                profile = profile_loss(fake, target, self.settings.profile_loss_channels,
                                       self.profile_bins(target.shape[-1]))
            loss, stats = generator_loss(fake_scores, ac_fake, self.settings)
        if profile is not None:
            stats["profile"] = profile.detach()
        stats.update({f"acc_fake/{n}": v for n, v in acc_fake.items()})
        return loss, profile, stats


class GanObjective(Objective):
    name = "gan"
    legacy_slots = {"discriminator": "discriminator", "opt_g": "generator", "opt_d": "discriminator"}

    def __init__(self, ctx: ObjectiveContext):
        super().__init__(ctx)
        self.critic = Critic(ctx, ctx.cfg.gan)
        self.opt_g = ctx.adam(ctx.generator.parameters(), ctx.cfg.generator_learning_rate)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"discriminator": self.critic.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, "discriminator": self.critic.opt}

    def step(self, clock: StepClock) -> dict[str, torch.Tensor]:
        draws = self.critic.draws(clock, self.local(clock.point.batch_size))
        real, labels = self.ctx.real(draws.real_rows, clock.point)
        penalize = clock.step % self.ctx.cfg.gan.gradient_penalty_interval == 0
        stats = self.critic.update(real, labels, draws, clock.point, penalize)
        loss, profile, g_stats = self.critic.generator_loss(draws, clock.point)
        if profile is not None:
            loss = loss + self.ctx.cfg.gan.profile_loss_weight * profile
            g_stats["g_loss"] = loss.detach()
        self.apply(loss, (self.opt_g, self.ctx.generator))
        return {**stats, **g_stats}
