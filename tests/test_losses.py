"""Each objective on logits with known answers, and the regularizers on discriminators with known gradients."""

import math
from dataclasses import replace
from itertools import pairwise

import pytest
import torch
from torch import nn

from mnist_gan.gan.losses import OBJECTIVES, gradient_penalty, r1_penalty, r2_penalty
from mnist_gan.outputs.curves import READINGS

REAL = torch.tensor([2.0, 0.5])
FAKE = torch.tensor([-1.0, 0.0])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_rpgan_scores_each_pair_and_only_their_difference():
    rp = OBJECTIVES["rpgan"]
    # D: -log sigmoid(D(x_i) - D(G(z_i))) pair by pair; G: the reverse
    want_d = (softplus(-(2.0 - -1.0)) + softplus(-(0.5 - 0.0))) / 2
    assert rp.d_loss(REAL, FAKE).item() == pytest.approx(want_d, rel=1e-6)
    assert rp.g_loss(FAKE, REAL).item() == pytest.approx((softplus(3.0) + softplus(0.5)) / 2, rel=1e-6)
    shift = torch.tensor(5.0)  # relativistic: moving both scores of a pair changes nothing
    assert rp.d_loss(REAL + shift, FAKE + shift).item() == pytest.approx(want_d, rel=1e-6)
    assert rp.paired and not any(o.paired for k, o in OBJECTIVES.items() if k != "rpgan")


def test_bce_is_the_non_saturating_loss():
    bce = OBJECTIVES["bce"]
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
    want_d = (softplus(-2.0) + softplus(-0.5)) / 2 + (softplus(-1.0) + softplus(0.0)) / 2
    assert bce.d_loss(REAL, FAKE).item() == pytest.approx(want_d, rel=1e-6)
    assert bce.g_loss(FAKE).item() == pytest.approx((softplus(1.0) + softplus(0.0)) / 2, rel=1e-6)  # -log sigmoid(f)


def test_hinge():
    hinge = OBJECTIVES["hinge"]
    # relu(1 - r): 0 and 0.5 -> mean 0.25; relu(1 + f): 0 and 1 -> mean 0.5
    assert hinge.d_loss(REAL, FAKE).item() == pytest.approx(0.75)
    assert hinge.g_loss(FAKE).item() == pytest.approx(0.5)


def test_wasserstein():
    wgan = OBJECTIVES["wgan-gp"]
    assert wgan.d_loss(REAL, FAKE).item() == pytest.approx(-0.5 - 1.25)
    assert wgan.g_loss(FAKE).item() == pytest.approx(0.5)


def test_least_squares():
    ls = OBJECTIVES["lsgan"]
    assert ls.d_loss(REAL, FAKE).item() == pytest.approx(0.5 * ((1 + 0.25) / 2 + (1 + 0) / 2))
    assert ls.g_loss(FAKE).item() == pytest.approx(0.5 * (4 + 1) / 2)
    assert ls.d_loss(torch.ones(3), torch.zeros(3)).item() == 0  # at its targets


@pytest.mark.parametrize("name", OBJECTIVES)
def test_d_loss_falls_as_real_logits_rise_and_fake_logits_fall(name):
    """Towards each loss's targets (real up to 1, fake down to 0: LSGAN's targets bound the range)."""
    objective = OBJECTIVES[name]
    steps = torch.linspace(0, 1, 11)
    real_rising = [objective.d_loss(torch.full((4,), -1.0 + 2 * t), torch.zeros(4)).item() for t in steps]
    fake_falling = [objective.d_loss(torch.zeros(4), torch.full((4,), 1.0 - t)).item() for t in steps]
    for curve in (real_rising, fake_falling):
        assert all(b <= a + 1e-7 for a, b in pairwise(curve)), curve
        assert curve[-1] < curve[0]


@pytest.mark.parametrize("name", OBJECTIVES)
def test_g_loss_falls_as_fakes_look_real_and_scores_keep_the_order(name):
    objective = OBJECTIVES[name]
    logits = torch.linspace(-1, 1, 9)
    real = (torch.zeros(4),) if objective.paired else ()  # a paired loss reads the real logits too
    g = [objective.g_loss(torch.full((4,), v.item()), *real).item() for v in logits]
    assert all(b < a for a, b in pairwise(g)), g
    scores = objective.score(logits)  # what the logs call D(x): a monotone reading of the logit
    assert torch.all(scores[1:] > scores[:-1])
    reading = READINGS[name]  # the report's axis: a fixed range must hold every score
    if reading.limits is not None:
        assert reading.limits[0] <= scores.min() and scores.max() <= reading.limits[1]


