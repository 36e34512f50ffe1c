"""GAN generators and discriminators for MNIST: one family per system users know, registered by name.

- ``dcgan``: DCGAN (Radford et al. 2015, https://arxiv.org/abs/1511.06434) redesigned for 28x28,
  latent 1x1 -> 4x4 -> 7x7 -> 14x14 -> 28x28 (shared/seeds/000).
- ``dcgan64``: the 64x64 DCGAN of pytorch/examples ``dcgan/main.py`` (seed 004); MNIST is resized to 64.
- ``conv``: the "simple conv GAN" of seed 003 (two stride-2 ConvTranspose layers from a 7x7 noise map).
- ``mlp``: fully connected G and D (Goodfellow et al. 2014); seed 001 and the small GAN of seed 002
  differ only in hidden sizes, activation and slope, all of which are params.

A family builds the bodies; `Generator` and `Discriminator` add what every family shares:

- Conditioning is an argument, `G(z, y)` and `D(x, y)`, with `y=None` when `num_classes == 0`.
  G: conditional BatchNorm (de Vries et al. 2017; Miyato & Koyama 2018): every BatchNorm of G takes a per-class
  gain and bias, so the label steers every layer, not only the input; the BN-free MLP G embeds the label and
  concatenates it to z (Mirza & Osindero 2014). D: a projection head (Miyato & Koyama 2018),
  logit = w.h + embed(y).h on D's last features h, which measured far better than concatenating one-hot
  vectors to the input (the projection is the inner product the optimal D under hinge/BCE has).
- ``spectral_norm``: every Conv/Linear/Embedding of D is spectrally normalized (Miyato et al. 2018).
- ``d_batchnorm``: whether D's hidden layers use BatchNorm (the seeds do; spectral norm and a gradient
  penalty want a D without batch statistics).

Every discriminator returns logits of shape (B,), so losses are computed on logits (safe under autocast).
A fifth family is one class with `generator` / `discriminator` builders, added to `FAMILIES`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _sn


@dataclass
class GANConfig:
    model: str = "dcgan"  # a key of FAMILIES
    latent_dim: int = 100  # length of z (channels of the noise map for `conv`)
    g_features: int = 64  # conv models: generator width, "ngf" in dcgan/main.py
    d_features: int = 64  # conv models: discriminator width, "ndf"
    g_hidden: list[int] = field(default_factory=lambda: [256, 256])  # mlp: generator hidden sizes
    d_hidden: list[int] = field(default_factory=lambda: [256, 256])  # mlp: discriminator hidden sizes
    g_activation: str = "relu"  # hidden activation of G: relu | leaky_relu
    leaky_slope: float = 0.2  # negative slope of every LeakyReLU
    image_size: int = 28  # H = W of the images; 28 for dcgan/conv, 64 for dcgan64, any for mlp
    channels: int = 1  # MNIST is grayscale
    num_classes: int = 0  # 0 = unconditional; 10 = G(z, y) and D(x, y) for digits y
    spectral_norm: bool = False  # spectral normalization of every D layer
    d_batchnorm: bool = True  # BatchNorm in D's hidden layers (conv families)


# -- shared pieces --------------------------------------------------------------------------------------
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


# -- the families: bodies only ----------------------------------------------------------------------------
class DCGAN28:
    """Seed 000: DCGAN designed for 28x28 (1 -> 4 -> 7 -> 14 -> 28)."""

    image_size = 28
    d_head_bias = False  # the seed's last D layer is a bias-free conv

    @staticmethod
    def generator(cfg: GANConfig) -> tuple[nn.Module, tuple[int, ...]]:
        c, f, z = cfg.channels, cfg.g_features, cfg.latent_dim
        return CondSequential(
            nn.ConvTranspose2d(z, f * 4, 4, stride=1, padding=0, bias=False),
            g_norm(cfg, f * 4), g_act(cfg),  # (f*4) x 4 x 4
            nn.ConvTranspose2d(f * 4, f * 2, 3, stride=2, padding=1, bias=False),
            g_norm(cfg, f * 2), g_act(cfg),  # (f*2) x 7 x 7
            nn.ConvTranspose2d(f * 2, f, 4, stride=2, padding=1, bias=False),
            g_norm(cfg, f), g_act(cfg),  # f x 14 x 14
            nn.ConvTranspose2d(f, c, 4, stride=2, padding=1, bias=False),
            nn.Tanh(),  # c x 28 x 28
        ), (z, 1, 1)

    @staticmethod
    def discriminator(cfg: GANConfig) -> tuple[nn.Module, int]:
        c, f = cfg.channels, cfg.d_features
        return nn.Sequential(
            nn.Conv2d(c, f, 4, stride=2, padding=1, bias=d_bias(cfg)), d_act(cfg),  # f x 14 x 14
            nn.Conv2d(f, f * 2, 4, stride=2, padding=1, bias=d_bias(cfg)), *d_norm(cfg, f * 2), d_act(cfg),  # 2f x 7 x 7
            nn.Conv2d(f * 2, f * 4, 3, stride=2, padding=1, bias=d_bias(cfg)), *d_norm(cfg, f * 4), d_act(cfg),  # 4f x 4 x 4
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
            g_norm(cfg, f * 8), g_act(cfg),  # (f*8) x 4 x 4
            nn.ConvTranspose2d(f * 8, f * 4, 4, stride=2, padding=1, bias=False),
            g_norm(cfg, f * 4), g_act(cfg),  # (f*4) x 8 x 8
            nn.ConvTranspose2d(f * 4, f * 2, 4, stride=2, padding=1, bias=False),
            g_norm(cfg, f * 2), g_act(cfg),  # (f*2) x 16 x 16
            nn.ConvTranspose2d(f * 2, f, 4, stride=2, padding=1, bias=False),
            g_norm(cfg, f), g_act(cfg),  # f x 32 x 32
            nn.ConvTranspose2d(f, c, 4, stride=2, padding=1, bias=False),
            nn.Tanh(),  # c x 64 x 64
        ), (z, 1, 1)

    @staticmethod
    def discriminator(cfg: GANConfig) -> tuple[nn.Module, int]:
        c, f = cfg.channels, cfg.d_features
        return nn.Sequential(
            nn.Conv2d(c, f, 4, stride=2, padding=1, bias=d_bias(cfg)), d_act(cfg),  # f x 32 x 32
            nn.Conv2d(f, f * 2, 4, stride=2, padding=1, bias=d_bias(cfg)), *d_norm(cfg, f * 2), d_act(cfg),  # 2f x 16 x 16
            nn.Conv2d(f * 2, f * 4, 4, stride=2, padding=1, bias=d_bias(cfg)), *d_norm(cfg, f * 4), d_act(cfg),  # 4f x 8 x 8
            nn.Conv2d(f * 4, f * 8, 4, stride=2, padding=1, bias=d_bias(cfg)), *d_norm(cfg, f * 8), d_act(cfg),  # 8f x 4 x 4
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
            nn.ConvTranspose2d(z, f * 4, 4, stride=2, padding=1),
            g_norm(cfg, f * 4), g_act(cfg),  # (f*4) x 14 x 14
            nn.ConvTranspose2d(f * 4, f * 2, 4, stride=2, padding=1),
            g_norm(cfg, f * 2), g_act(cfg),  # (f*2) x 28 x 28
            nn.ConvTranspose2d(f * 2, c, 3, stride=1, padding=1),
            nn.Tanh(),  # c x 28 x 28
        ), (z, 7, 7)

    @staticmethod
    def discriminator(cfg: GANConfig) -> tuple[nn.Module, int]:
        c, f = cfg.channels, cfg.d_features
        return nn.Sequential(
            nn.Conv2d(c, f, 4, stride=2, padding=1), d_act(cfg),  # f x 14 x 14
            nn.Conv2d(f, f * 2, 4, stride=2, padding=1), *d_norm(cfg, f * 2), d_act(cfg),  # (f*2) x 7 x 7
            nn.Conv2d(f * 2, f * 4, 4, stride=2, padding=1), d_act(cfg),  # (f*4) x 3 x 3
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
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(n_in, n_out), g_act(cfg)]
        layers += [nn.Linear(sizes[-1], c * s * s), nn.Tanh(), nn.Unflatten(1, (c, s, s))]  # c x H x W
        return nn.Sequential(*layers), (z,)

    @staticmethod
    def discriminator(cfg: GANConfig) -> tuple[nn.Module, int]:
        sizes = [cfg.channels * cfg.image_size**2, *cfg.d_hidden]
        layers: list[nn.Module] = [nn.Flatten(1)]  # (c*H*W,)
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(n_in, n_out), d_act(cfg)]
        return nn.Sequential(*layers), sizes[-1]


FAMILIES = {"dcgan": DCGAN28, "dcgan64": DCGAN64, "conv": Conv28, "mlp": MLP}
MODELS = tuple(FAMILIES)


def family(cfg: GANConfig):
    try:
        return FAMILIES[cfg.model]
    except KeyError:
        raise ValueError(f"unknown model {cfg.model!r}; expected one of {', '.join(MODELS)}") from None


# -- the networks every family shares -----------------------------------------------------------------------
class Generator(nn.Module):
    """G(z, y): z of shape (B, *latent_shape), labels y (B,) or None -> images (B, C, H, W) in [-1, 1]."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        self.main, self.latent_shape = family(cfg).generator(cfg)
        # a G without BatchNorm to condition (the MLP) takes the label at its input: [z, embed(y)]
        by_input = cfg.num_classes and not isinstance(self.main, CondSequential)
        self.embed = nn.Embedding(cfg.num_classes, cfg.latent_dim) if by_input else None

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            return self.main(torch.cat([z, self.embed(y).to(z.dtype)], dim=1))
        if isinstance(self.main, CondSequential):
            return self.main(z, y)
        return self.main(z)


