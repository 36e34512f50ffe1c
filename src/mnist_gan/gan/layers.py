"""Layers every GAN family shares: conditional BatchNorm, a label-aware Sequential, norms and activations.

Conditional BatchNorm (de Vries et al. 2017; Miyato & Koyama 2018): BatchNorm without its own affine, then a
per-class gain and bias looked up from the label, so the label steers every layer of G.
"""

from __future__ import annotations

import torch
from torch import nn

from mnist_gan.settings.configs import GANConfig


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose affine gain and bias are looked up per class: BN(x) * (1 + gamma[y]) + beta[y]."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)  # stored as a delta from 1 (zero init below)
        self.bias = nn.Embedding(num_classes, num_features)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(y)[:, :, None, None]
        return self.bn(x) * gain + self.bias(y)[:, :, None, None]


class CondSequential(nn.Sequential):
    """nn.Sequential that hands the labels to the layers that take them (conditional BatchNorm)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, y) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
        return x


def g_norm(cfg: GANConfig, n: int) -> nn.Module:
    return ConditionalBatchNorm2d(n, cfg.num_classes) if cfg.num_classes else nn.BatchNorm2d(n)


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
