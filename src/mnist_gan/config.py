"""The fields of the configs that the train stage derives from several settings (and from the data).

Settings come from params.yaml as declared in `configs.py`; what is computed from them lives here, in one place:
GANConfig's image size, classes and D's BatchNorm, TrainConfig's resolved precision and penalty weights.
"""

from __future__ import annotations

from dataclasses import replace

from mnist_gan.configs import GANConfig, TrainConfig
from mnist_gan.losses import OBJECTIVES, REGULARIZERS

NUM_CLASSES = 10  # MNIST digits: what `conditional: true` conditions on


def gan_config(gan: GANConfig, train: TrainConfig, image_size: int,
               class_prior: list[float] | None = None) -> GANConfig:
    """The networks' config with its derived fields: `image_size` (normalize.image_size), the classes (10 digits
    when conditional; one per cluster for a self-conditioned model, whose cluster shares are `class_prior`).

    D keeps the seeds' BatchNorm unless something needs per-sample outputs: spectral norm (SN-GAN's D has
    none) or any penalty on D's input gradients (WGAN-GP's, R1).
    """
    penalties = any(v > 0 for v in penalty_weights(train).values())
    return replace(gan, image_size=image_size, d_batchnorm=not (gan.spectral_norm or penalties),
                   num_classes=NUM_CLASSES if train.conditional else len(class_prior or ()),
                   class_prior=None if train.conditional else class_prior)


def penalty_weights(train: TrainConfig) -> dict[str, float]:
    """The weight of every regularizer (losses.REGULARIZERS); gp_weight null = the loss's default."""
    weights = {r.weight: getattr(train, r.weight) for r in REGULARIZERS.values()}
    if weights.get("gp_weight") is None:
        weights["gp_weight"] = OBJECTIVES[train.loss].gp_default
    return weights


def train_config(train: TrainConfig, precision: str, **overrides) -> TrainConfig:
    """The trainer's config: `precision` resolved for the device (runtime.resolve_precision), the penalty weights
    resolved, and CLI options given in `overrides` (already checked against their settings' rules)."""
    return replace(train, **{**penalty_weights(train), **overrides, "precision": precision})
