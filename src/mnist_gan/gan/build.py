"""From settings to a ready `Trainer`: the derived fields of the configs, self-conditioning labels, the models.

`build_trainer` is what the train stage (or a notebook, or a sweep trial) calls: it seeds, derives the networks'
config from the settings and the data, builds and places both models, and wraps them with their optimizers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from mnist_gan.gan.clusters import self_condition_labels
from mnist_gan.gan.losses import penalty_weights
from mnist_gan.gan.models import build_gan
from mnist_gan.gan.parallel import prepare_models
from mnist_gan.gan.trainer import Hooks, RunFiles, Trainer
from mnist_gan.runtime import precision_reason, resolve_precision, seed_everything
from mnist_gan.settings.configs import GANConfig, TrainConfig, values

NUM_CLASSES = 10  # MNIST digits: what `conditional: true` conditions on


def gan_config(
    gan: GANConfig, train: TrainConfig, image_size: int, class_prior: list[float] | None = None
) -> GANConfig:
    """The networks' settings completed with their derived fields: `image_size` (normalize.image_size), the
    classes (10 digits when conditional; one per cluster for a self-conditioned model, whose cluster shares are
    `class_prior`), D's BatchNorm, kept (the seeds') unless something needs per-sample outputs: spectral norm
    (SN-GAN's D has none) or any penalty on D's input gradients (WGAN-GP's, R1), and D's auxiliary classifier
    (`ac_weight` > 0: a head over the same classes)."""
    penalties = any(v > 0 for v in penalty_weights(train).values())
    classes = NUM_CLASSES if train.conditional else len(class_prior or ())
    return replace(
        gan,
        image_size=image_size,
        d_batchnorm=not (gan.spectral_norm or penalties),
        num_classes=classes,
        class_prior=None if train.conditional else class_prior,
        d_classes=classes if train.ac_weight > 0 else 0,
    )


def train_config(train: TrainConfig, precision: str) -> TrainConfig:
    """The trainer's config: `precision` resolved for the device (`runtime.resolve_precision`) and the penalty
    weights resolved (`losses.penalty_weights`)."""
    return replace(train, **penalty_weights(train), precision=precision)


def recorded_settings(gan: GANConfig, train: TrainConfig, image_size: int) -> dict:
    """The settings a run used, by params.yaml key, as generator.pt records them."""
    return {**values(gan), **values(train), "normalize.image_size": image_size}


def build_trainer(
    gan: GANConfig,
    train: TrainConfig,
    image_size: int,
    data: dict,
    device: torch.device,
    rank: int = 0,
    world: int = 1,
    cuda_graph: bool = True,
    compile_mode: str | None = None,
) -> Trainer:
    """Seed from `train.seed`, then build the run: `data` = {"images": uint8 (N, 1, S, S), "labels": (N,)} as the
    normalize stage writes it. An unconditional run with `clusters` > 0 conditions on k-means clusters of the
    images instead of the digits (self-conditioning), so its labels are never read."""
    seed_everything(train.seed)
    precision = resolve_precision(train.precision, device)
    cfg = train_config(train, precision)
    labels, prior = data["labels"], None
    if not cfg.conditional and cfg.clusters:
        labels, prior = self_condition_labels(data["images"], cfg.clusters, cfg.seed)
    networks = gan_config(gan, cfg, image_size, prior)
    generator, discriminator = prepare_models(*build_gan(networks, cfg.init), cfg, device, world)
    images = data["images"].to(device)
    why = precision_reason(train.precision, precision, device)
    return Trainer(generator, discriminator, images, cfg, device, rank, world, labels, cuda_graph, compile_mode, why)


def train_run(
    gan: GANConfig,
    train: TrainConfig,
    image_size: int,
    data: dict,
    folder: Path,
    checkpoint: Path,
    device: torch.device,
    *,
    rank: int = 0,
    world: int = 1,
    cuda_graph: bool = True,
    compile_mode: str | None = None,
    probe=None,
    hooks: Hooks | None = None,
    max_steps: int | None = None,
) -> Trainer:
    """The train stage's work, in-process (the stage, the GPU check, a notebook): build the run on `data` and fit
    it, writing generator.pt and discriminator.pt into `folder` and the resumable checkpoint at
    `checkpoint`; `probe` scores the generator after every epoch (`evaluation.probe.QualityProbe`), `hooks` hear
    about it. Returns the trainer, fitted."""
    trainer = build_trainer(gan, train, image_size, data, device, rank, world, cuda_graph, compile_mode)
    files = RunFiles(Path(folder), Path(checkpoint), recorded_settings(gan, train, image_size))
    trainer.fit(files, max_steps, probe, hooks)
    return trainer
