"""D-side augmentation (DiffAugment): what each transform does to known images, that gradients reach G through it,
and that a run with it is still seeded and reproducible."""

import pytest
import torch

from mnist_gan.gan.augment import BACKGROUND, augment, cutout, policy, translate
from mnist_gan.settings.params import updated
from tests.conftest import DEFAULTS


def dot_images(n: int, size: int = 28) -> torch.Tensor:
    """n background images with one lit pixel at the centre."""
    x = torch.full((n, 1, size, size), BACKGROUND)
    x[:, :, size // 2, size // 2] = 1.0
    return x


def lit(x: torch.Tensor) -> list[tuple[int, int]]:
    return [tuple(p[-2:].tolist()) for p in (x > 0).nonzero()]


def test_translation_moves_each_image_by_its_own_shift_within_an_eighth_and_fills_background():
    x = dot_images(256)
    out = translate(x, torch.Generator().manual_seed(0))
    moved = [(r - 14, c - 14) for r, c in (tuple(p[-2:].tolist()) for p in (out > 0).nonzero())]
    assert len(moved) == 256  # one lit pixel each: nothing lost or duplicated
    assert max(max(abs(dr), abs(dc)) for dr, dc in moved) == 4  # round(28 / 8) = 4 (3.5 rounds up)
    assert len(set(moved)) > 40  # shifts drawn per image, not one for the batch
    assert set(out.unique().tolist()) == {BACKGROUND, 1.0}
    full = translate(torch.ones(64, 1, 28, 28), torch.Generator().manual_seed(3))  # what comes in is background
    entered = (full == BACKGROUND).flatten(1).sum(1).tolist()
    assert set(entered) <= {28 * 28 - (28 - a) * (28 - b) for a in range(5) for b in range(5)}
    assert max(entered) > 0


def test_cutout_blanks_a_square_of_half_the_side_per_image():
    x = torch.ones(64, 1, 28, 28)
    out = cutout(x, torch.Generator().manual_seed(0))
    blanked = (out == BACKGROUND).flatten(1).sum(1)
    assert blanked.max() == 14 * 14  # a whole square where it falls inside
    assert (blanked > 0).all() and len(set(blanked.tolist())) > 5  # a place of its own for every image
    assert set(out.unique().tolist()) == {BACKGROUND, 1.0}


def test_gradients_flow_through_every_policy_and_none_is_the_identity():
    x = torch.randn(8, 1, 28, 28, requires_grad=True)
    for name in ("translation", "cutout", "translation,cutout"):
        out = augment(x, name, torch.Generator().manual_seed(1))
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert grad.abs().sum() > 0 and set(grad.unique().tolist()) <= {0.0, 1.0}  # pixels moved or cut
    assert augment(x, "none") is x and policy("none") == ()
    nhwc = x.detach().contiguous(memory_format=torch.channels_last)
    assert translate(nhwc, torch.Generator().manual_seed(1)).is_contiguous(memory_format=torch.channels_last)


def test_the_same_seed_draws_the_same_transforms():
    x = torch.randn(16, 1, 28, 28)
    a = augment(x, "translation,cutout", torch.Generator().manual_seed(5))
    b = augment(x, "translation,cutout", torch.Generator().manual_seed(5))
    c = augment(x, "translation,cutout", torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("loss", ["hinge", "rpgan"])
def test_a_run_with_augmentation_trains_and_is_reproducible(loss, tiny_data):
    """Two trainers built alike from params with `augment` take the same steps to the same weights; D's view of its
    images is augmented (the step then cannot be a CUDA graph, and says why)."""
    from mnist_gan.data.mnist import load_processed
    from mnist_gan.gan.build import build_trainer

    p = updated(DEFAULTS, augment="translation,cutout", loss=loss, batch_size=16, ema_bn_batches=2, precision="fp32")
    data = load_processed(tiny_data / "train.pt")
    weights = []
    for params in (p, p, updated(p, augment="none")):
        trainer = build_trainer(params.gan, params.train, 28, data, torch.device("cpu"))
        means = trainer.run_epoch(1, 0, max_steps=3)
        assert all(torch.isfinite(torch.tensor(v)) for v in means.values()), means
        weights.append([q.detach().clone() for q in trainer.g.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(weights[0], weights[1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(weights[0], weights[2], strict=True))  # D saw other images
    p_trainer = build_trainer(p.gan, p.train, 28, data, torch.device("cpu"))
    assert trainer.plan.draws is None and p_trainer.plan.draws == "augment: translation,cutout"
    assert "augment" in p_trainer.plan.graph_blocker(torch.device("cuda"), 1, compiled=False)
