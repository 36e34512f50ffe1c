"""Where generated digits sit: the spread of each image's centre of mass (of its ink), against real test digits.

MNIST's digits were centred by their centre of mass, so real test digits spread by ~0.3 px per axis around the
image centre; a generator whose samples spread more draws digits off-centre, which the evaluation's classifier
(trained on centred digits) reads as a different distribution.

    python -m benchmarks.centring models/generator.pt /tmp/pareto/pg32tr18/models/generator.pt
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
import typer

from mnist_gan.data.mnist import load_split
from mnist_gan.data.pixels import to_float
from mnist_gan.gan.augment import shifted
from mnist_gan.gan.models import asks_digits
from mnist_gan.gan.sampling import balanced_labels, generate, load_generator

app = typer.Typer(add_completion=False, help=__doc__)


def centres(images: torch.Tensor) -> torch.Tensor:
    """(n, 2): each image's centre of mass of its ink (row, column) in pixels; images (n, 1, H, W) in [-1, 1]."""
    ink = (images.float() + 1).clamp(min=0).squeeze(1)
    rows = torch.arange(ink.shape[1], dtype=ink.dtype).view(1, -1, 1)
    cols = torch.arange(ink.shape[2], dtype=ink.dtype).view(1, 1, -1)
    total = ink.sum((1, 2))
    return torch.stack([(ink * rows).sum((1, 2)) / total, (ink * cols).sum((1, 2)) / total], 1)


def recentred(images_u8: torch.Tensor) -> torch.Tensor:
    """Each uint8 image (n, 1, H, W) shifted by whole pixels so its centre of mass rounds to pixel (H/2, W/2), where
    MNIST's digits have theirs (no real test digit moves); what is shifted in is background (0)."""
    h, w = images_u8.shape[-2:]
    shift = (torch.tensor([h / 2, w / 2]) - centres(to_float(images_u8))).round().long()
    return shifted(images_u8, shift[:, :1, None], shift[:, 1:, None], fill=0)


def line(name: str, images: torch.Tensor) -> str:
    c = centres(images)
    mean, spread = c.mean(0).tolist(), c.std(0).tolist()
    return f"{name}: centre of mass {mean[0]:.2f}, {mean[1]:.2f} px; spread {spread[0]:.2f} / {spread[1]:.2f} px"


@app.command()
def main(
    weights: Annotated[list[Path], typer.Argument(help="generator.pt files.")],
    n: Annotated[int, typer.Option(help="Samples (class-balanced for a conditional G) and real test digits.")] = 2000,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 1,
    raw: Annotated[Path, typer.Option(help="Folder holding MNIST/raw/.")] = Path("data/raw"),
):
    """The centre-of-mass spread of `n` real test digits, then of `n` samples of each generator."""
    real, _ = load_split(raw, train=False)
    typer.echo(line("real test digits", to_float(real[:n])))
    for path in weights:
        g = load_generator(path)
        labels = balanced_labels(n, g.cfg.num_classes) if asks_digits(g.cfg) else None
        typer.echo(line(str(path), generate(g, n, seed, labels)))


if __name__ == "__main__":
    app()
