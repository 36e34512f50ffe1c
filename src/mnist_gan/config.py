"""Where validated params become the GAN's configs, with the fields derived from several keys.

Models and trainer know their dataclasses only, never the layout of params.yaml; a stage calls these with its
params (and the CLI options that may stand in for some keys). Plain sections map field by field through
`params.to_config` (the classifier stage does `to_config(ClassifierConfig, P["classifier"])`).
"""

from __future__ import annotations

from mnist_gan.configs import GANConfig, TrainConfig
from mnist_gan.losses import OBJECTIVES, REGULARIZERS
from mnist_gan.params import to_config

NUM_CLASSES = 10  # MNIST digits: what `conditional: true` conditions on


def gan_config(p: dict, class_prior: list[float] | None = None) -> GANConfig:
    """GANConfig from the top-level model keys plus normalize.image_size; `class_prior`: the cluster shares of
    a self-conditioned model (`clusters.self_condition_labels`), which then has one class per cluster.

    D keeps the seeds' BatchNorm unless something needs per-sample outputs: spectral norm (SN-GAN's D has
    none) or any penalty on D's input gradients (WGAN-GP's, R1).
    """
    penalties = any(v > 0 for v in penalty_weights(p).values())
    d_batchnorm = not (p["spectral_norm"] or penalties)
    return to_config(GANConfig, {**p, "image_size": p["normalize"]["image_size"],
                                 "num_classes": NUM_CLASSES if p["conditional"] else len(class_prior or ()),
                                 "class_prior": None if p["conditional"] else class_prior, "d_batchnorm": d_batchnorm})


def penalty_weights(p: dict) -> dict[str, float]:
    """The weight of every regularizer (losses.REGULARIZERS) for params `p`; gp_weight null = the loss's default."""
    weights = {r.weight: p[r.weight] for r in REGULARIZERS.values()}
    if weights.get("gp_weight") is None:
        weights["gp_weight"] = OBJECTIVES[p["loss"]].gp_default
    return weights


def train_config(p: dict, precision: str, **overrides) -> TrainConfig:
    """TrainConfig from the top-level training keys, `precision` resolved for the device (utils.resolve_precision),
    and CLI options given in `overrides` (already checked against params.yaml's rules)."""
    return to_config(TrainConfig, {**p, **penalty_weights(p), **overrides, "precision": precision})
