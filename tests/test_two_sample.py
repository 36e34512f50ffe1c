"""The classifier two-sample test: chance on one distribution, near-certain on two that differ, its per-digit
reading and standard error, its early stopping, what it calls least real, and its stage."""

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from mnist_gan.data.mnist import load_split
from mnist_gan.evaluation.fitting import Fit, fit, validation_loss
from mnist_gan.evaluation.two_sample import TwoSampleNet, halves, real_floor, two_sample_test
from mnist_gan.settings.params import updated
from stages import two_sample as stage
from tests.conftest import DEFAULTS, cli

FAST = replace(DEFAULTS.two_sample, max_epochs=4, width=8)  # 2,000 images a side: seconds on 2 cores


@pytest.fixture(scope="module")
def digits(raw_mnist):
    images, labels = load_split(raw_mnist, train=False)
    return images[:4000], labels[:4000]


def test_the_halves_split_every_index_once():
    train, held = halves(101, seed=3)
    assert sorted(torch.cat([train, held]).tolist()) == list(range(101)) and len(train) == 50


def test_two_halves_of_one_set_are_indistinguishable(digits):
    images, labels = digits
    result = two_sample_test(images[:2000], images[2000:], FAST, labels[:2000], labels[2000:])
    assert 0.4 < result.accuracy < 0.6  # 2,000 held-out images: chance within a few standard errors (0.011)


def test_strokes_thickened_by_one_pixel_are_told_apart_digit_by_digit(digits):
    images, labels = digits
    thick = torch.nn.functional.max_pool2d(images[2000:].float(), 3, stride=1, padding=1).to(torch.uint8)
    result = two_sample_test(images[:2000], thick, FAST, labels[:2000], labels[2000:])
    assert result.accuracy > 0.9
    assert len(result.per_digit) == 10 and min(result.per_digit) > 0.8
    assert result.se == pytest.approx((result.accuracy * (1 - result.accuracy) / 2000) ** 0.5)  # 2,000 held out
    assert result.metrics() == {
        "two_sample_accuracy": result.accuracy,
        "two_sample_se": result.se,
        "two_sample_epochs": result.epochs,
        "per_digit_two_sample": result.per_digit,
    }


def test_training_stops_once_the_validation_loss_stops_falling_and_keeps_the_best_epoch(digits):
    """Labels that are noise: nothing generalizes, so the validation loss soon rises while the training loss keeps
    falling; the net stops `patience` epochs after its best epoch and holds that epoch's weights."""
    images, _ = digits
    y = torch.randint(0, 2, (len(images),), generator=torch.Generator().manual_seed(0)).float()
    torch.manual_seed(0)
    net = TwoSampleNet(8)
    how = Fit(epochs=50, batch_size=64, lr=3e-3, seed=0, patience=2)
    validation = (images[3000:], y[3000:])
    fitted = fit(net, F.binary_cross_entropy_with_logits, images[:3000], y[:3000], how, validation)
    assert fitted.epochs < 50 and fitted.epochs - fitted.best_epoch == 2
    assert validation_loss(net, F.binary_cross_entropy_with_logits, *validation) == pytest.approx(fitted.val_loss)


def test_least_real_are_the_altered_images_the_test_is_surest_of(digits):
    """Half the second set is altered (a bright square in a corner): the images the test is surest are not real
    are altered ones, and the real ones it is surest of are real held-out images."""
    images, _ = digits
    other = images[2000:].clone()
    other[::2, :, :4, :4] = 255
    result = two_sample_test(images[:2000], other, FAST)
    fake, real = result.surest(16)
    assert (other[fake, :, :4, :4] == 255).all()
    assert set(real.tolist()) <= set(result.real_index.tolist())
    assert result.per_digit is None  # no digits given


def test_same_inputs_same_accuracy(digits):
    images, labels = digits
    one, two = (two_sample_test(images[:1000], images[1000:2000], FAST).accuracy for _ in range(2))
    assert one == two


def test_the_floor_is_training_against_test_digits(raw_mnist):
    train, test = load_split(raw_mnist, train=True), load_split(raw_mnist, train=False)
    small = (train[0][:3000], train[1][:3000]), (test[0][:2000], test[1][:2000])
    result = real_floor(*small, FAST, "cpu")
    assert 0.4 < result.accuracy < 0.65 and len(result.per_digit) == 10


@pytest.mark.slow
def test_the_stage_writes_the_floor(raw_mnist, tmp_path, monkeypatch):
    """The stage on the real splits, with a narrow network trained 2 epochs (the patient default takes a minute;
    `benchmarks/two_sample.py` measures it)."""
    monkeypatch.setattr(stage, "P", updated(DEFAULTS, **{"two_sample.max_epochs": 2, "two_sample.width": 8}))
    out = tmp_path / "two_sample" / "metrics.json"
    done = cli().invoke(stage.app, [str(raw_mnist), str(out)])
    assert done.exit_code == 0, done.output
    floor = json.loads(out.read_text())
    assert 0.45 < floor["two_sample_accuracy"] < 0.6 and len(floor["per_digit_two_sample"]) == 10
    assert floor["two_sample_epochs"] <= 2
