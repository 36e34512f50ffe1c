"""GAN generators and discriminators for MNIST: the networks every family (families.py) shares.

The reference is pytorch/examples ``dcgan/main.py``; a family builds the bodies; `Generator` and
`Discriminator` add what every family shares:

- Conditioning is an argument, `G(z, y)` and `D(x, y)`, with `y=None` when `num_classes == 0`.
  G: conditional BatchNorm (de Vries et al. 2017; Miyato & Koyama 2018): every BatchNorm of G takes a per-class
  gain and bias, so the label steers every layer, not only the input; the BN-free MLP G embeds the label and
  concatenates it to z (Mirza & Osindero 2014). D: a projection head (Miyato & Koyama 2018),
  logit = w.h + embed(y).h on D's last features h, which measured far better than concatenating one-hot
  vectors to the input (the projection is the inner product the optimal D under hinge/BCE has). With
  `d_classes` > 0 (`ac_weight`), D also has an auxiliary classifier head on h (AC-GAN, Odena et al. 2017).
- ``spectral_norm``: every Conv/Linear/Embedding of D is spectrally normalized (Miyato et al. 2018).
- ``d_batchnorm``: whether D's hidden layers use BatchNorm (the seeds do; spectral norm and a gradient
  penalty want a D without batch statistics).

Every discriminator returns logits of shape (B,), so losses are computed on logits (safe under autocast).
A fifth family is one class with `generator` / `discriminator` builders, added to `families.FAMILIES`.
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _sn

from mnist_gan.gan.families import family
from mnist_gan.gan.layers import ConditionalBatchNorm2d, CondSequential, d_bias
from mnist_gan.settings.configs import INITS as INIT_NAMES
from mnist_gan.settings.configs import GANConfig, conditioning_words


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
            return self.main(z, y, z if self.cfg.g_self_modulation else None)
        return self.main(z)


class Discriminator(nn.Module):
    """D(x, y): images (B, C, H, W) and labels (B,) or None -> logits (B,); with `classes=True` also the class
    logits (B, d_classes) of its auxiliary classifier, from the same features in the same pass.

    logit = head(h) [+ <embed(y), h>] with h = body(x): the projection discriminator when conditional.
    """

    def __init__(self, cfg: GANConfig):
        super().__init__()
        self.cfg = cfg
        self.body, features = family(cfg).discriminator(cfg)
        self.head = nn.Linear(features, 1, bias=family(cfg).d_head_bias or d_bias(cfg))  # the seeds' last layer
        self.embed = nn.Embedding(cfg.num_classes, features) if cfg.num_classes else None
        self.classifier = nn.Linear(features, cfg.d_classes) if cfg.d_classes else None  # AC-GAN's head
        if cfg.spectral_norm:
            for module in list(self.modules()):
                if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)):
                    _sn(module)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, classes: bool = False):
        h = self.body(x)  # (B, F)
        logits = self.head(h).flatten()
        if self.embed is not None:
            logits = logits + (self.embed(y) * h).sum(1)  # projection (Miyato & Koyama 2018)
        if not classes:
            return logits
        if self.classifier is None:
            raise ValueError("this D has no auxiliary classifier (d_classes = 0): it cannot return class logits")
        return logits, self.classifier(h)


def asks_digits(cfg: GANConfig) -> bool:
    """Whether y is a digit a user may ask for (conditional: true), not a self-conditioning cluster id."""
    return bool(cfg.num_classes) and cfg.class_prior is None


def conditioning(cfg: GANConfig) -> str:
    """What y is, in words (`configs.conditioning_words`): conditional | unconditional, self-conditioned on K
    clusters | unconditional."""
    return conditioning_words(asks_digits(cfg), cfg.num_classes)


def random_labels(cfg: GANConfig, n: int, rng: torch.Generator) -> torch.Tensor | None:
    """n labels (CPU) as training meets them: uniform digits, cluster ids by their share, None if unconditional."""
    if not cfg.num_classes:
        return None
    if cfg.class_prior is None:
        return torch.randint(cfg.num_classes, (n,), generator=rng)
    return torch.multinomial(torch.tensor(cfg.class_prior, dtype=torch.double), n, replacement=True, generator=rng)


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
        raw = (
            module.parametrizations.weight.original if parametrize.is_parametrized(module, "weight") else module.weight
        )
        nn.init.normal_(raw, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, ConditionalBatchNorm2d):  # after its children (apply is post-order): starts as BN
        for part in (module.gain, module.bias):
            if part is not None:
                nn.init.zeros_(part.weight)
        if module.modulation is not None:
            nn.init.zeros_(module.modulation[-1].weight)
            nn.init.zeros_(module.modulation[-1].bias)


def pytorch_init(module: nn.Module) -> None:
    """The layers' own defaults, except conditional BatchNorm, which always starts as plain BN."""
    if isinstance(module, ConditionalBatchNorm2d):
        dcgan_init(module)


INITS = {"dcgan": dcgan_init, "pytorch": pytorch_init}  # `init` in params.yaml: applied to every module
assert tuple(INITS) == INIT_NAMES, "configs.INITS names the inits params.yaml accepts"


def build_gan(cfg: GANConfig, init: str = "pytorch") -> tuple[Generator, Discriminator]:
    """Both networks for `cfg`, every module initialised by `INITS[init]`."""
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    for net in (generator, discriminator):
        net.apply(INITS[init])
    return generator, discriminator


def weights_file(model: nn.Module) -> dict:
    """What models/generator.pt holds: enough to rebuild the network with no other file."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"state_dict": state, "config": asdict(model.cfg)}
