"""Pixel conversions of MNIST images: uint8 [0, 255] <-> float [-1, 1], and resizing.

The training tensor is ``to_float(u8) = u8 / 127.5 - 1``, the same affine as ``ToTensor()`` +
``Normalize((0.5,), (0.5,))`` (equal up to float rounding), so values lie in [-1, 1], the range of G's tanh.
"""

from __future__ import annotations

import torch


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 images (what transforms.Resize does to the seeds' PIL images)."""
    if images.shape[-1] == size:
        return images
    from torchvision.transforms.v2 import functional as F

    return F.resize(images, [size, size], antialias=True)


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]: ToTensor() then Normalize((0.5,), (0.5,)) as one affine."""
    return images_u8.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (for saving generated images compactly)."""
    return images.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
