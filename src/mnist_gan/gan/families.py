"""The model families, one per seed system, registered by name in FAMILIES: each builds G's and D's bodies.

- ``dcgan``: DCGAN (Radford et al. 2015, https://arxiv.org/abs/1511.06434) redesigned for 28x28,
  latent 1x1 -> 4x4 -> 7x7 -> 14x14 -> 28x28 (shared/seeds/000).
- ``dcgan64``: the 64x64 DCGAN of pytorch/examples ``dcgan/main.py`` (seed 004); MNIST is resized to 64.
- ``conv``: the "simple conv GAN" of seed 003 (two stride-2 ConvTranspose layers from a 7x7 noise map).
- ``mlp``: fully connected G and D (Goodfellow et al. 2014); seed 001 and the small GAN of seed 002
  differ only in hidden sizes, activation and slope, all of which are params.

A family says its image size (None = any), whether D's last layer has a bias, and builds bodies:
`generator(cfg) -> (module taking (z[, y[, z]]), latent shape)` and `discriminator(cfg) -> (module x -> features
(B, F), F)`. `models.Generator` / `models.Discriminator` add conditioning, spectral norm and the head.
A fifth family is one more class here, entered in FAMILIES.
"""

from __future__ import annotations

from itertools import pairwise

from torch import nn

from mnist_gan.gan.layers import CondSequential, d_act, d_bias, d_mbstd, d_norm, g_act, g_norm, g_up
from mnist_gan.settings.configs import MODELS as NAMES
from mnist_gan.settings.configs import GANConfig


class DCGAN28:
    """Seed 000: DCGAN designed for 28x28 (1 -> 4 -> 7 -> 14 -> 28)."""

    image_size = 28
    d_head_bias = False  # the seed's last D layer is a bias-free conv

    @staticmethod
    def generator(cfg: GANConfig) -> tuple[nn.Module, tuple[int, ...]]:
        c, f, z = cfg.channels, cfg.g_features, cfg.latent_dim
        return CondSequential(
            nn.ConvTranspose2d(z, f * 4, 4, stride=1, padding=0, bias=False),
            g_norm(cfg, f * 4),
            g_act(cfg),  # (f*4) x 4 x 4
            *g_up(cfg, f * 4, f * 2, 7, kernel=3),
            g_norm(cfg, f * 2),
            g_act(cfg),  # (f*2) x 7 x 7
            *g_up(cfg, f * 2, f, 14),
            g_norm(cfg, f),
            g_act(cfg),  # f x 14 x 14
            *g_up(cfg, f, c, 28),
            nn.Tanh(),  # c x 28 x 28
        ), (z, 1, 1)

    @staticmethod
    def discriminator(cfg: GANConfig) -> tuple[nn.Module, int]:
        c, f = cfg.channels, cfg.d_features
        return nn.Sequential(
            nn.Conv2d(c, f, 4, stride=2, padding=1, bias=d_bias(cfg)),
            d_act(cfg),  # f x 14 x 14
            nn.Conv2d(f, f * 2, 4, stride=2, padding=1, bias=d_bias(cfg)),
            *d_norm(cfg, f * 2),
            d_act(cfg),  # 2f x 7 x 7
            *d_mbstd(cfg),  # (+1 channel with d_mbstd)
            nn.Conv2d(f * 2 + cfg.d_mbstd, f * 4, 3, stride=2, padding=1, bias=d_bias(cfg)),
            *d_norm(cfg, f * 4),
            d_act(cfg),  # 4f x 4 x 4
            nn.Flatten(1),  # the seed's last Conv(4f, 1, 4) on 4x4 is this flatten + the Linear head
        ), f * 4 * 4 * 4


class DCGAN64:
    """Seed 004: the 64x64 DCGAN of pytorch/examples (images resized to 64)."""

    image_size = 64
    d_head_bias = False

    @staticmethod
    def generator(cfg: GANConfig) -> tuple[nn.Module, tuple[int, ...]]:
        c, f, z = cfg.channels, cfg.g_features, cfg.latent_dim
        return CondSequential(
            nn.ConvTranspose2d(z, f * 8, 4, stride=1, padding=0, bias=False),
            g_norm(cfg, f * 8),
            g_act(cfg),  # (f*8) x 4 x 4
            *g_up(cfg, f * 8, f * 4, 8),
            g_norm(cfg, f * 4),
            g_act(cfg),  # (f*4) x 8 x 8
            *g_up(cfg, f * 4, f * 2, 16),
            g_norm(cfg, f * 2),
            g_act(cfg),  # (f*2) x 16 x 16
            *g_up(cfg, f * 2, f, 32),
            g_norm(cfg, f),
            g_act(cfg),  # f x 32 x 32
            *g_up(cfg, f, c, 64),
            nn.Tanh(),  # c x 64 x 64
        ), (z, 1, 1)

    @staticmethod
    def discriminator(cfg: GANConfig) -> tuple[nn.Module, int]:
        c, f = cfg.channels, cfg.d_features
        return nn.Sequential(
            nn.Conv2d(c, f, 4, stride=2, padding=1, bias=d_bias(cfg)),
            d_act(cfg),  # f x 32 x 32
            nn.Conv2d(f, f * 2, 4, stride=2, padding=1, bias=d_bias(cfg)),
            *d_norm(cfg, f * 2),
            d_act(cfg),  # 2f x 16 x 16
            nn.Conv2d(f * 2, f * 4, 4, stride=2, padding=1, bias=d_bias(cfg)),
            *d_norm(cfg, f * 4),
            d_act(cfg),  # 4f x 8 x 8
            *d_mbstd(cfg),  # (+1 channel with d_mbstd)
            nn.Conv2d(f * 4 + cfg.d_mbstd, f * 8, 4, stride=2, padding=1, bias=d_bias(cfg)),
            *d_norm(cfg, f * 8),
            d_act(cfg),  # 8f x 4 x 4
            nn.Flatten(1),
        ), f * 8 * 4 * 4


