"""One GAN update, as a pure function of models, optimizers and a batch: `train_step`.

Update order is that of pytorch/examples dcgan/main.py: first D on a real batch and on G(z).detach(), then
G through D(G(z)). The objective comes from `losses.OBJECTIVES` by name; a regularizer (R1, WGAN-GP's
gradient penalty) adds its term to D's loss, and WGAN-GP takes `d_steps` critic updates per G update.
bf16 autocast where the device runs it natively (`precision`); losses are always computed in fp32.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from mnist_gan.gan.losses import OBJECTIVES, REGULARIZERS, Regularizer
from mnist_gan.settings.configs import TrainConfig

STATS = ("loss_d", "loss_g", "d_real", "d_fake")  # d_real / d_fake: D's mean score (the loss's own reading)


def train_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
    cfg: TrainConfig,
    y: torch.Tensor | None = None,
    autocast=contextlib.nullcontext,
    joint_d: bool = False,
    rng: torch.Generator | None = None,
    regularize: bool = True,
) -> dict[str, torch.Tensor]:
    """One G update after cfg.d_steps D updates; returns detached stats (stats of the last D update).

    real: (d_steps, B, C, H, W) in [-1, 1]; z: (d_steps, B, *latent); y: labels (d_steps, B) or None.
    joint_d: score real and fake in one D pass. Same maths when D has no batch statistics (no BatchNorm),
    half the per-call overhead, which is what bounds small MLPs.
    regularize: add the penalties (R1, R2, GP) at this step; with lazy regularization (`reg_every` k > 1) the
    trainer asks every k-th step, and each penalty is weighted k times (StyleGAN2's lazy R1).
    """
    objective = OBJECTIVES[cfg.loss]
    labels = [None] * len(real) if y is None else list(y)
    # (1) Update D: e.g. maximize log D(x) + log(1 - D(G(z))) for bce
    for x, noise, lab in zip(real, z, labels, strict=True):
        opt_d.zero_grad(set_to_none=True)
        with autocast():
            fake = generator(noise, lab)
            if joint_d:
                both = None if lab is None else torch.cat([lab, lab])
                logits_real, logits_fake = discriminator(torch.cat([x, fake.detach()]), both).float().chunk(2)
            else:
                logits_real = discriminator(x, lab).float()
                logits_fake = discriminator(fake.detach(), lab).float()
            loss_d = objective.d_loss(logits_real, logits_fake)
            for weight, regularizer in active_regularizers(cfg) if regularize else ():
                penalty = regularizer.penalty(discriminator, x, fake, lab, rng)
                loss_d = loss_d + regularizer.scale * weight * cfg.reg_every * penalty
        loss_d.backward()
        opt_d.step()

    # (2) Update G: e.g. maximize log D(G(z)) for bce, on the last D update's fakes. D's weights get no gradient
    # here (the next D update would discard it): backprop through D computes input gradients only, a third less
    # work. D outside its DDP wrapper, which would otherwise wait for gradients that never come.
    critic = getattr(discriminator, "module", discriminator)
    opt_g.zero_grad(set_to_none=True)
    critic.requires_grad_(False)
    try:
        with autocast():
            logits = critic(fake, lab).float()
            if objective.paired:  # the real images these fakes are paired with, scored by the current D
                with torch.no_grad():
                    paired_real = critic(x, lab).float()
                loss_g = objective.g_loss(logits, paired_real)
            else:
                loss_g = objective.g_loss(logits)
        loss_g.backward()
    finally:
        critic.requires_grad_(True)
    opt_g.step()

    return {
        "loss_d": loss_d.detach().float(),
        "loss_g": loss_g.detach().float(),
        "d_real": objective.score(logits_real.detach()).mean(),
        "d_fake": objective.score(logits_fake.detach()).mean(),
    }


def active_regularizers(cfg: TrainConfig) -> list[tuple[float, Regularizer]]:
    """(weight, regularizer) of every penalty whose weight in `cfg` is > 0, in REGULARIZERS order."""
    return [(getattr(cfg, r.weight), r) for r in REGULARIZERS.values() if getattr(cfg, r.weight) > 0]


def make_optimizers(generator: nn.Module, discriminator: nn.Module, cfg: TrainConfig, capturable: bool = False):
    """Adam for G and D. `capturable`: step counters and learning rates as tensors on the device, so a CUDA graph
    replays the update and a schedule can still change the rate (`Trainer.set_lr` fills the tensor)."""
    betas = (cfg.beta1, cfg.beta2)
    # fused: one kernel for the whole update instead of several per parameter (the MLP GAN is bound by
    # per-call overhead); elementwise, so still deterministic. foreach where fused is unsupported.
    device = next(generator.parameters()).device.type
    kind = {"fused": True} if device in ("cpu", "cuda") else {"foreach": True}
    if capturable:
        kind["capturable"] = True
    lr_g, lr_d = cfg.lr, cfg.lr * cfg.lr_d_ratio
    if capturable:
        where = next(generator.parameters()).device
        lr_g, lr_d = torch.tensor(lr_g, device=where), torch.tensor(lr_d, device=where)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas, **kind)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas, **kind)
    return opt_g, opt_d


def autocast_for(precision: str, device: torch.device, cache: bool = True):
    """A context manager factory: bf16 autocast on `device`, or nothing for fp32. `cache`: autocast's cache of
    cast weights, which a CUDA graph capture must go without (the casts are redone, to the same values)."""
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext
