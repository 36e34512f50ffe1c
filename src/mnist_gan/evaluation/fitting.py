"""One training loop for the evaluation's small CNNs, on resident uint8 images: the classifier (`train_classifier`:
cross-entropy over the digits, a one-cycle schedule over a fixed number of epochs) and the two-sample test's network
(binary cross-entropy, trained until its loss on a validation part stops falling, its best epoch's weights kept).

The train stage reads the classifier (`classifier.py`) but never trains one, so it does not depend on this module.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnist_gan.data.pixels import to_float
from mnist_gan.errors import PipelineError
from mnist_gan.evaluation.classifier import MnistClassifier
from mnist_gan.settings.configs import ClassifierConfig

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, targets) -> mean loss


@dataclass(frozen=True)
class Fit:
    """How a network is fitted: Adam, its batches drawn in a seeded order."""

    epochs: int  # passes over the data; with `patience`, the most it may take
    batch_size: int
    lr: float  # the one-cycle schedule's peak, or the constant rate when `patience` is set
    seed: int  # the init (seeded before the caller builds the network) and the batch order
    bf16: bool = False  # autocast the forward passes to bf16 (training only)
    channels_last: bool = True  # NHWC while training: the layout oneDNN and cuDNN convolve natively
    patience: int = 0  # > 0: stop once the validation loss has not fallen for this many epochs (constant rate)


@dataclass(frozen=True)
class Fitted:
    epochs: int  # epochs trained
    best_epoch: int  # the epoch whose weights the network keeps
    val_loss: float | None = None  # its validation loss (when there was a validation part)


def batches(x_u8: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """float, channels-last (the layout oneDNN and cuDNN convolve natively) chunks of uint8 images."""
    return [to_float(chunk).contiguous(memory_format=torch.channels_last) for chunk in x_u8.split(batch_size)]


def fit(
    net: nn.Module,
    loss: Loss,
    x_u8: torch.Tensor,
    y: torch.Tensor,
    how: Fit,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> Fitted:
    """Train `net` (on its device, in place) on uint8 images `x_u8` and targets `y`; leave it in eval mode.

    With `validation` (images, targets) and `how.patience`, the rate stays constant and training stops once the
    validation loss has not fallen for `patience` epochs (or after `how.epochs`); the net keeps the weights of the
    epoch with the lowest validation loss. Otherwise it trains `how.epochs` epochs with a one-cycle schedule (Smith
    2018: warm up to `lr`, anneal to ~0). `on_epoch(epoch, mean training loss)` after each epoch."""
    device = next(net.parameters()).device
    layout = torch.channels_last if how.channels_last else torch.contiguous_format
    net.to(memory_format=layout)
    opt = torch.optim.Adam(net.parameters(), lr=how.lr, foreach=True)
    early = validation is not None and how.patience > 0
    steps = -(-len(y) // how.batch_size)
    schedule = (
        None if early else torch.optim.lr_scheduler.OneCycleLR(opt, how.lr, epochs=how.epochs, steps_per_epoch=steps)
    )
    rng = torch.Generator().manual_seed(how.seed)
    x_u8, y = x_u8.to(device), y.to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=how.bf16)
    best, best_epoch, best_state = float("inf"), 0, None
    for epoch in range(1, how.epochs + 1):
        net.train()
        total = torch.zeros((), device=device)
        for idx in torch.randperm(len(y), generator=rng).to(device).split(how.batch_size):
            with autocast:
                logits = net(to_float(x_u8[idx]).contiguous(memory_format=layout))
            batch_loss = loss(logits.float(), y[idx])
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            total += batch_loss.detach() * len(idx)
        if on_epoch is not None:
            on_epoch(epoch, float(total) / len(y))
        if not early:
            continue
        val = validation_loss(net, loss, *validation)
        if val < best:  # False for a NaN
            best, best_epoch, best_state = val, epoch, copy.deepcopy(net.state_dict())
        elif epoch - best_epoch >= how.patience:
            break
    net.eval()
    if not early:
        return Fitted(how.epochs, how.epochs)
    if best_state is None:
        raise PipelineError(f"the validation loss was never finite in {epoch} epochs (lr {how.lr} too high?)")
    net.load_state_dict(best_state)
    return Fitted(epoch, best_epoch, best)


@torch.no_grad()
def validation_loss(net: nn.Module, loss: Loss, x_u8: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Mean loss of the (eval-mode, fp32) net over images it does not train on."""
    device = next(net.parameters()).device
    net.eval()
    y = y.to(device)
    total = sum(
        float(loss(net(chunk.to(device)).float(), target)) * len(target)
        for chunk, target in zip(batches(x_u8, batch_size), y.split(batch_size), strict=True)
    )
    return total / len(y)


def train_classifier(
    images_u8: torch.Tensor, labels: torch.Tensor, cfg: ClassifierConfig, device: torch.device, on_epoch=None
) -> MnistClassifier:
    """Plain supervised training (`fitting.fit`: Adam, a one-cycle schedule, 99%+ in a few epochs instead of a
    dozen) with cross-entropy on the whole (resident) training set, or its first `cfg.max_train_images` images."""
    if cfg.max_train_images:
        images_u8, labels = images_u8[: cfg.max_train_images], labels[: cfg.max_train_images]
    torch.manual_seed(cfg.seed)
    model = MnistClassifier().to(device)
    # NCHW while training: the committed classifier.pt (and every metric read through it) was trained so
    how = Fit(cfg.epochs, cfg.batch_size, cfg.lr, cfg.seed, bf16=cfg.precision == "bf16", channels_last=False)
    fit(model, F.cross_entropy, images_u8, labels, how, on_epoch=on_epoch)
    return model