class Discriminator(nn.Module):
    """D(x, y): images (B, C, H, W) and labels (B,) or None -> logits (B,).

    logit = head(h) [+ <embed(y), h>] with h = body(x): the projection discriminator when conditional.
    """

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        self.body, features = family(cfg).discriminator(cfg)
        self.head = nn.Linear(features, 1, bias=family(cfg).d_head_bias or d_bias(cfg))  # the seeds' last layer
        self.embed = nn.Embedding(cfg.num_classes, features) if cfg.num_classes else None
        if cfg.spectral_norm:
            for module in list(self.modules()):
                if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)):
                    _sn(module)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(x)  # (B, F)
        logits = self.head(h).flatten()
        if self.embed is not None:
            logits = logits + (self.embed(y) * h).sum(1)  # projection (Miyato & Koyama 2018)
        return logits


def has_batch_stats(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def is_convolutional(model: nn.Module) -> bool:
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


def dcgan_init(module: nn.Module) -> None:
    """weights_init of dcgan/main.py: conv weights ~ N(0, 0.02), batch-norm weights ~ N(1, 0.02), biases 0.

    Label embeddings are drawn like weights; conditional BatchNorm starts as plain BN (gain delta 0, bias 0).
    A spectrally normalized layer is initialised through its raw weight (`parametrizations.weight.original`).
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
        raw = module.parametrizations.weight.original if parametrize.is_parametrized(module, "weight") else module.weight
        nn.init.normal_(raw, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, ConditionalBatchNorm2d):
        nn.init.zeros_(module.gain.weight)
        nn.init.zeros_(module.bias.weight)


def build_gan(cfg: GANConfig, init: str = "pytorch") -> tuple[Generator, Discriminator]:
    """Both networks for `cfg`; init "dcgan" applies `dcgan_init`, "pytorch" keeps the layer defaults
    (conditional BatchNorm always starts as plain BN)."""
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    for net in (generator, discriminator):
        if init == "dcgan":
            net.apply(dcgan_init)
        else:
            for m in net.modules():
                if isinstance(m, ConditionalBatchNorm2d):
                    dcgan_init(m)
    return generator, discriminator


def weights_file(model: nn.Module) -> dict:
    """What models/generator.pt holds: enough to rebuild the network with no other file."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"state_dict": state, "config": asdict(model.cfg)}
