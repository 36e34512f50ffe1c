"""Asking for a digit: the sample CLI's --digit, and evaluation of a conditional generator on known answers."""

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from mnist_gan.data.mnist import load_split
from mnist_gan.data.pixels import to_float
from mnist_gan.evaluation.classifier import predict
from mnist_gan.evaluation.fitting import train_classifier
from mnist_gan.evaluation.metrics import fid
from mnist_gan.evaluation.scoring import evaluate
from mnist_gan.gan.models import build_gan, weights_file
from mnist_gan.storage import save_torch
from stages import sample
from tests.conftest import DEFAULTS, PY, ROOT, cli, run, seeds_gan

runner = cli()


def conditional_weights(tmp_path, conditional=True):
    torch.manual_seed(0)
    generator, _ = build_gan(seeds_gan(num_classes=10 if conditional else 0), "dcgan")
    path = tmp_path / ("cond.pt" if conditional else "uncond.pt")
    save_torch(weights_file(generator.eval()), path)
    return path


def test_the_console_sample_works_on_a_file_alone_and_draws_what_the_stage_draws(tmp_path):
    """`mnist-gan sample` in an empty folder (no params.yaml, no stages/ importable) on a copied generator file: the
    same images as the sample stage with the same options; its defaults are the committed sample settings."""
    from mnist_gan.cli import SAMPLE
    from mnist_gan.settings.params import load_params

    assert SAMPLE == load_params(ROOT / "params.yaml").sample
    consumer = tmp_path / "consumer"
    consumer.mkdir()
    shutil.copy(conditional_weights(tmp_path), consumer / "generator.pt")
    mnist_gan = Path(sys.executable).parent / "mnist-gan"
    args = ["--digit", "7", "--n", "16", "--out", "sevens.png"]
    done = run([mnist_gan, "sample", *args], consumer, env={"PYTHONPATH": ""})
    assert "sample: 16 images -> sevens.png" in done.stdout, done.output
    result = runner.invoke(
        sample.app, ["--weights", str(consumer / "generator.pt"), *args[:-1], str(tmp_path / "s.png")]
    )
    assert result.exit_code == 0, result.output
    ours, stage = (torch.load(f, weights_only=True) for f in (consumer / "sevens.pt", tmp_path / "s.pt"))
    assert torch.equal(ours["images"], stage["images"]) and ours["labels"].tolist() == [7] * 16
    refused = run([mnist_gan, "sample", "--digit", "7"], tmp_path, check=False, env={"PYTHONPATH": ""})
    assert refused.returncode == 1 and refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1


def test_digit_draws_the_asked_digits(tmp_path):
    weights = conditional_weights(tmp_path)
    out = tmp_path / "sevens.png"
    result = runner.invoke(sample.app, ["--weights", str(weights), "--digit", "7", "--n", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    drawn = torch.load(tmp_path / "sevens.pt", weights_only=True)
    assert drawn["images"].shape == (16, 1, 28, 28) and drawn["labels"].tolist() == [7] * 16
    assert (tmp_path / "sevens_interpolation.png").is_file()

    result = runner.invoke(
        sample.app, ["--weights", str(weights), "--digit", "0,3,9", "--n", "4", "--out", str(tmp_path / "three.png")]
    )
    assert result.exit_code == 0, result.output
    assert torch.load(tmp_path / "three.pt", weights_only=True)["labels"].tolist() == [0] * 4 + [3] * 4 + [9] * 4
    result = runner.invoke(
        sample.app, ["--weights", str(weights), "--digit", "all", "--n", "2", "--out", str(tmp_path / "all.png")]
    )
    assert result.exit_code == 0, result.output
    assert torch.load(tmp_path / "all.pt", weights_only=True)["labels"].tolist() == sorted(list(range(10)) * 2)


def test_bad_digit_requests_are_one_line_usage_errors_and_write_nothing(tmp_path):
    weights, plain = conditional_weights(tmp_path), conditional_weights(tmp_path, conditional=False)
    for args, said in (
        ((weights, "12"), "digits are 0 to 9"),
        ((weights, "seven"), "not a digit list"),
        ((weights, "-1"), "digits are 0 to 9"),
        ((plain, "7"), "holds a generator that is unconditional"),
    ):
        out = tmp_path / "x.png"
        result = runner.invoke(sample.app, ["--weights", str(args[0]), "--digit", args[1], "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert said in result.output, result.output
        assert not out.exists() and not (tmp_path / "x.pt").exists()


def test_a_missing_or_unknown_device_is_one_line(tmp_path):
    weights = conditional_weights(tmp_path)
    result = runner.invoke(sample.app, ["--weights", str(weights), "--device", "tpu", "--out", str(tmp_path / "a.png")])
    assert result.exit_code == 2 and "unknown device 'tpu'" in result.output
    if not torch.cuda.is_available():
        done = run(
            PY + ["stages.sample", "--weights", weights, "--device", "cuda", "--out", tmp_path / "b.png"], check=False
        )
        assert done.returncode == 1 and done.stderr.strip().splitlines() == [
            "error: no CUDA device 'cuda' here (0 visible); use --device cpu or auto"
        ]
        assert not (tmp_path / "b.png").exists()


class RealDigits(nn.Module):
    """A 'generator' that returns real test images of the asked digit: label accuracy must be ~1."""

    def __init__(self, images, labels):
        super().__init__()
        self.cfg, self.latent_shape = seeds_gan(num_classes=10), (4,)
        self.anchor = nn.Parameter(torch.zeros(()))  # gives it a device
        self.by_digit = [to_float(images[labels == d]) for d in range(10)]

    def forward(self, z, y):
        # the i-th request for digit d gets the i-th test image of d, chosen through z so samples differ
        pick = (z[:, 0].abs() * 1e4).long()
        return torch.stack(
            [self.by_digit[d][i % len(self.by_digit[d])] for d, i in zip(y.tolist(), pick.tolist(), strict=True)]
        )


@pytest.mark.slow
def test_label_accuracy_and_per_digit_fid_on_real_digits(raw_mnist):
    train, test = load_split(raw_mnist, train=True), load_split(raw_mnist, train=False)
    classifier = train_classifier(
        train[0][:4000], train[1][:4000], replace(DEFAULTS.classifier, epochs=1, precision="fp32"), torch.device("cpu")
    )
    small_train = (train[0][:5000], train[1][:5000])
    c2st = replace(DEFAULTS.two_sample, max_epochs=1, width=4)
    result = evaluate(RealDigits(*test), classifier, small_train, test, n=1000, seed=0, k=3, two_sample=c2st)
    gen, floor = result.metrics["generated"], result.metrics["real_floor"]
    # real digits of the asked class: label accuracy is the classifier's own accuracy on test images
    feats, probs = predict(classifier, test[0])
    accuracy = float((probs.argmax(1) == test[1]).double().mean())
    assert accuracy > 0.9 and gen["label_accuracy"] == pytest.approx(accuracy, abs=0.03)
    assert result.labels.bincount().tolist() == [100] * 10  # class-balanced requests
    # per digit, real test digits score like the real floor (both ~100 images a digit), far below a wrong digit
    assert len(gen["per_digit_fid"]) == 10 and max(gen["per_digit_fid"]) < 2 * max(floor["per_digit_fid"])
    wrong = fid(feats[test[1] == 1], feats[test[1] == 0][:100])
    assert max(gen["per_digit_fid"]) < wrong / 3
