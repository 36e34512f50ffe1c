"""Layers every GAN family shares: conditional BatchNorm, a label-aware Sequential, norms and activations.

Conditional BatchNorm (de Vries et al. 2017; Miyato & Koyama 2018): BatchNorm without its own affine, then a
per-class gain and bias looked up from the label, so the label steers every layer of G.
"""

from __future__ import annotations

import torch
from torch import nn

from mnist_gan.settings.configs import GANConfig


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose affine gain and bias are computed per sample: BN(x) * (1 + gamma) + beta, with gamma and
    beta looked up from the label (num_classes > 0) and/or, for self-modulation (Chen et al. 2019), computed
    from z by a small MLP (latent_dim > 0), so the noise steers every layer of G, not only the first."""

    def __init__(self, num_features: int, num_classes: int, latent_dim: int = 0, hidden: int = 32):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        # stored as a delta from 1 (zero init in models.dcgan_init): the layer starts as plain BN
        self.gain = nn.Embedding(num_classes, num_features) if num_classes else None
        self.bias = nn.Embedding(num_classes, num_features) if num_classes else None
        self.modulation = (
            nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * num_features))
            if latent_dim
            else None
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor | None = None) -> torch.Tensor:
        out, gain, bias = self.bn(x), 1.0, 0.0
        if self.gain is not None:
            gain = gain + self.gain(y)[:, :, None, None]
            bias = self.bias(y)[:, :, None, None]
        if self.modulation is not None:
            g, b = self.modulation(z.flatten(2).mean(2) if z.dim() > 2 else z).chunk(2, dim=1)
            gain = gain + g[:, :, None, None]
            bias = bias + b[:, :, None, None]
        return out * gain + bias


class CondSequential(nn.Sequential):
    """nn.Sequential that hands the labels (and z, for self-modulation) to the layers that take them."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, z: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, y, z) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
        return x


class MinibatchStdDev(nn.Module):
    """StyleGAN's minibatch standard deviation (Karras et al. 2018): one more channel (or feature) holding the mean
    standard deviation of the features over a group of `group` samples, so D sees a batch's variety and G is
    pushed toward it. Groups are runs of consecutive samples, so a batch of reals followed by as many fakes (the
    trainer's joint D pass, batch divisible by the group) never mixes the two."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        g = min(self.group, n)
        while n % g:
            g -= 1
        groups = x.float().reshape(n // g, g, *x.shape[1:])
        # the variance over the group as mean((x - mean)^2): torch.var over this middle dimension takes a slow CPU
        # path (~40 ms a call at the default's sizes, as long as the rest of the training step)
        var = (groups - groups.mean(dim=1, keepdim=True)).square().mean(dim=1)
        std = var.add(1e-8).sqrt().flatten(1).mean(1)  # (n // g,)
        extra = std.repeat_interleave(g).view(n, 1, *[1] * (x.dim() - 2)).expand(n, 1, *x.shape[2:])
        out = torch.cat([x, extra.to(x.dtype)], dim=1)
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            out = out.contiguous(memory_format=torch.channels_last)  # the next convolution's layout, as its input's
        return out


def g_norm(cfg: GANConfig, n: int) -> nn.Module:
    if cfg.num_classes or cfg.g_self_modulation:
        return ConditionalBatchNorm2d(n, cfg.num_classes, cfg.latent_dim if cfg.g_self_modulation else 0)
    return nn.BatchNorm2d(n)


def g_up(
    cfg: GANConfig,
    n_in: int,
    n_out: int,
    size: int,
    kernel: int = 4,
    padding: int = 1,
    bias: bool = False,
) -> list[nn.Module]:
    """G's step up to `size` x `size`: a stride-2 ConvTranspose2d (DCGAN; `kernel`, `padding` as the family has
    them), or with `g_upsample: nearest` a nearest-neighbour Upsample and a 3x3 Conv2d (Odena et al. 2016: no
    checkerboard artefacts); `nearest_last` takes the latter only in the step to the image's full size
    (`size == cfg.image_size`), where the strokes are drawn."""
    if cfg.g_upsample == "nearest" or (cfg.g_upsample == "nearest_last" and size == cfg.image_size):
        return [nn.Upsample(size=(size, size), mode="nearest"), nn.Conv2d(n_in, n_out, 3, padding=1, bias=bias)]
    return [nn.ConvTranspose2d(n_in, n_out, kernel, stride=2, padding=padding, bias=bias)]


def d_mbstd(cfg: GANConfig) -> list[nn.Module]:
    """The minibatch-std layer before D's last layer, when `d_mbstd`; it adds one channel (`int(cfg.d_mbstd)`)."""
    return [MinibatchStdDev()] if cfg.d_mbstd else []


def d_norm(cfg: GANConfig, n: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(n)] if cfg.d_batchnorm else []


def d_bias(cfg: GANConfig) -> bool:
    """The seeds' conv D layers have no bias (BatchNorm follows). Without BatchNorm they need one: a bias-free
    LeakyReLU net is positively homogeneous, D(0) = 0 exactly, and G collapses to flat gray images where D
    cannot score them below zero (measured: hinge + spectral norm, G output std 0.05 after 150 steps)."""
    return not cfg.d_batchnorm


def g_act(cfg: GANConfig) -> nn.Module:
    if cfg.g_activation == "leaky_relu":
        return nn.LeakyReLU(cfg.leaky_slope, inplace=True)
    return nn.ReLU(inplace=True)


def d_act(cfg: GANConfig) -> nn.Module:
    return nn.LeakyReLU(cfg.leaky_slope, inplace=True)