class Linear(nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x, y=None):
        return (x.flatten(1) * self.w).sum(1)


def test_penalties_are_zero_for_a_constant_d():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Parameter(torch.tensor(0.3))

        def forward(self, x, y=None):
            return self.c + 0 * x.flatten(1).sum(1)

    assert r1_penalty(Constant(), torch.randn(4, 2)).item() == 0.0
    assert gradient_penalty(Constant(), torch.randn(4, 2), torch.randn(4, 2)).item() == pytest.approx(
        1.0, abs=1e-5
    )  # (0 - 1)^2


def test_r1_is_the_squared_input_gradient_norm():
    d = Linear(torch.tensor([3.0, 4.0]))
    assert r1_penalty(d, torch.randn(5, 2)).item() == pytest.approx(25.0)
    assert r2_penalty(d, torch.randn(5, 2)).item() == pytest.approx(25.0)  # R2: the same on generated data


def test_lazy_regularization_weighs_the_penalty_by_its_interval():
    """reg_every k: the penalty at every k-th step, k times as heavy (its mean weight unchanged); the steps in
    between are plain steps of the objective."""
    from mnist_gan.gan.step import Models, plan_for, train_step
    from tests.conftest import DEFAULTS

    torch.manual_seed(0)
    x, z = torch.randn(1, 4, 2), torch.randn(1, 4, 2)

    def loss_d(r1: float, every: int, regularize: bool) -> float:
        g, d = nn.Linear(2, 2), Linear(torch.tensor([3.0, 4.0]))
        g.load_state_dict({"weight": torch.eye(2), "bias": torch.zeros(2)})
        cfg = replace(DEFAULTS.train, r1_gamma=r1, r2_gamma=0.0, gp_weight=0.0, reg_every=every, loss="hinge")
        opts = torch.optim.SGD(g.parameters(), lr=0.0), torch.optim.SGD(d.parameters(), lr=0.0)
        wrapped = lambda noise, y=None: g(noise)  # noqa: E731
        plan = plan_for(cfg, d, torch.device("cpu"))
        return train_step(Models(wrapped, d, *opts), x, z, None, plan, regularize)["loss_d"].item()

    plain = loss_d(0.0, 1, True)
    assert loss_d(1.0, 1, True) == pytest.approx(plain + 0.5 * 25.0)  # R1 = gamma / 2 x |w|^2
    assert loss_d(1.0, 4, True) == pytest.approx(plain + 4 * 0.5 * 25.0)
    assert loss_d(1.0, 4, False) == pytest.approx(plain)


def test_gradient_penalty_is_zero_for_a_unit_gradient_and_differentiable():
    d = Linear(torch.tensor([0.6, 0.8]))  # |w| = 1
    assert gradient_penalty(d, torch.randn(4, 2), torch.randn(4, 2)).item() == pytest.approx(0.0, abs=1e-6)
    d = Linear(torch.tensor([3.0, 4.0]))  # |w| = 5 -> (5 - 1)^2
    penalty = gradient_penalty(d, torch.randn(4, 2), torch.randn(4, 2))
    assert penalty.item() == pytest.approx(16.0)
    penalty.backward()  # the penalty trains D: d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    assert torch.allclose(d.w.grad, torch.tensor([2 * 4 * 0.6, 2 * 4 * 0.8]))


def test_penalties_combine_with_any_loss_by_params_alone():
    """gp_weight and r1_gamma switch their penalty on for any loss; null gp_weight = the loss's own default."""
    from mnist_gan.gan.losses import penalty_weights
    from tests.conftest import DEFAULTS

    t = DEFAULTS.train
    assert penalty_weights(replace(t, loss="wgan-gp", gp_weight=None))["gp_weight"] == 10.0
    assert penalty_weights(replace(t, loss="hinge", gp_weight=None))["gp_weight"] == 0.0
    assert penalty_weights(replace(t, loss="hinge", gp_weight=2.5, r1_gamma=1.0, r2_gamma=0.5)) == {
        "gp_weight": 2.5,
        "r1_gamma": 1.0,
        "r2_gamma": 0.5,
    }


def test_no_module_branches_on_a_loss_name():
    """An objective's behaviour is carried by its registry entry: no module outside losses.py compares a value
    with a loss name, however spelled (==, !=, in a tuple, a match case)."""
    from tests.conftest import library_modules, names_compared

    branches = [
        f"{name}:{hit}"
        for name, path in library_modules().items()
        if name != "mnist_gan.gan.losses"
        for hit in names_compared(path.read_text(), set(OBJECTIVES))
    ]
    assert branches == []