class Conv28:
    """Seed 003: two stride-2 ConvTranspose layers from a 7x7 noise map, then a size-keeping 3x3."""

    image_size = 28
    d_head_bias = True  # seed 003 ends D with Linear(flat, 1)

    @staticmethod
    def generator(cfg: GANConfig) -> tuple[nn.Module, tuple[int, ...]]:
        # Seed 003 starts with ConvTranspose(z, 256, 4, 2, 1), which doubles H and W, and has two of them
        # before a size-keeping 3x3: so 28x28 needs a 7x7 input. z is a 7x7 map with latent_dim channels.
        c, f, z = cfg.channels, cfg.g_features, cfg.latent_dim
        return CondSequential(
            *g_up(cfg, z, f * 4, 14, bias=True),
            g_norm(cfg, f * 4),
            g_act(cfg),  # (f*4) x 14 x 14
            *g_up(cfg, f * 4, f * 2, 28, bias=True),
            g_norm(cfg, f * 2),
            g_act(cfg),  # (f*2) x 28 x 28
            nn.ConvTranspose2d(f * 2, c, 3, stride=1, padding=1),
            nn.Tanh(),  # c x 28 x 28
        ), (z, 7, 7)

    @staticmethod
    def discriminator(cfg: GANConfig) -> tuple[nn.Module, int]:
        c, f = cfg.channels, cfg.d_features
        return nn.Sequential(
            nn.Conv2d(c, f, 4, stride=2, padding=1),
            d_act(cfg),  # f x 14 x 14
            nn.Conv2d(f, f * 2, 4, stride=2, padding=1),
            *d_norm(cfg, f * 2),
            d_act(cfg),  # (f*2) x 7 x 7
            *d_mbstd(cfg),  # (+1 channel with d_mbstd)
            nn.Conv2d(f * 2 + cfg.d_mbstd, f * 4, 4, stride=2, padding=1),
            d_act(cfg),  # (f*4) x 3 x 3
            nn.Flatten(1),
        ), f * 4 * 3 * 3


class MLP:
    """Seeds 001 and 002: fully connected G and D of any widths, for any image size."""

    image_size = None  # any
    d_head_bias = True

    @staticmethod
    def generator(cfg: GANConfig) -> tuple[nn.Module, tuple[int, ...]]:
        c, z, s = cfg.channels, cfg.latent_dim, cfg.image_size
        sizes = [z + (z if cfg.num_classes else 0), *cfg.g_hidden]  # [z, embed(y)] when conditional
        layers: list[nn.Module] = []
        for n_in, n_out in pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), g_act(cfg)]
        layers += [nn.Linear(sizes[-1], c * s * s), nn.Tanh(), nn.Unflatten(1, (c, s, s))]  # c x H x W
        return nn.Sequential(*layers), (z,)

    @staticmethod
    def discriminator(cfg: GANConfig) -> tuple[nn.Module, int]:
        sizes = [cfg.channels * cfg.image_size**2, *cfg.d_hidden]
        layers: list[nn.Module] = [nn.Flatten(1)]  # (c*H*W,)
        for i, (n_in, n_out) in enumerate(pairwise(sizes)):
            last = i == len(sizes) - 2  # the minibatch-std feature joins before the last hidden layer
            layers += [*(d_mbstd(cfg) if last else []), nn.Linear(n_in + (cfg.d_mbstd and last), n_out), d_act(cfg)]
        return nn.Sequential(*layers), sizes[-1]


FAMILIES = {"dcgan": DCGAN28, "dcgan64": DCGAN64, "conv": Conv28, "mlp": MLP}
MODELS = tuple(FAMILIES)
assert {k: f.image_size for k, f in FAMILIES.items()} == NAMES, "configs.MODELS names the families and their sizes"


def family(cfg: GANConfig):
    try:
        return FAMILIES[cfg.model]
    except KeyError:
        raise ValueError(f"unknown model {cfg.model!r}; expected one of {', '.join(MODELS)}") from None
