"""Load a generator weights file (models/generator.pt) on its own and draw images from it."""

from __future__ import annotations

from pathlib import Path

import torch

from mnist_gan.models import MODELS, GANConfig, Generator
from mnist_gan.storage import PipelineError, load_torch


def load_generator(path: Path, device: torch.device | str = "cpu") -> Generator:
    """Rebuild Generator(GANConfig(**ckpt["config"])) and load its weights; eval mode, on `device`."""
    ckpt = load_torch(path, "generator weights")
    config, state = ckpt.get("config"), ckpt.get("state_dict")
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise PipelineError(f"{path} is not a generator weights file (no 'config' and 'state_dict')")
    try:
        cfg = GANConfig(**config)
        if cfg.model not in MODELS:
            raise ValueError(f"unknown model {cfg.model!r}")
        generator = Generator(cfg)
        generator.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0][:200]
        raise PipelineError(f"{path} does not hold weights for the generator its config describes: {first}")
    return generator.to(device).eval()


@torch.no_grad()
def generate(generator: Generator, n: int, seed: int, batch_size: int = 1000) -> torch.Tensor:
    """n images (n, C, H, W) in [-1, 1] on the CPU; the same seed gives the same z on every device."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, *generator.latent_shape, generator=rng)
    device = next(generator.parameters()).device
    return torch.cat([generator(chunk.to(device)).float().cpu() for chunk in z.split(batch_size)])
