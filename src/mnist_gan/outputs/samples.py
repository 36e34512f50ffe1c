"""What the sample stage and `mnist-gan sample` write from a generator file: the grid PNG, a labelled matplotlib
figure, an interpolation strip and the images as a uint8 tensor file, each written atomically beside the grid."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from mnist_gan.data.pixels import to_uint8
from mnist_gan.gan.models import Generator
from mnist_gan.gan.sampling import generate, interpolation, load_generator, requested_labels
from mnist_gan.outputs.figures import sample_figure, save_figure
from mnist_gan.outputs.images import image_grid, save_png
from mnist_gan.storage import save_torch


def write_samples(
    generator: Generator, images: torch.Tensor, labels: torch.Tensor | None, seed: int, nrow: int, out: Path
) -> list[Path]:
    """`out` (the grid), `<out>_figure.png` (the first 64, titled with their digits when asked for),
    `<out>_interpolation.png` (`sampling.interpolation` from `seed`) and `<out>.pt`; returns the paths."""
    out = Path(out)
    figure, strip = out.with_name(out.stem + "_figure.png"), out.with_name(out.stem + "_interpolation.png")
    tensor = out.with_name(out.stem + ".pt")
    save_png(image_grid(images, nrow=nrow), out)
    titles = [str(int(d)) for d in labels[:64]] if labels is not None else None
    title = f"{generator.cfg.model}: {len(images)} samples, seed {seed}"
    save_figure(sample_figure(images[:64], title, titles), figure)
    save_png(image_grid(interpolation(generator, seed), nrow=10), strip)
    save_torch({"images": to_uint8(images), "labels": labels, "seed": seed, "config": asdict(generator.cfg)}, tensor)
    return [out, figure, strip, tensor]


def sample_weights(
    weights: Path, out: Path, n: int, digits: list[int] | None, seed: int, nrow: int, device: torch.device | str
) -> tuple[int, list[Path]]:
    """Draw `n` images from the generator file `weights` (rebuilt from the config inside it) with noise `seed`, each
    of `digits` for a conditional generator (none: class-balanced), and `write_samples` them; (images, paths).
    Raises NoDigits when digits are asked of an unconditional generator."""
    generator = load_generator(weights, device)
    labels, nrow = requested_labels(generator, n, digits, nrow, source=str(weights))
    images = generate(generator, len(labels) if labels is not None else n, seed, labels)
    return len(images), write_samples(generator, images, labels, seed, nrow, out)
