"""Each objective on logits with known answers, and the regularizers on discriminators with known gradients."""

import math

import pytest
import torch
from torch import nn

from mnist_gan.losses import OBJECTIVES, gradient_penalty, r1_penalty

REAL = torch.tensor([2.0, 0.5])
FAKE = torch.tensor([-1.0, 0.0])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_bce_is_the_non_saturating_loss():
    bce = OBJECTIVES["bce"]
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
    want_d = (softplus(-2.0) + softplus(-0.5)) / 2 + (softplus(-1.0) + softplus(0.0)) / 2
    assert bce.d_loss(REAL, FAKE).item() == pytest.approx(want_d, rel=1e-6)
    assert bce.g_loss(FAKE).item() == pytest.approx((softplus(1.0) + softplus(0.0)) / 2, rel=1e-6)  # -log sigmoid(f)
    assert bce.score(torch.tensor([0.0])).item() == 0.5  # a probability


def test_hinge():
    hinge = OBJECTIVES["hinge"]
    # relu(1 - r): 0 and 0.5 -> mean 0.25; relu(1 + f): 0 and 1 -> mean 0.5
    assert hinge.d_loss(REAL, FAKE).item() == pytest.approx(0.75)
    assert hinge.g_loss(FAKE).item() == pytest.approx(0.5)
    assert hinge.score(REAL).tolist() == REAL.tolist()  # a margin, not a probability


def test_wasserstein():
    wgan = OBJECTIVES["wgan-gp"]
    assert wgan.d_loss(REAL, FAKE).item() == pytest.approx(-0.5 - 1.25)
    assert wgan.g_loss(FAKE).item() == pytest.approx(0.5)
    assert wgan.needs_bn_free_d


def test_least_squares():
    ls = OBJECTIVES["lsgan"]
    assert ls.d_loss(REAL, FAKE).item() == pytest.approx(0.5 * ((1 + 0.25) / 2 + (1 + 0) / 2))
    assert ls.g_loss(FAKE).item() == pytest.approx(0.5 * (4 + 1) / 2)
    assert ls.d_loss(torch.ones(3), torch.zeros(3)).item() == 0  # at its targets


class Linear(nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x, y=None):
        return (x.flatten(1) * self.w).sum(1)


def test_r1_is_the_squared_input_gradient_norm():
    d = Linear(torch.tensor([3.0, 4.0]))
    assert r1_penalty(d, torch.randn(5, 2)).item() == pytest.approx(25.0)


def test_gradient_penalty_is_zero_for_a_unit_gradient_and_differentiable():
    d = Linear(torch.tensor([0.6, 0.8]))  # |w| = 1
    assert gradient_penalty(d, torch.randn(4, 2), torch.randn(4, 2)).item() == pytest.approx(0.0, abs=1e-6)
    d = Linear(torch.tensor([3.0, 4.0]))  # |w| = 5 -> (5 - 1)^2
    penalty = gradient_penalty(d, torch.randn(4, 2), torch.randn(4, 2))
    assert penalty.item() == pytest.approx(16.0)
    penalty.backward()  # the penalty trains D: d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    assert torch.allclose(d.w.grad, torch.tensor([2 * 4 * 0.6, 2 * 4 * 0.8]))
