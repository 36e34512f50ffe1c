"""The train stage's cheap quality probe: after every epoch, the FID of a fixed sample against the test images in
the classifier's features (quality over training, for `dvc plots`). The evaluate stage's full scoring is
`scoring.py`; the probe is apart so that editing it never reruns training.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mnist_gan.data.mnist import load_processed
from mnist_gan.data.pixels import to_float
from mnist_gan.evaluation.classifier import MnistClassifier, at_classifier_size, load_classifier, predict
from mnist_gan.evaluation.metrics import fid
from mnist_gan.gan.models import Generator
from mnist_gan.gan.sampling import generate


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
