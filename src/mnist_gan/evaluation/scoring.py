"""Score a generator against real MNIST in the classifier's feature space (the evaluate stage's maths),
and the cheap per-epoch FID the train stage logs (`QualityProbe`).

A conditional generator is asked for class-balanced digits, so its samples (and the real floor) also get label
accuracy (share of samples of requested digit d that the classifier calls d) and a FID per digit (samples asked
for d against the test images of d). Every metric is one function in `metrics.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from mnist_gan.data.mnist import load_processed
from mnist_gan.data.pixels import to_float
from mnist_gan.evaluation.classifier import MnistClassifier, load_classifier, predict
from mnist_gan.evaluation.metrics import Scored, class_coverage, fid, knn_radii, nearest_training_images, summarize
from mnist_gan.gan.models import Generator, asks_digits
from mnist_gan.gan.sampling import balanced_labels, generate

CLASSIFIER_SIZE = 28  # the classifier sees MNIST at its own resolution


def at_classifier_size(images: torch.Tensor) -> torch.Tensor:
    """dcgan64 samples downsized (antialiased bilinear) to 28x28, as the classifier was trained."""
    if images.shape[-1] == CLASSIFIER_SIZE:
        return images
    size = (CLASSIFIER_SIZE, CLASSIFIER_SIZE)
    return F.interpolate(images.float(), size=size, mode="bilinear", antialias=True).clamp(-1, 1)


@dataclass
class Evaluation:
    metrics: dict  # {"generated": {...}, "real_floor": {...}}
    samples: torch.Tensor  # (n, 1, 28, 28) in [-1, 1]
    labels: torch.Tensor | None  # digits asked for (conditional), else None
    probs: torch.Tensor  # classifier probabilities of the samples (n, 10)
    real_probs: torch.Tensor  # of the real floor images
    nn_dist: torch.Tensor  # each sample's L2 distance to its nearest training image
    nn_index: torch.Tensor  # and that image's index

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

    def summary(self) -> str:
        """The evaluate stage's one line: the headline metrics beside the real floor's."""
        g, r = self.metrics["generated"], self.metrics["real_floor"]
        conditional = f", label accuracy {g['label_accuracy']:.4f}" if "label_accuracy" in g else ""
        return (
            f"FID {g['fid']:.2f} (real floor {r['fid']:.2f}), score {g['classifier_score']:.2f} "
            f"(real {r['classifier_score']:.2f}), classes {g['classes_covered']}/10, "
            f"precision {g['precision']:.3f}, recall {g['recall']:.3f}{conditional}"
        )


def evaluate(
    generator: Generator,
    classifier: MnistClassifier,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    n: int,
    seed: int,
    k: int,
) -> Evaluation:
    """Every metric of `n` samples against the test set, beside the floor of `n` real training images."""
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
    gen, floor = (
        Scored(probs, feats, test_feats, test_labels, y, nn, test_nn, k, test_radii)
        for probs, feats, y, nn in (
            (fake_probs, fake_feats, labels, fake_nn),
            (real_probs, real_feats, real_labels, test_nn),
        )
    )
    metrics = {"generated": summarize(gen), "real_floor": summarize(floor)}
    if labels is not None:  # ~n/10 images per digit: small-sample bias makes these larger than the overall FID
        metrics["generated"]["per_digit_fid"] = gen.per_digit_fid
        metrics["real_floor"]["per_digit_fid"] = floor.per_digit_fid
    return Evaluation(metrics, samples, labels, fake_probs, real_probs, fake_nn, fake_nn_idx)


class QualityProbe:
    """FID of a fixed sample (same seed every epoch) against the test images, in classifier features:
    quality over training for `dvc plots`, at a few seconds per epoch."""

    def __init__(self, classifier: MnistClassifier, test_u8: torch.Tensor, n: int, seed: int):
        self.classifier, self.n, self.seed = classifier, n, seed
        self.ref_features, _ = predict(classifier, at_classifier_size(to_float(test_u8)))

    def fid(self, generator: Generator) -> float:
        samples = at_classifier_size(generate(generator, self.n, self.seed))
        return fid(self.ref_features, predict(self.classifier, samples)[0])


def quality_probe(classifier: Path | None, test_file: Path, n: int, seed: int, device) -> QualityProbe | None:
    """The per-epoch FID probe of the train stage: `n` samples against the test images of `test_file` (the
    normalize stage's test.pt), in the features of the classifier at `classifier`; None without one or if n is 0."""
    if classifier is None or not n:
        return None
    return QualityProbe(load_classifier(classifier, device), load_processed(test_file)["images"], n, seed)
