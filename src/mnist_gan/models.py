"""GAN generators and discriminators for MNIST, one family per system users know.

- ``dcgan``: DCGAN (Radford et al. 2015, https://arxiv.org/abs/1511.06434) redesigned for 28x28,
  latent 1x1 -> 4x4 -> 7x7 -> 14x14 -> 28x28 (shared/seeds/000).
- ``dcgan64``: the 64x64 DCGAN of pytorch/examples ``dcgan/main.py`` (seed 004); MNIST is resized to 64.
- ``conv``: the "simple conv GAN" of seed 003 (two stride-2 ConvTranspose layers from a 7x7 noise map).
- ``mlp``: fully connected G and D (Goodfellow et al. 2014); seed 001 and the small GAN of seed 002
  differ only in hidden sizes, activation and slope, all of which are params.

Every discriminator returns logits of shape (B,): training uses BCEWithLogitsLoss, which is the same maths
as Sigmoid + BCELoss but numerically safe (and safe under autocast). D(x) is reported as sigmoid(logit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

MODELS = ("dcgan", "dcgan64", "conv", "mlp")


@dataclass
class GANConfig:
    model: str = "dcgan"  # one of MODELS
    latent_dim: int = 100  # length of z (channels of the noise map for `conv`)
    g_features: int = 64  # conv models: generator width, "ngf" in dcgan/main.py
    d_features: int = 64  # conv models: discriminator width, "ndf"
    g_hidden: list[int] = field(default_factory=lambda: [256, 256])  # mlp: generator hidden sizes
    d_hidden: list[int] = field(default_factory=lambda: [256, 256])  # mlp: discriminator hidden sizes
    g_activation: str = "relu"  # hidden activation of G: relu | leaky_relu
    leaky_slope: float = 0.2  # negative slope of every LeakyReLU
    image_size: int = 28  # H = W of the images; 28 for dcgan/conv, 64 for dcgan64, any for mlp
    channels: int = 1  # MNIST is grayscale

    @classmethod
    def from_params(cls, params: dict) -> "GANConfig":
        """The model keys of a validated params.yaml (top level) plus normalize.image_size."""
        keys = [f.name for f in fields(cls) if f.name in params]
        return cls(**{k: params[k] for k in keys}, image_size=params["normalize"]["image_size"])


def _g_act(cfg: GANConfig) -> nn.Module:
    if cfg.g_activation == "leaky_relu":
        return nn.LeakyReLU(cfg.leaky_slope, inplace=True)
    return nn.ReLU(inplace=True)


def _d_act(cfg: GANConfig) -> nn.Module:
    return nn.LeakyReLU(cfg.leaky_slope, inplace=True)


class Generator(nn.Module):
    """z of shape (B, *latent_shape) -> images (B, C, H, W) in [-1, 1]."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        c, f, z = cfg.channels, cfg.g_features, cfg.latent_dim
        if cfg.model == "dcgan":
            self.latent_shape = (z, 1, 1)
            self.main = nn.Sequential(
                nn.ConvTranspose2d(z, f * 4, 4, stride=1, padding=0, bias=False),
                nn.BatchNorm2d(f * 4), _g_act(cfg),  # (f*4) x 4 x 4
                nn.ConvTranspose2d(f * 4, f * 2, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(f * 2), _g_act(cfg),  # (f*2) x 7 x 7
                nn.ConvTranspose2d(f * 2, f, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(f), _g_act(cfg),  # f x 14 x 14
                nn.ConvTranspose2d(f, c, 4, stride=2, padding=1, bias=False),
                nn.Tanh(),  # c x 28 x 28
            )
        elif cfg.model == "dcgan64":
            self.latent_shape = (z, 1, 1)
            self.main = nn.Sequential(
                nn.ConvTranspose2d(z, f * 8, 4, stride=1, padding=0, bias=False),
                nn.BatchNorm2d(f * 8), _g_act(cfg),  # (f*8) x 4 x 4
                nn.ConvTranspose2d(f * 8, f * 4, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(f * 4), _g_act(cfg),  # (f*4) x 8 x 8
                nn.ConvTranspose2d(f * 4, f * 2, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(f * 2), _g_act(cfg),  # (f*2) x 16 x 16
                nn.ConvTranspose2d(f * 2, f, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(f), _g_act(cfg),  # f x 32 x 32
                nn.ConvTranspose2d(f, c, 4, stride=2, padding=1, bias=False),
                nn.Tanh(),  # c x 64 x 64
            )
        elif cfg.model == "conv":
            # Seed 003 starts with ConvTranspose(z, 256, 4, 2, 1), which doubles H and W, and has two of
            # them before a size-keeping 3x3: so 28x28 needs a 7x7 input. z is therefore a 7x7 noise map
            # with latent_dim channels (a 1x1 z would give 4x4 images).
            self.latent_shape = (z, 7, 7)
            self.main = nn.Sequential(
                nn.ConvTranspose2d(z, f * 4, 4, stride=2, padding=1),
                nn.BatchNorm2d(f * 4), _g_act(cfg),  # (f*4) x 14 x 14
                nn.ConvTranspose2d(f * 4, f * 2, 4, stride=2, padding=1),
                nn.BatchNorm2d(f * 2), _g_act(cfg),  # (f*2) x 28 x 28
                nn.ConvTranspose2d(f * 2, c, 3, stride=1, padding=1),
                nn.Tanh(),  # c x 28 x 28
            )
        elif cfg.model == "mlp":
            self.latent_shape = (z,)
            sizes = [z, *cfg.g_hidden]
            layers: list[nn.Module] = []
            for n_in, n_out in zip(sizes, sizes[1:]):
                layers += [nn.Linear(n_in, n_out), _g_act(cfg)]
            layers += [nn.Linear(sizes[-1], c * cfg.image_size**2), nn.Tanh()]  # (c*H*W,)
            layers += [nn.Unflatten(1, (c, cfg.image_size, cfg.image_size))]  # c x H x W
            self.main = nn.Sequential(*layers)
        else:
            raise ValueError(f"unknown model {cfg.model!r}; expected one of {', '.join(MODELS)}")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class Discriminator(nn.Module):
    """images (B, C, H, W) -> logits (B,); sigmoid(logit) is the probability that the image is real."""

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        c, f = cfg.channels, cfg.d_features
        if cfg.model == "dcgan":
            self.main = nn.Sequential(
                nn.Conv2d(c, f, 4, stride=2, padding=1, bias=False), _d_act(cfg),  # f x 14 x 14
                nn.Conv2d(f, f * 2, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(f * 2), _d_act(cfg),  # (f*2) x 7 x 7
                nn.Conv2d(f * 2, f * 4, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(f * 4), _d_act(cfg),  # (f*4) x 4 x 4
                nn.Conv2d(f * 4, 1, 4, stride=1, padding=0, bias=False),  # 1 x 1 x 1
                nn.Flatten(0),
            )
        elif cfg.model == "dcgan64":
            self.main = nn.Sequential(
                nn.Conv2d(c, f, 4, stride=2, padding=1, bias=False), _d_act(cfg),  # f x 32 x 32
                nn.Conv2d(f, f * 2, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(f * 2), _d_act(cfg),  # (f*2) x 16 x 16
                nn.Conv2d(f * 2, f * 4, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(f * 4), _d_act(cfg),  # (f*4) x 8 x 8
                nn.Conv2d(f * 4, f * 8, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(f * 8), _d_act(cfg),  # (f*8) x 4 x 4
                nn.Conv2d(f * 8, 1, 4, stride=1, padding=0, bias=False),  # 1 x 1 x 1
                nn.Flatten(0),
            )
        elif cfg.model == "conv":
            self.main = nn.Sequential(
                nn.Conv2d(c, f, 4, stride=2, padding=1), _d_act(cfg),  # f x 14 x 14
                nn.Conv2d(f, f * 2, 4, stride=2, padding=1),
                nn.BatchNorm2d(f * 2), _d_act(cfg),  # (f*2) x 7 x 7
                nn.Conv2d(f * 2, f * 4, 4, stride=2, padding=1), _d_act(cfg),  # (f*4) x 3 x 3
                nn.Flatten(1),
                nn.Linear(f * 4 * 3 * 3, 1),  # 1
                nn.Flatten(0),
            )
        elif cfg.model == "mlp":
            sizes = [c * cfg.image_size**2, *cfg.d_hidden]
            layers: list[nn.Module] = [nn.Flatten(1)]  # (c*H*W,)
            for n_in, n_out in zip(sizes, sizes[1:]):
                layers += [nn.Linear(n_in, n_out), _d_act(cfg)]
            layers += [nn.Linear(sizes[-1], 1), nn.Flatten(0)]  # 1
            self.main = nn.Sequential(*layers)
        else:
            raise ValueError(f"unknown model {cfg.model!r}; expected one of {', '.join(MODELS)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def dcgan_init(module: nn.Module) -> None:
    """weights_init of dcgan/main.py: conv weights ~ N(0, 0.02), batch-norm weights ~ N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_gan(cfg: GANConfig, init: str = "pytorch") -> tuple[Generator, Discriminator]:
    """Both networks for `cfg`; init "dcgan" applies `dcgan_init`, "pytorch" keeps the layer defaults."""
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    if init == "dcgan":
        generator.apply(dcgan_init)
        discriminator.apply(dcgan_init)
    return generator, discriminator


def weights_file(model: nn.Module) -> dict:
    """What models/generator.pt holds: enough to rebuild the network with no other file."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"state_dict": state, "config": asdict(model.cfg)}
