"""Load a generator weights file (models/generator.pt) on its own and draw images from it."""

from __future__ import annotations

from pathlib import Path

import torch

from mnist_gan.errors import PipelineError
from mnist_gan.gan.models import Generator, asks_digits, conditioning, random_labels
from mnist_gan.settings.configs import recorded_gan
from mnist_gan.storage import load_torch


def load_generator(path: Path, device: torch.device | str = "cpu") -> Generator:
    """Rebuild Generator(GANConfig(**ckpt["config"])) and load its weights; eval mode, on `device`."""
    ckpt = load_torch(path, "generator weights")
    config, state = ckpt.get("config"), ckpt.get("state_dict")
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise PipelineError(f"{path} is not a generator weights file (no 'config' and 'state_dict')")
    try:
        generator = Generator(recorded_gan(config))
        generator.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0][:200]
        raise PipelineError(f"{path} does not hold weights for the generator its config describes: {first}") from None
    return generator.to(device).eval()


class NoDigits(PipelineError):
    """Digits were asked of a generator that cannot draw a chosen digit (an unconditional one)."""

    exit_code = 2


def parse_digits(text: str | None) -> list[int] | None:
    """--digit's text: "7" | "0,3,9" | "all" -> [7] | [0, 3, 9] | [0, ..., 9]; None -> None; a ValueError says
    what is allowed."""
    if text is None or text.strip() == "all":
        return None if text is None else list(range(10))
    try:
        digits = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"{text!r} is not a digit list; expected e.g. 7, 0,3,9 or all") from None
    if not digits or any(not 0 <= d <= 9 for d in digits):
        raise ValueError(f"{text!r}: digits are 0 to 9")
    return digits


def requested_labels(
    generator: Generator, n: int, digits: list[int] | None, nrow: int, source: str = "the generator"
) -> tuple[torch.Tensor | None, int]:
    """The labels to sample and the grid's row length: `n` of each asked digit (one row each when several are
    asked), or for a conditional G with no digits asked `n` class-balanced labels; None for an unconditional G.
    Raises NoDigits when digits are asked of an unconditional G."""
    cfg = generator.cfg
    if digits is None:
        return (balanced_labels(n, cfg.num_classes) if asks_digits(cfg) else None), nrow
    if not asks_digits(cfg):
        raise NoDigits(
            f"{source} holds a generator that is {conditioning(cfg)}; --digit needs one trained with conditional: true"
        )
    return torch.tensor(digits).repeat_interleave(n), n if len(digits) > 1 else nrow


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """n labels in equal blocks 0, 0, ..., 1, 1, ... (sizes differ by at most one): a grid of n = k * rows
    images with k columns shows one digit per row."""
    return torch.arange(n) * num_classes // n


@torch.no_grad()
def generate(
    generator: Generator, n: int, seed: int, labels: torch.Tensor | None = None, batch_size: int = 1000
) -> torch.Tensor:
    """n images (n, C, H, W) in [-1, 1] on the CPU; the same seed gives the same z on every device.

    A conditional generator draws `labels` (n,), class-balanced (`balanced_labels`) when none are given;
    a self-conditioned one draws its cluster ids from their training shares (after z, from the same seed);
    an unconditional one ignores them."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, *generator.latent_shape, generator=rng)
    cfg, k = generator.cfg, generator.cfg.num_classes
    if labels is None and k:
        labels = balanced_labels(n, k) if asks_digits(cfg) else random_labels(cfg, n, rng)
    y = labels if k else torch.zeros(n, dtype=torch.long)
    device = next(generator.parameters()).device
    out = [
        generator(zc.to(device), yc.to(device) if k else None).float().cpu()
        for zc, yc in zip(z.split(batch_size), y.split(batch_size), strict=True)
    ]
    return torch.cat(out)


@torch.no_grad()
def interpolation(generator: Generator, seed: int, steps: int = 10) -> torch.Tensor:
    """A strip of `steps` images: for a conditional G one z through digits 0..9 (steps = classes), otherwise
    a spherical path between two z (Shoemake's slerp, which keeps |z| typical of the Gaussian); a
    self-conditioned G stays in one cluster, drawn from their shares."""
    rng = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    k = generator.cfg.num_classes
    if asks_digits(generator.cfg):
        z = torch.randn(1, *generator.latent_shape, generator=rng).expand(k, *generator.latent_shape)
        return generator(z.to(device), torch.arange(k, device=device)).float().cpu()
    a, b = torch.randn(2, *generator.latent_shape, generator=rng).flatten(1)
    omega = torch.arccos((a / a.norm()).dot(b / b.norm()).clamp(-1, 1))
    t = torch.linspace(0, 1, steps)[:, None]
    z = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    y = random_labels(generator.cfg, 1, rng)
    y = None if y is None else y.expand(steps).to(device)
    return generator(z.view(steps, *generator.latent_shape).to(device), y).float().cpu()
