"""D-side differentiable augmentation (DiffAugment, Zhao et al. 2020), by name (`augment` in params.yaml).

D sees every image through the same kind of random transform, real and generated alike, in D's update and in
G's (G's gradient flows back through the transform); each image draws its own offsets from the trainer's noise
generator, so a seeded run stays bitwise reproducible on CPU. The paper's translation (by up to 1/8 of the side)
and cutout (a square of half the side); what is shifted in or cut out is the background, -1, the value of an
empty MNIST pixel (the paper's zeros are its images' mid-grey).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mnist_gan.settings.configs import AUGMENTS

BACKGROUND = -1.0  # an empty pixel in the [-1, 1] images D sees
TRANSLATION = 1 / 8  # the largest shift, as a share of the side
CUTOUT = 1 / 2  # the square's side, as a share of the image's


def _offsets(n: int, low: int, high: int, like: Tensor, rng: torch.Generator | None) -> Tensor:
    """(n, 1, 1) integers in [low, high], one per image."""
    return torch.randint(low, high + 1, (n, 1, 1), device=like.device, generator=rng)


def shifted(x: Tensor, dy: Tensor, dx: Tensor, fill: float = BACKGROUND) -> Tensor:
    """Each image of `x` (B, C, H, W) with its content moved by its own whole-pixel (dy, dx) ((B, 1, 1) integers);
    what enters is `fill`. A gather, so gradients flow to the pixels that stay."""
    b, _, h, w = x.shape
    py, px = int(dy.abs().max()), int(dx.abs().max())
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy + py  # where each output pixel reads from,
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx + px  # in the image padded by (py, px)
    padded = F.pad(x, (px, px, py, py), value=fill)
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    out = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # (B, C, H, W)
    return out.contiguous(memory_format=_layout(x))


def translate(x: Tensor, rng: torch.Generator | None = None, ratio: float = TRANSLATION) -> Tensor:
    """Each image shifted by its own (dy, dx), each within +-ratio x its side; what enters is background."""
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy, dx = _offsets(b, -sy, sy, x, rng), _offsets(b, -sx, sx, x, rng)
    return shifted(x, -dy, -dx)


def cutout(x: Tensor, rng: torch.Generator | None = None, ratio: float = CUTOUT) -> Tensor:
    """Each image with a square of side ratio x its side set to background, centred anywhere in the image (so part
    of it may fall outside)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy, cx = _offsets(b, 0, h - 1, x, rng), _offsets(b, 0, w - 1, x, rng)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    top, left = cy - ch // 2, cx - cw // 2
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)  # (B, H, W)
    return torch.where(inside.unsqueeze(1), torch.full_like(x, BACKGROUND), x)


def _layout(x: Tensor) -> torch.memory_format:
    nhwc = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if nhwc else torch.contiguous_format


TRANSFORMS: dict[str, Callable[[Tensor, torch.Generator | None], Tensor]] = {
    "translation": translate,
    "cutout": cutout,
}


def policy(name: str) -> tuple[str, ...]:
    """The transforms of an `augment` value, in the order they apply ("none": no transform)."""
    return () if name == "none" else tuple(name.split(","))


def augment(x: Tensor, name: str, rng: torch.Generator | None = None) -> Tensor:
    """`x` (B, C, H, W) through the transforms of `name`, each image with its own random draw."""
    for transform in policy(name):
        x = TRANSFORMS[transform](x, rng)
    return x


assert {t for name in AUGMENTS for t in policy(name)} == set(TRANSFORMS), "configs.AUGMENTS names these transforms"
