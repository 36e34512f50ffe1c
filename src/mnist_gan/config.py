"""Where validated params become the GAN's configs, with the fields derived from several keys.

Models and trainer know their dataclasses only, never the layout of params.yaml; a stage calls these with its
params (and the CLI options that may stand in for some keys). Plain sections map field by field through
`params.to_config` (the classifier stage does `to_config(ClassifierConfig, P["classifier"])`).
"""

from __future__ import annotations

from mnist_gan.losses import OBJECTIVES
from mnist_gan.models import GANConfig
from mnist_gan.params import to_config
from mnist_gan.training import TrainConfig

NUM_CLASSES = 10  # MNIST digits: what `conditional: true` conditions on


def gan_config(p: dict, class_prior: list[float] | None = None) -> GANConfig:
    """GANConfig from the top-level model keys plus normalize.image_size; `class_prior`: the cluster shares of
    a self-conditioned model (`clusters.self_condition_labels`), which then has one class per cluster.

    D keeps the seeds' BatchNorm unless something needs per-sample outputs: spectral norm (SN-GAN's D has
    none), a gradient penalty (WGAN-GP) or R1.
    """
    d_batchnorm = not (p["spectral_norm"] or OBJECTIVES[p["loss"]].needs_bn_free_d or p["r1_gamma"] > 0)
    return to_config(GANConfig, {**p, "image_size": p["normalize"]["image_size"],
                                 "num_classes": NUM_CLASSES if p["conditional"] else len(class_prior or ()),
                                 "class_prior": None if p["conditional"] else class_prior, "d_batchnorm": d_batchnorm})


def train_config(p: dict, precision: str, **overrides) -> TrainConfig:
    """TrainConfig from the top-level training keys, `precision` resolved for the device (utils.resolve_precision),
    and CLI options given in `overrides` (already checked against params.yaml's rules)."""
    return to_config(TrainConfig, {**p, **overrides, "precision": precision})
