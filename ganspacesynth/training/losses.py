"""GANSynth's losses: WGAN-GP with a drift penalty (Magenta `train_util.define_loss`, tfgan's
wasserstein losses and gradient penalty with epsilon 0) and AC-GAN auxiliary classification losses
(GANSynth `model.py`: the discriminator learns to classify real data, the generator to make its
fakes classified as their labels). Every condition has one auxiliary loss: softmax cross-entropy for
categorical conditions, per-class binary cross-entropy for multi-label ones (qualities).
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn.functional as F

from ..conditions import ConditionSpec
from ..errors import UserError


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     eps: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """mean((‖∇ D(x̂)‖ − target)² / target²) at x̂ = real + eps·(fake − real), eps ~ U(0,1) per example."""
    eps = eps.to(real.dtype).reshape(-1, *([1] * (real.dim() - 1)))
    mixed = (real.detach() + eps * (fake.detach() - real.detach())).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.float().sum(), mixed, create_graph=True)
    norm = grad.float().flatten(1).square().sum(dim=1).sqrt()
    return ((norm - target).square() / (target**2)).mean()


def classification_loss(spec: ConditionSpec, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for a categorical condition (class indices), binary CE for a multi-label one."""
    if spec.kind == "categorical":
        return F.cross_entropy(logits.float(), labels.long())
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def classification_accuracy(spec: ConditionSpec, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy (categorical) or per-class agreement at logit 0 (multi-label), as a 0-dim tensor."""
    if spec.kind == "categorical":
        return (logits.argmax(dim=1) == labels.long()).float().mean()
    return ((logits > 0) == (labels > 0.5)).float().mean()


def auxiliary_losses(specs: tuple[ConditionSpec, ...], logits: Mapping[str, torch.Tensor],
                     labels: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum over conditions of the classification losses, and each condition's accuracy (detached)."""
    total = logits[specs[0].name].new_zeros((), dtype=torch.float32) if specs else torch.zeros(())
    accuracy: dict[str, torch.Tensor] = {}
    for spec in specs:
        total = total + classification_loss(spec, logits[spec.name], labels[spec.name])
        accuracy[spec.name] = classification_accuracy(spec, logits[spec.name].detach(), labels[spec.name])
    return total, accuracy


def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor, gp: torch.Tensor | None,
                       ac_real: torch.Tensor, cfg) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Wasserstein critic loss + gradient penalty + drift penalty + auxiliary loss on real data.

    `gp` is None on the steps a lazy penalty (`gradient_penalty_interval` k > 1) skips; on the others it
    weighs k times as much, so the penalty's average weight stays `gradient_penalty_weight`.
    """
    real_scores, fake_scores = real_scores.float(), fake_scores.float()
    wasserstein = fake_scores.mean() - real_scores.mean()
    drift = real_scores.square().mean()
    loss = wasserstein + cfg.real_score_penalty_weight * drift + cfg.discriminator_ac_loss_weight * ac_real
    if gp is not None:
        loss = loss + cfg.gradient_penalty_weight * cfg.gradient_penalty_interval * gp
    parts = {"d_loss": loss, "wasserstein": wasserstein, "gradient_penalty": gp, "drift": drift,
             "d_real": real_scores.mean(), "d_fake": fake_scores.mean(), "ac_real": ac_real}
    return loss, {k: v.detach() for k, v in parts.items() if v is not None}


def generator_loss(fake_scores: torch.Tensor, ac_fake: torch.Tensor, cfg) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """−mean critic score of the fakes + auxiliary loss on the fakes' labels."""
    adversarial = -fake_scores.float().mean()
    loss = adversarial + cfg.generator_ac_loss_weight * ac_fake
    parts = {"g_adversarial": adversarial, "ac_fake": ac_fake}
    return loss, {"g_loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}


# -- profile guidance (not Magenta's) -----------------------------------------------------------------
#: Bins of the moving average whose residual is the "fine structure" the profile loss compares: at 256
#: frequency bins a harmonic comb survives it, a spectral envelope (brightness) does not.
PROFILE_SMOOTHING_BINS = 9


def fine_structure(profile: torch.Tensor, bins: int = PROFILE_SMOOTHING_BINS) -> torch.Tensor:
    """`[B, C, W]` minus its moving average over `bins` frequency bins (reflected at the edges)."""
    width = profile.shape[-1]
    pad = min(bins // 2, width - 1)
    if pad < 1:
        return profile - profile.mean(dim=-1, keepdim=True)
    smooth = F.avg_pool1d(F.pad(profile, (pad, pad), mode="reflect"), 2 * pad + 1, stride=1)
    return profile - smooth


#: Which spectrogram channels the profile loss compares: both, or only the instantaneous frequency (channel 1).
PROFILE_CHANNELS = {"all": slice(0, 2), "if": slice(1, 2)}


def bins_below(bin_hertz, width: int, max_hz: float) -> torch.Tensor:
    """Bool `[width]`: the frequency bins, at a resolution pooled from `bin_hertz`'s (consecutive bins averaged,
    as the stages' frequency pooling does), whose centre lies below `max_hz`."""
    centres = torch.as_tensor(bin_hertz, dtype=torch.float64).reshape(width, -1).mean(dim=1)
    return centres < max_hz


def check_profile_cut(max_hz: float | None, model) -> None:
    """Refuses a `profile_loss_max_hz` below every bin of the first stage (its bins are the widest; with none
    compared there, the loss would be the mean of nothing)."""
    if max_hz is None:
        return
    hertz = model.spectral.bin_hertz()
    coarsest = model.resolution(1)[1]
    if not bool(bins_below(hertz, coarsest, max_hz).any()):
        raise UserError(f"profile_loss_max_hz ({max_hz:g} Hz) lies below every frequency bin of the first stage "
                        f"(the lowest is centred at {hertz[: len(hertz) // coarsest].mean():.0f} Hz)")


def profile_loss(fake: torch.Tensor, target: torch.Tensor, channels: str = "all",
                 keep: torch.Tensor | None = None) -> torch.Tensor:
    """L1 distance between the fine structure of the fakes' time-averaged spectrograms `[B, 2, T, W]` and
    that of the targets `[B, 2, W]` (the mean profile of real notes with the same labels).

    Pitch lives in that fine structure (where the harmonics sit, and their instantaneous frequency);
    the smooth envelope and everything over time are left to the critic, so timbre can still vary. The
    magnitude's fine structure also holds how loud each harmonic is against its neighbours, which is timbre:
    `channels="if"` compares only the instantaneous frequency, where a harmonic's position is and its
    loudness is not. `keep` (bool `[W]`) compares only those frequency bins.
    """
    pick = PROFILE_CHANNELS[channels]
    fake, target = fake[:, pick], target[:, pick]
    diff = (fine_structure(fake.float().mean(dim=2)) - fine_structure(target.float())).abs()
    if keep is None:
        return diff.mean()
    # `keep` [W]: the bins compared. The fine structure is taken over every bin first, so the kept bins' moving
    # average is the same as without the mask.
    return diff[..., keep].mean()
