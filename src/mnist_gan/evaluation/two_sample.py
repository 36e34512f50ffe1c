"""A classifier two-sample test (C2ST; Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017).

A small CNN, trained from scratch, learns to tell one set of images (real test digits) from another (samples, or
real training digits for the floor) on half of each; its accuracy on the other halves is the statistic: 0.5 when
it cannot tell them apart, 1.0 when it always can. FID compares two Gaussians in a fixed feature space; this test
learns whatever feature separates the sets (a stroke's texture, a background's haze), so it still sees a gap once
FID cannot. Both sets are uint8, as the sample stage stores images, so rounding is no tell.

Its network is trained on real-versus-other labels only: no digit label reaches it, and nothing it learns reaches
the GAN. Where the digits are known (a conditional generator's asked-for digits, the floor's true labels) the same
held-out predictions are also scored digit by digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mnist_gan.evaluation.fitting import Fit, Fitted, batches, fit
from mnist_gan.settings.configs import TwoSampleConfig


class TwoSampleNet(nn.Module):
    """(B, 1, 28, 28) in [-1, 1] -> one logit: > 0 reads "from the second set" (generated)."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, w, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.MaxPool2d(2),  # w x 14 x 14
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.MaxPool2d(2),  # 2w x 7 x 7
            nn.Flatten(1),
            nn.Linear(2 * w * 7 * 7, 64),
            nn.LeakyReLU(0.2),
            nn.Linear(64, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


@dataclass
class TwoSampleResult:
    accuracy: float  # held-out accuracy: 0.5 = indistinguishable
    se: float  # its binomial standard error over the held-out images
    epochs: int  # the epoch whose weights were scored (the lowest validation loss)
    per_digit: list[float] | None  # the same predictions, digit by digit (when both sets' digits are known)
    p_other: torch.Tensor  # P(second set) of each held-out image of the second set (the samples)
    p_real: torch.Tensor  # P(first set) of each held-out image of the first set (the real digits)
    other_index: torch.Tensor  # those images' indices in the inputs
    real_index: torch.Tensor

    def metrics(self) -> dict:
        """What a scored set records (`metrics.Scored.two_sample`; the two_sample stage's metrics.json)."""
        per_digit = {} if self.per_digit is None else {"per_digit_two_sample": self.per_digit}
        return {
            "two_sample_accuracy": self.accuracy,
            "two_sample_se": self.se,
            "two_sample_epochs": self.epochs,
            **per_digit,
        }

    def surest(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of the `n` held-out second-set images the test is surest are not real (the least real samples),
        and of the `n` real images it is surest are real."""
        other = self.other_index[self.p_other.argsort(descending=True)[:n]]
        real = self.real_index[self.p_real.argsort(descending=True)[:n]]
        return other, real


def real_floor(
    train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], cfg: TwoSampleConfig, device
) -> TwoSampleResult:
    """The test's floor: as many real training digits (a seeded pick) as there are test digits, told from the test
    digits. Not 0.5: MNIST's test writers differ a little from its training writers."""
    (train_u8, train_labels), (test_u8, test_labels) = train, test
    pick = torch.randperm(len(train_u8), generator=torch.Generator().manual_seed(cfg.seed))[: len(test_u8)]
    return two_sample_test(test_u8, train_u8[pick], cfg, test_labels, train_labels[pick], device)


def halves(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded split of range(n) into a training half and a held-out half."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n // 2], perm[n // 2 :]


def two_sample_test(
    real_u8: torch.Tensor,
    other_u8: torch.Tensor,
    cfg: TwoSampleConfig,
    real_labels: torch.Tensor | None = None,
    other_labels: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
) -> TwoSampleResult:
    """Train a fresh `TwoSampleNet` to tell `other_u8` (label 1) from `real_u8` (label 0), both uint8
    (N, 1, 28, 28), on half of each, until its loss on a validation part of that half stops falling; score it on
    the other halves. The larger set is cut to the smaller's size so chance stays at 0.5. Digits per image
    (`real_labels`, `other_labels`) give the per-digit accuracies."""
    n = min(len(real_u8), len(other_u8))
    train_r, held_r = halves(n, cfg.seed)
    train_o, held_o = halves(n, cfg.seed + 1)
    x = torch.cat([real_u8[train_r], other_u8[train_o]])
    y = torch.cat([torch.zeros(len(train_r)), torch.ones(len(train_o))])
    net, fitted = train_net(x, y, cfg, torch.device(device))
    p_real = 1 - predict(net, real_u8[held_r])
    p_other = predict(net, other_u8[held_o])
    correct = torch.cat([p_real > 0.5, p_other > 0.5]).double()
    accuracy = float(correct.mean())
    se = (accuracy * (1 - accuracy) / len(correct)) ** 0.5
    per_digit = None
    if real_labels is not None and other_labels is not None:
        digits = torch.cat([real_labels[:n][held_r], other_labels[:n][held_o]])
        per_digit = [float(correct[digits == d].mean()) for d in range(int(digits.max()) + 1)]
    return TwoSampleResult(accuracy, se, fitted.best_epoch, per_digit, p_other, p_real, held_o, held_r)


def train_net(
    x_u8: torch.Tensor, y: torch.Tensor, cfg: TwoSampleConfig, device: torch.device
) -> tuple[TwoSampleNet, Fitted]:
    """Adam at a constant rate, binary cross-entropy on logits, fp32; a seeded `cfg.validation` share of the
    images is held out to stop the training (`fitting.fit`)."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.seed + 2))
    n_val = round(len(y) * cfg.validation)
    val, train = order[:n_val], order[n_val:]
    torch.manual_seed(cfg.seed)
    net = TwoSampleNet(cfg.width).to(device)
    how = Fit(cfg.max_epochs, cfg.batch_size, cfg.lr, cfg.seed, patience=cfg.patience)
    fitted = fit(net, F.binary_cross_entropy_with_logits, x_u8[train], y[train], how, (x_u8[val], y[val]))
    return net, fitted


@torch.no_grad()
def predict(net: TwoSampleNet, images_u8: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """P(second set) of each uint8 image."""
    device = next(net.parameters()).device
    return torch.cat([torch.sigmoid(net(chunk.to(device))).cpu() for chunk in batches(images_u8, batch_size)])
