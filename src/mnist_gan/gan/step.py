"""One GAN update, as a function of the models, a batch and the run's `StepPlan`: `train_step`.

Update order is that of pytorch/examples dcgan/main.py: first D on a real batch and on G(z).detach(), then
G through D(G(z)). The objective comes from `losses.OBJECTIVES` by name; a regularizer (R1, WGAN-GP's
gradient penalty) adds its term to D's loss, and WGAN-GP takes `d_steps` critic updates per G update. With an
`augment` policy D sees every image, real and fake, in both updates through `augment.augment` (DiffAugment).
With `ac_weight` > 0 (AC-GAN, Odena et al. 2017) D's auxiliary classifier learns the real images' labels and G's
loss adds its cross-entropy on the samples' labels, both times the weight (the classifier learns from real images
only, so it never learns G's mistakes as a class).
bf16 autocast where the device runs it natively (`precision`); losses are always computed in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mnist_gan.gan.augment import augment
from mnist_gan.gan.graphs import graph_unsupported
from mnist_gan.gan.losses import OBJECTIVES, REGULARIZERS, Objective, Regularizer, penalty_weights
from mnist_gan.gan.models import has_batch_stats
from mnist_gan.settings.configs import TrainConfig

STATS = ("loss_d", "loss_g", "d_real", "d_fake")  # d_real / d_fake: D's mean score (the loss's own reading)


class Models(NamedTuple):
    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


@dataclass(frozen=True)
class StepPlan:
    """What every step of a run does, worked out once from its settings and its D (`plan_for`)."""

    objective: Objective
    penalties: tuple[tuple[float, Regularizer], ...]  # the active ones, each with its whole factor (below)
    joint_d: bool  # score real and fake in one D pass: same maths without batch statistics, half the calls
    precision: str  # "bf16": autocast on `device_type`; "fp32": none
    device_type: str
    reg_every: int = 1  # the penalties apply at every reg_every-th step (lazy regularization)
    augment: str = "none"  # what D sees every image through (gan/augment.py)
    ac_weight: float = 0.0  # AC-GAN: the weight of D's classifier loss on real labels and of G's on its samples'

    def autocast(self, cache: bool = True) -> torch.autocast:
        """bf16 autocast, disabled for fp32. `cache`: autocast's cache of cast weights, which a CUDA graph capture
        must go without (the casts are redone, to the same values)."""
        bf16 = self.precision == "bf16"
        return torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=cache)

    @property
    def lazy(self) -> bool:
        return self.reg_every > 1 and bool(self.penalties)

    @property
    def draws(self) -> str | None:
        """What of the step draws random numbers from the trainer's generator (which a CUDA graph cannot replay)."""
        if any(r.uses_rng for _, r in self.penalties):
            return "the gradient penalty's random interpolates"
        return None if self.augment == "none" else f"augment: {self.augment}"

    def seen(self, images: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
        """The images as D sees them: through the run's augmentation, if any."""
        return images if self.augment == "none" else augment(images, self.augment, rng)

    def graph_blocker(self, device: torch.device, world: int, compiled: bool) -> str | None:
        """Why this step cannot be replayed as one CUDA graph in a run on `device` with `world` processes
        (`compiled`: torch.compile'd models), or None when it can (`graphs.GraphedStep`)."""
        return graph_unsupported(device, world, compiled=compiled, draws=self.draws, lazy=self.lazy)


def plan_for(cfg: TrainConfig, discriminator: nn.Module, device: torch.device) -> StepPlan:
    """The plan of a run: its objective, its penalties (null gp_weight resolved to the loss's own; each factor is
    scale x weight x reg_every, StyleGAN2's lazy weighting) and whether D takes real and fake in one pass."""
    weights = penalty_weights(cfg)
    active = [(weights[r.weight], r) for r in REGULARIZERS.values() if weights[r.weight] > 0]
    return StepPlan(
        objective=OBJECTIVES[cfg.loss],
        penalties=tuple((r.scale * w * cfg.reg_every, r) for w, r in active),
        joint_d=not has_batch_stats(discriminator) and not active,
        precision=cfg.precision,
        device_type=device.type,
        reg_every=cfg.reg_every,
        augment=cfg.augment,
        ac_weight=cfg.ac_weight,
    )


def train_step(
    models: Models,
    real: torch.Tensor,
    z: torch.Tensor,
    y: torch.Tensor | None,
    plan: StepPlan,
    regularize: bool = True,
    rng: torch.Generator | None = None,
    cache: bool = True,
) -> dict[str, torch.Tensor]:
    """One G update after d_steps D updates (the batch's first dimension); returns detached stats (stats of the last
    D update).

    real: (d_steps, B, C, H, W) in [-1, 1]; z: (d_steps, B, *latent); y: labels (d_steps, B) or None.
    regularize: add the plan's penalties at this step (a lazy plan's trainer asks every `reg_every`-th step);
    rng: the random source of a penalty that draws (WGAN-GP's interpolates); cache: `StepPlan.autocast`'s.
    """
    labels = [None] * len(real) if y is None else list(y)
    for x, noise, lab in zip(real, z, labels, strict=True):
        fake, loss_d, logits_real, logits_fake = _update_d(models, x, noise, lab, plan, regularize, rng, cache)
    loss_g = _update_g(models, fake, x, lab, plan, rng, cache)
    return {
        "loss_d": loss_d.detach().float(),
        "loss_g": loss_g.detach().float(),
        "d_real": plan.objective.score(logits_real.detach()).mean(),
        "d_fake": plan.objective.score(logits_fake.detach()).mean(),
    }


def _update_d(models: Models, x, noise, lab, plan: StepPlan, regularize: bool, rng, cache: bool):
    """One D update on real images `x` and G(noise), e.g. maximize log D(x) + log(1 - D(G(z))) for bce; returns
    the fakes (G's update reuses them), D's loss and its logits on the real and the fake images."""
    generator, discriminator, _, opt_d = models
    opt_d.zero_grad(set_to_none=True)
    with plan.autocast(cache):
        fake = generator(noise, lab)
        if plan.joint_d:
            both = None if lab is None else torch.cat([lab, lab])
            seen = plan.seen(torch.cat([x, fake.detach()]), rng)
            logits, classes = _scored(discriminator, seen, both, plan)
            logits_real, logits_fake = logits.chunk(2)
        else:
            seen_real, seen_fake = plan.seen(x, rng), plan.seen(fake.detach(), rng)
            logits_real, classes = _scored(discriminator, seen_real, lab, plan)
            logits_fake = discriminator(seen_fake, lab).float()
        loss_d = plan.objective.d_loss(logits_real, logits_fake)
        if classes is not None:  # AC-GAN: D's classifier learns the real images' labels (the first len(x) rows)
            loss_d = loss_d + plan.ac_weight * F.cross_entropy(classes[: len(x)], lab)
        for factor, regularizer in plan.penalties if regularize else ():  # on the images as D saw them
            loss_d = loss_d + factor * regularizer.penalty(discriminator, seen_real, seen_fake, lab, rng)
    loss_d.backward()
    opt_d.step()
    return fake, loss_d, logits_real, logits_fake


def _update_g(models: Models, fake, x, lab, plan: StepPlan, rng, cache: bool) -> torch.Tensor:
    """G's update through D on `fake` (`x`: the real images they pair with), e.g. maximize log D(G(z)) for bce;
    returns G's loss. D's weights get no gradient here (the next D update would discard it): backprop through D
    computes input gradients only, a third less work. D outside its DDP wrapper, which would otherwise wait for
    gradients that never come."""
    _, discriminator, opt_g, _ = models
    critic = getattr(discriminator, "module", discriminator)
    opt_g.zero_grad(set_to_none=True)
    critic.requires_grad_(False)
    try:
        with plan.autocast(cache):
            logits, classes = _scored(critic, plan.seen(fake, rng), lab, plan)
            if plan.objective.paired:  # the real images these fakes are paired with, scored by the current D
                with torch.no_grad():
                    paired_real = critic(plan.seen(x, rng), lab).float()
                loss_g = plan.objective.g_loss(logits, paired_real)
            else:
                loss_g = plan.objective.g_loss(logits)
            if classes is not None:  # AC-GAN: G's samples should read as the labels they were drawn for
                loss_g = loss_g + plan.ac_weight * F.cross_entropy(classes, lab)
        loss_g.backward()
    finally:
        critic.requires_grad_(True)
    opt_g.step()
    return loss_g


def _scored(discriminator: nn.Module, images, lab, plan: StepPlan):
    """D's logits (B,) on `images` in fp32 and, when the plan is an AC-GAN's, its class logits (B, K) from the same
    pass (else None)."""
    if plan.ac_weight == 0:
        return discriminator(images, lab).float(), None
    logits, classes = discriminator(images, lab, classes=True)
    return logits.float(), classes.float()


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
