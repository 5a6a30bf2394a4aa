"""The reconstruction objective (`objective: glo`): a non-adversarial way to train the GANSynth generator.

Generative Latent Optimization (Bojanowski et al. 2018, "Optimizing the latent space of generative
networks"): every training note i has a latent code z_i, learned together with the generator so that
G(z_i, labels_i) reconstructs note i (L1 on both Mel-IF channels, at the stage's resolution). Every step
gives the generator a dense, supervised signal, and it costs one generator pass instead of a GAN step's
generator and three to four discriminator passes, which is what lets one CPU core train a generator that
plays in tune in two hours (docs/training.md has the learning curves).

Notes may share codes (`latent_code_label`, e.g. one code per instrument, so pitch must come from the pitch
condition), and a fraction of each batch (`latent_code_dropout`) is reconstructed from the step's fresh random
latents instead, so that a new z, which is what users and GANSpace draw, also follows pitch and family. The
codes start as standard-normal draws and move slowly (their own learning rate), so they stay spread like the
random latents `Synth.random_z` draws. The generator's architecture, its named layers and everything
downstream (GANSpace, hallucinations, the model file) are unchanged.

In a run the code table takes the discriminator's place (the `discriminator` entries of checkpoints, with
its optimiser), so checkpoints, `--resume` and several processes work as for the GAN objective.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import distributed
from .ema import update_ema
from .schedule import real_at_stage


class LatentCodes(torch.nn.Module):
    """Learned latent codes, initialised from N(0, 1) by `seed`; `owner[row]` is the code of each training note.

    Notes that share a code (every note of one instrument, `latent_code_label`) can only differ through their
    conditions, so the generator must take pitch from the pitch condition and the code comes to mean timbre:
    GANSynth's division of labour, where one z played at every pitch is one instrument.
    """

    def __init__(self, owner: torch.Tensor, latent: int, seed: int = 0):
        super().__init__()
        _, owner = torch.unique(torch.as_tensor(owner).long().cpu(), return_inverse=True)
        g = torch.Generator().manual_seed(int(seed) + 7919)
        self.codes = torch.nn.Parameter(torch.randn(int(owner.max()) + 1, latent, generator=g))
        self.register_buffer("owner", owner)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.codes.index_select(0, self.owner.index_select(0, rows.to(self.owner.device)))


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


def glo_step(nets, data, batch, point, model_cfg, cfg, conditions, info, amp, memory_format) -> dict[str, torch.Tensor]:
    """One update of the generator and of the codes of this step's real notes; returns detached stats."""
    G, codes = nets.generator, nets.discriminator
    dev = info.device
    real, real_labels = data.gather(batch.real_rows)
    real = real_at_stage(real.to(dev), model_cfg, point).contiguous(memory_format=memory_format)
    cond = conditions.encode(real_labels, batch=len(batch.real_rows), device=dev)
    z = codes(batch.real_rows)
    if cfg.latent_code_dropout > 0:  # the step's own draws, so a resumed run repeats them
        dropped = (batch.eps < cfg.latent_code_dropout).to(dev)
        z = torch.where(dropped[:, None], batch.z_g.to(dev, z.dtype), z)
    with amp:
        fake = G(z, cond, num_blocks=point.num_blocks, alpha=point.alpha)
        loss = reconstruction_loss(fake, real)
    nets.opt_g.zero_grad(set_to_none=True)
    nets.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    distributed.average_gradients(G.parameters(), info)
    distributed.average_gradients(codes.parameters(), info)
    nets.opt_g.step()
    nets.opt_d.step()
    update_ema(nets.ema, G, cfg.ema_decay)
    with torch.no_grad():
        magnitude = F.l1_loss(fake[:, 0].float(), real[:, 0].float())
    return {"reconstruction": loss.detach(), "reconstruction_magnitude": magnitude}
