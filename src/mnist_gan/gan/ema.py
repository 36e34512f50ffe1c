"""An exponential moving average of G's weights, and BatchNorm statistics recomputed to match them."""

from __future__ import annotations

import copy

import torch
from torch import nn

from mnist_gan.gan.models import random_labels


class EMA:
    """Exponential moving average of G's weights (Karras et al. 2018; Yazici et al. 2019).

    decay ramps up as min(decay, (1 + t) / (10 + t)) over the steps t (TensorFlow's ExponentialMovingAverage
    num_updates rule), so the average forgets the random init within the first epoch instead of dragging it
    along for thousands of steps. With `rampup` (StyleGAN2-ADA's ema_rampup, 0.05 there) the half-life is
    instead at most `rampup` x the images seen: decay = min(decay, 0.5 ** (1 / (rampup * (t + 1)))), so the
    average never lags more than a fixed share of the run behind G.

    BatchNorm: averaged weights with averaged running statistics sample badly (the statistics belong to other
    weights), so `recalibrate` recomputes the statistics with the EMA weights themselves from noise batches
    (what torch.optim.swa_utils.update_bn does for SWA). They are a pure function of the weights and a seed.
    """

    def __init__(self, model: nn.Module, decay: float, rampup: float | None = None):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.rampup = decay, rampup

    def beta(self, step: int) -> float:
        """The decay at step t (0-based): the weight the average keeps."""
        if self.rampup is None:
            return min(self.decay, (1 + step) / (10 + step))
        return min(self.decay, 0.5 ** (1.0 / (self.rampup * (step + 1))))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        beta = self.beta(step)
        torch._foreach_lerp_(list(self.model.parameters()), [p.detach() for p in model.parameters()], 1.0 - beta)


@torch.no_grad()
def recalibrate_bn(generator: nn.Module, batches: int, batch_size: int, seed: int) -> None:
    """Recompute G's BatchNorm running statistics as the exact mean over `batches` batches of noise
    (labels drawn as in training: `models.random_labels`); leaves G in eval mode."""
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    device = next(generator.parameters()).device
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    rng = torch.Generator().manual_seed(seed)
    generator.train()
    for _ in range(batches):
        z = torch.randn(batch_size, *generator.latent_shape, generator=rng)
        y = random_labels(generator.cfg, batch_size, rng)
        generator(z.to(device), None if y is None else y.to(device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    generator.eval()
