"""Image encoding: sample grids (torchvision's make_grid), PNG and GIF bytes; no plotting, no pages.

The train stage logs its per-epoch grids through this module alone, so editing the report page or its
figures never invalidates training in dvc.yaml.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image

from mnist_gan.storage import write_bytes


def image_grid(images: torch.Tensor, nrow: int = 8) -> Image.Image:
    """(N, C, H, W) floats in [-1, 1] -> one PIL image with a 2-pixel border between tiles."""
    # imported here: torchvision's import pulls in torch._dynamo (seconds), which a stage that stops on bad input
    # before drawing anything, or the report, which draws no grid, need not pay
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    return Image.fromarray(grid.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy())


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(image: Image.Image, path: Path) -> None:
    write_bytes(path, png_bytes(image))


def class_grid(samples: torch.Tensor, probs: torch.Tensor, per_class: int = 10) -> Image.Image:
    """One row per digit 0-9: the samples the classifier is surest belong to it (blank where there are none)."""
    rows = []
    labels, confidence = probs.argmax(1), probs.max(1).values
    for digit in range(probs.shape[1]):
        members = (labels == digit).nonzero().flatten()
        best = members[confidence[members].argsort(descending=True)][:per_class]
        row = torch.full((per_class, *samples.shape[1:]), -1.0)
        row[: len(best)] = samples[best]
        rows.append(row)
    return image_grid(torch.cat(rows), nrow=per_class)


def labelled_grid(samples: torch.Tensor, labels: torch.Tensor, per_class: int = 10) -> Image.Image:
    """One row per digit 0-9: the first `per_class` samples that were asked for that digit."""
    rows = [samples[(labels == d).nonzero().flatten()[:per_class]] for d in range(int(labels.max()) + 1)]
    return image_grid(torch.cat(rows), nrow=per_class)


def pairs_grid(samples: torch.Tensor, neighbours: torch.Tensor) -> Image.Image:
    """Top row: samples; bottom row: the training image nearest to each."""
    return image_grid(torch.cat([samples, neighbours]), nrow=len(samples))


def epoch_grids(live_dir: Path) -> list[Path]:
    """The fixed-noise grid of every epoch, in order."""
    return sorted((Path(live_dir) / "plots" / "images" / "fixed_noise").glob("epoch_*.png"))


def gif_bytes(frames: list[Path], ms_per_frame: int = 500) -> bytes:
    """The fixed-noise grids as a looping animated GIF (upscaled 3x so digits are readable)."""
    images = [Image.open(p).convert("L") for p in frames]
    images = [im.resize((im.width * 3, im.height * 3), Image.Resampling.NEAREST) for im in images]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return buffer.getvalue()
