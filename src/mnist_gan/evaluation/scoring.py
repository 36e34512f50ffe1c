"""Score a generator against real MNIST in the classifier's feature space (the evaluate stage's maths).

A conditional generator is asked for class-balanced digits, so its samples (and the real floor) also get label
accuracy (share of samples of requested digit d that the classifier calls d) and a FID per digit (samples asked
for d against the test images of d). Every metric is one function in `metrics.py`; the two-sample test
(`two_sample.py`) trains a network of its own on the samples, while its floor comes from the two_sample stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mnist_gan.data.pixels import to_float, to_uint8
from mnist_gan.evaluation.classifier import MnistClassifier, at_classifier_size, predict
from mnist_gan.evaluation.metrics import Scored, class_coverage, knn_radii, nearest_training_images, summarize
from mnist_gan.evaluation.registry import summary
from mnist_gan.evaluation.two_sample import TwoSampleResult, two_sample_test
from mnist_gan.gan.models import Generator, asks_digits
from mnist_gan.gan.sampling import balanced_labels, generate, load_generator
from mnist_gan.settings.configs import EvaluateConfig, TwoSampleConfig


@dataclass
class Evaluation:
    metrics: dict  # {"generated": {...}, "real_floor": {...}}
    samples: torch.Tensor  # (n, 1, 28, 28) in [-1, 1]
    labels: torch.Tensor | None  # digits asked for (conditional), else None
    probs: torch.Tensor  # classifier probabilities of the samples (n, 10)
    real_probs: torch.Tensor  # of the real floor images
    nn_dist: torch.Tensor  # each sample's L2 distance to its nearest training image
    nn_index: torch.Tensor  # and that image's index
    two_sample: TwoSampleResult  # the two-sample test of the samples against the test images

    def classes(self) -> dict[str, list[float]]:
        """classes.json: the share of each predicted digit among the samples and among the real floor images."""
        return {
            "generated": class_coverage(self.probs)["histogram"],
            "real": class_coverage(self.real_probs)["histogram"],
        }

    def nearest_pairs(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The `n` samples closest to a training image, and the indices of those training images."""
        closest = self.nn_dist.argsort()[:n]
        return self.samples[closest], self.nn_index[closest]

    def least_real(self, test_u8: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The `n` held-out samples the two-sample test is surest are generated, and the `n` real test images it is
        surest are real (uint8 both, as the test saw them)."""
        fake, real = self.two_sample.surest(n)
        return to_uint8(self.samples[fake]), test_u8[real]

    def summary(self) -> str:
        """The evaluate stage's one line: the headline metrics beside the real floor's."""
        return summary(self.metrics["generated"], self.metrics["real_floor"])


def evaluate(
    generator: Generator,
    classifier: MnistClassifier,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    n: int,
    seed: int,
    k: int,
    two_sample: TwoSampleConfig,
    two_sample_floor: dict | None = None,
) -> Evaluation:
    """Every metric of `n` samples against the test set, beside the floor of `n` real training images; the
    two-sample test's floor is `two_sample_floor` (the two_sample stage's metrics.json), not recomputed here."""
    (train_u8, train_labels), (test_u8, test_labels) = train, test
    labels = balanced_labels(n, generator.cfg.num_classes) if asks_digits(generator.cfg) else None
    samples = at_classifier_size(generate(generator, n, seed, labels))
    # the floor: as many real training images as samples, scored against the same test set
    pick = torch.randperm(len(train_u8), generator=torch.Generator().manual_seed(seed))[:n]
    real = to_float(train_u8[pick])
    test_feats, _ = predict(classifier, test_u8)
    fake_feats, fake_probs = predict(classifier, samples)
    real_feats, real_probs = predict(classifier, real)
    train_images = to_float(train_u8)
    fake_nn, fake_nn_idx = nearest_training_images(samples, train_images)
    test_nn, _ = nearest_training_images(to_float(test_u8[:n]), train_images)  # same sample size

    # the floor's digits are known (true labels) exactly when the generator's are (asked for)
    real_labels = train_labels[pick] if labels is not None else None
    test_radii = knn_radii(test_feats, k)  # both sets' precision: the test set's k-NN manifold
    # the samples as the sample stage stores them (uint8), so the test cannot key on sub-quantum values
    c2st = two_sample_test(test_u8, to_uint8(samples), two_sample, test_labels, labels, classifier_device(classifier))
    gen, floor = (
        Scored(probs, feats, test_feats, test_labels, y, nn, test_nn, k, test_radii, c2st_metrics)
        for probs, feats, y, nn, c2st_metrics in (
            (fake_probs, fake_feats, labels, fake_nn, c2st.metrics()),
            (real_probs, real_feats, real_labels, test_nn, two_sample_floor),
        )
    )
    metrics = {}
    for key, scored in (("generated", gen), ("real_floor", floor)):
        out = metrics[key] = summarize(scored)
        read = scored.two_sample or {}  # the two-sample test's metrics, if it ran
        if labels is not None:  # ~n/10 images per digit: small-sample bias makes these larger than the overall FID
            out["per_digit_fid"] = scored.per_digit_fid
            if "per_digit_two_sample" in read:
                out["per_digit_two_sample"] = read["per_digit_two_sample"]
        if "two_sample_epochs" in read:
            out["two_sample_epochs"] = read["two_sample_epochs"]
    return Evaluation(metrics, samples, labels, fake_probs, real_probs, fake_nn, fake_nn_idx, c2st)


def classifier_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def evaluate_weights(
    settings: EvaluateConfig,
    two_sample: TwoSampleConfig,
    weights: Path,
    classifier: MnistClassifier,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    floor: dict | None = None,
    n: int | None = None,
) -> Evaluation:
    """The evaluate stage's work, in-process: the generator of a weights file scored with the evaluate and two_sample
    settings (`n` samples instead of `settings.n_samples` if given), on the classifier's device."""
    generator = load_generator(weights, classifier_device(classifier))
    s = settings
    return evaluate(generator, classifier, train, test, n or s.n_samples, s.seed, s.nearest_k, two_sample, floor)
