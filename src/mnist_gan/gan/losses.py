"""GAN objectives as pure functions of D's outputs, chosen by name (`loss` in params.yaml).

The shape follows StudioGAN's `src/utils/losses.py`: each objective is a pair
`d_loss(real_logits, fake_logits)` / `g_loss(fake_logits)`, and regularizers are separate switches:

- ``bce``: the non-saturating loss of Goodfellow et al. 2014 as in dcgan/main.py (BCE on logits).
- ``hinge``: Lim & Ye 2017 / Miyato et al. 2018 (SN-GAN): D minimizes relu(1 - D(x)) + relu(1 + D(G(z))).
- ``wgan-gp``: Gulrajani et al. 2017: a critic scores E[D(G(z))] - E[D(x)], plus a gradient penalty
  (`gradient_penalty`, weight `gp_weight`) and `d_steps` critic updates per G update.
- ``lsgan``: Mao et al. 2017, least squares with targets 1 (real) and 0 (fake).
- ``rpgan``: the relativistic pairing loss (Jolicoeur-Martineau 2018; R3GAN, Huang et al. 2024): D scores each
  real image against the generated one it is paired with, softplus(D(G(z)) - D(x)), and G the reverse, so G's loss
  reads D(x) too (`Objective.paired`). R3GAN pairs it with R1 and R2 (`r1_gamma`, `r2_gamma`).

Regularizers take D itself and combine with any loss, each switched on by its own weight in params
(`REGULARIZERS`): `r1_penalty` (Mescheder et al. 2018, gradient norm on real data, `r1_gamma`), its twin on
generated data `r2_penalty` (`r2_gamma`), and `gradient_penalty` (on real/fake interpolates, `gp_weight`; null =
the loss's own default: 10 for wgan-gp, whose critic needs it, 0 otherwise). `reg_every` > 1 applies them lazily.
Adding a loss is one `Objective` in `OBJECTIVES`; a penalty is one `Regularizer` in `REGULARIZERS` plus its weight
in params.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnist_gan.settings.configs import LOSSES, TrainConfig

Tensor = torch.Tensor


@dataclass(frozen=True)
class Objective:
    d_loss: Callable[[Tensor, Tensor], Tensor]  # (real logits (B,), fake logits (B,)) -> scalar
    g_loss: Callable[..., Tensor]  # fake logits (B,) [, real logits (B,) when paired] -> scalar
    score: Callable[[Tensor], Tensor]  # what D's output means, for the logged D(x) / D(G(z)) stats
    gp_default: float = 0.0  # gradient penalty weight when params leave gp_weight null
    paired: bool = False  # G's loss also reads D(x) of the real batch its fakes are paired with


def _bce_d(real: Tensor, fake: Tensor) -> Tensor:
    # maximize log D(x) + log(1 - D(G(z)))
    return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
        fake, torch.zeros_like(fake)
    )


def _bce_g(fake: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))  # maximize log D(G(z))


def _hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def _wasserstein_d(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def _minus_mean(fake: Tensor) -> Tensor:
    return -fake.mean()  # hinge and WGAN share the generator loss


def _ls_d(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * ((real - 1.0).square().mean() + fake.square().mean())


def _ls_g(fake: Tensor) -> Tensor:
    return 0.5 * (fake - 1.0).square().mean()


def _rp_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.softplus(fake - real).mean()  # -log sigmoid(D(x) - D(G(z))), pair by pair


def _rp_g(fake: Tensor, real: Tensor) -> Tensor:
    return F.softplus(real - fake).mean()


def _identity(x: Tensor) -> Tensor:
    return x


OBJECTIVES: dict[str, Objective] = {
    # score: what the logged D(x) / D(G(z)) are (outputs/curves.py READINGS says how a person reads them)
    "bce": Objective(_bce_d, _bce_g, score=torch.sigmoid),  # D(x) is a probability
    "hinge": Objective(_hinge_d, _minus_mean, score=_identity),  # D(x) is a margin score
    "wgan-gp": Objective(_wasserstein_d, _minus_mean, score=_identity, gp_default=10.0),  # a critic value
    "lsgan": Objective(_ls_d, _ls_g, score=_identity),  # regressed towards 1 (real) and 0 (fake)
    "rpgan": Objective(_rp_d, _rp_g, score=_identity, paired=True),  # only a pair's difference matters
}


assert tuple(OBJECTIVES) == LOSSES, "configs.LOSSES names the objectives params.yaml accepts"


def _input_grad_sq(discriminator: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
    """||dD(x)/dx||^2 per sample (B,), with the graph kept so the penalty can be backpropagated."""
    x = x.detach().requires_grad_(True)
    out = discriminator(x, y)
    (grad,) = torch.autograd.grad(out.float().sum(), x, create_graph=True)
    return grad.float().flatten(1).square().sum(1)


def r1_penalty(discriminator: nn.Module, real: Tensor, y: Tensor | None = None) -> Tensor:
    """R1 (Mescheder et al. 2018): E ||grad_x D(x)||^2 on real data; the trainer scales it by r1_gamma / 2."""
    return _input_grad_sq(discriminator, real, y).mean()


def r2_penalty(discriminator: nn.Module, fake: Tensor, y: Tensor | None = None) -> Tensor:
    """R2 (R3GAN, Huang et al. 2024): E ||grad_x D(x)||^2 on generated data; scaled by r2_gamma / 2."""
    return _input_grad_sq(discriminator, fake, y).mean()


def gradient_penalty(
    discriminator: nn.Module,
    real: Tensor,
    fake: Tensor,
    y: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E (||grad D(x_hat)|| - 1)^2 at random real/fake interpolates."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, generator=generator)
    x_hat = torch.lerp(real.detach(), fake.detach().to(real.dtype), alpha.to(real.dtype))
    return (_input_grad_sq(discriminator, x_hat, y).add(1e-12).sqrt() - 1.0).square().mean()


@dataclass(frozen=True)
class Regularizer:
    """A penalty added to D's loss as `scale * weight * penalty(D, real, fake, y, rng)` when its weight is > 0."""

    weight: str  # the TrainConfig field (= params key) holding its weight
    penalty: Callable[..., Tensor]  # (discriminator, real, fake, y, rng) -> scalar
    scale: float = 1.0  # R1 is conventionally gamma / 2
    uses_rng: bool = False  # draws from the trainer's noise generator (which a CUDA graph cannot replay)


REGULARIZERS: dict[str, Regularizer] = {
    "gp": Regularizer(
        "gp_weight", lambda d, real, fake, y, rng: gradient_penalty(d, real, fake, y, rng), uses_rng=True
    ),
    "r1": Regularizer("r1_gamma", lambda d, real, fake, y, rng: r1_penalty(d, real, y), scale=0.5),
    "r2": Regularizer("r2_gamma", lambda d, real, fake, y, rng: r2_penalty(d, fake, y), scale=0.5),
}


def penalty_weights(train: TrainConfig) -> dict[str, float]:
    """The weight of every regularizer for these settings; gp_weight null = the loss's own default."""
    weights = {r.weight: getattr(train, r.weight) for r in REGULARIZERS.values()}
    if weights.get("gp_weight") is None:
        weights["gp_weight"] = OBJECTIVES[train.loss].gp_default
    return weights
