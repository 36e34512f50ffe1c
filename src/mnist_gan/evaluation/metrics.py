"""Sample-quality metrics in the MNIST classifier's feature space, each with a real-vs-real reading.

- FID (Heusel et al. 2017) on the classifier's 128-d features, computed by torchmetrics.
- Classifier score: Inception Score (Salimans et al. 2016) with the MNIST classifier, exp E[KL(p(y|x) || p(y))],
  at most 10; computed by torchmetrics.
- Class coverage: histogram of predicted digits, classes holding >= 2% of samples, KL(histogram || uniform).
- Precision / recall with k-NN manifolds (Kynkaanniemi et al. 2019, https://arxiv.org/abs/1904.06991).
- Memorization: each sample's L2 distance (pixels in [-1, 1]) to its nearest training image.
- The classifier two-sample test (`two_sample.py`): its accuracy, overall and for the worst digit, read from the
  test's result (it trains a network of its own, so it is run once per set, not computed from features).

Each metric of the evaluate stage is one entry in `registry.METRICS` (label, direction, format) and one
function here registered with `@metric(key)`, reading a `Scored` set; `summarize` runs them all.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from mnist_gan.evaluation.classifier import accuracy
from mnist_gan.evaluation.registry import METRICS

COVERED_SHARE = 0.02  # a digit class is "covered" when it holds at least 2% of the samples (uniform: 10%)


class _Precomputed(nn.Module):
    """Lets torchmetrics run on features we computed once (it calls the extractor on its inputs)."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def fid(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D); ~0 for identical sets."""
    dim = real_features.shape[1]
    from torchmetrics.image.fid import FrechetInceptionDistance  # a slow import: only when a FID is computed

    metric = FrechetInceptionDistance(feature=_Precomputed(dim), input_img_size=(dim,), normalize=False)
    metric.update(real_features.double(), real=True)
    metric.update(fake_features.double(), real=False)
    return float(metric.compute())


def classifier_score(probs: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))): 1 when every sample gets the same class distribution, 10 at best."""
    with warnings.catch_warnings():  # its memory warning is moot for 10 numbers per image, and with one
        warnings.simplefilter("ignore", UserWarning)  # split its std over splits is undefined (unused here)
        from torchmetrics.image.inception import InceptionScore

        metric = InceptionScore(feature=_Precomputed(probs.shape[1]), splits=1)
        metric.update(probs.clamp_min(1e-12).log())  # log-probabilities are valid logits: softmax gives p back
        return float(metric.compute()[0])


def class_coverage(probs: torch.Tensor) -> dict:
    """Share of samples per predicted digit, how many digits hold >= COVERED_SHARE, KL to uniform."""
    k = probs.shape[1]
    hist = torch.bincount(probs.argmax(1), minlength=k).double() / len(probs)
    nonzero = hist[hist > 0]
    return {
        "histogram": hist.tolist(),
        "classes_covered": int((hist >= COVERED_SHARE).sum()),
        "kl_to_uniform": float((nonzero * (nonzero * k).log()).sum()),
    }


def _min_dist(query: torch.Tensor, ref: torch.Tensor, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row, (distance to, index of) its nearest `ref` row; chunked to bound memory."""
    dists, idxs = [], []
    for q in query.split(chunk):
        d = torch.cdist(q.float(), ref.float())
        m = d.min(dim=1)
        dists.append(m.values)
        idxs.append(m.indices)
    return torch.cat(dists), torch.cat(idxs)


def knn_radii(features: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance of each point to its k-th nearest neighbour within the same set (itself excluded)."""
    return torch.cat(
        [torch.cdist(q.float(), features.float()).kthvalue(k + 1, dim=1).values for q in features.split(chunk)]
    )


def _inside_manifold(query: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> float:
    """Fraction of `query` points inside at least one ball B(ref_j, radii_j)."""
    inside = [(torch.cdist(q.float(), ref.float()) <= radii[None, :]).any(dim=1) for q in query.split(chunk)]
    return float(torch.cat(inside).double().mean())


def precision(
    real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3, real_radii: torch.Tensor | None = None
) -> float:
    """Share of samples inside the real data's k-NN manifold. `real_radii`: `knn_radii(real_features, k)` when the
    caller already has them (the evaluate stage scores two sets against one test set)."""
    radii = knn_radii(real_features, k) if real_radii is None else real_radii
    return _inside_manifold(fake_features, real_features, radii)


def recall(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3) -> float:
    """Share of real data inside the samples' k-NN manifold."""
    return _inside_manifold(real_features, fake_features, knn_radii(fake_features, k))


def nearest_training_images(samples: torch.Tensor, train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each sample's nearest training image, L2 over pixels in [-1, 1]."""
    return _min_dist(samples.flatten(1), train.flatten(1))


@dataclass
class Scored:
    """One image set, ready to be scored: what every metric function reads. The parts several metrics share
    (the class coverage, the per-digit FIDs) are computed once, on first use."""

    probs: torch.Tensor  # classifier probabilities of the images (n, 10)
    features: torch.Tensor  # their classifier features (n, d)
    ref_features: torch.Tensor  # the reference (test) images' features
    ref_labels: torch.Tensor  # and their digits
    labels: torch.Tensor | None  # the digit of each image when known: asked for (conditional G) or true (real images)
    nn_dist: torch.Tensor  # each image's L2 distance to its nearest training image
    ref_nn_dist: torch.Tensor  # the same for as many test images: what "not copied" looks like
    k: int  # k of the k-NN manifolds
    ref_radii: torch.Tensor | None = None  # knn_radii(ref_features, k) if known: sets scored against one reference
    two_sample: dict | None = None  # the two-sample test's result (TwoSampleResult.metrics()), if it was run

    @cached_property
    def coverage(self) -> dict:
        return class_coverage(self.probs)

    @cached_property
    def per_digit_fid(self) -> list[float] | None:
        return (
            None
            if self.labels is None
            else per_digit_fid(self.features, self.labels, self.ref_features, self.ref_labels)
        )


MetricFn = Callable[[Scored], float | None]  # None: the metric does not apply to this set (no labels)
FUNCTIONS: dict[str, MetricFn] = {}


def metric(key: str) -> Callable[[MetricFn], MetricFn]:
    """Register the function computing the metric `key` of registry.METRICS (one function per entry)."""

    def register(fn: MetricFn) -> MetricFn:
        assert key in METRICS and key not in FUNCTIONS, f"metric {key!r}: one METRICS entry, one function"
        FUNCTIONS[key] = fn
        return fn

    return register


@metric("two_sample_accuracy")
def _two_sample_accuracy(s: Scored) -> float | None:
    return None if s.two_sample is None else s.two_sample["two_sample_accuracy"]


@metric("two_sample_se")
def _two_sample_se(s: Scored) -> float | None:
    return None if s.two_sample is None else s.two_sample.get("two_sample_se")


@metric("per_digit_two_sample_max")
def _per_digit_two_sample_max(s: Scored) -> float | None:
    per_digit = None if s.two_sample is None or s.labels is None else s.two_sample.get("per_digit_two_sample")
    return None if per_digit is None else max(per_digit)


@metric("fid")
def _fid(s: Scored) -> float:
    return fid(s.ref_features, s.features)


@metric("classifier_score")
def _classifier_score(s: Scored) -> float:
    return classifier_score(s.probs)


@metric("classes_covered")
def _classes_covered(s: Scored) -> int:
    return s.coverage["classes_covered"]


@metric("kl_to_uniform")
def _kl_to_uniform(s: Scored) -> float:
    return s.coverage["kl_to_uniform"]


@metric("label_accuracy")
def _label_accuracy(s: Scored) -> float | None:
    return None if s.labels is None else accuracy(s.probs, s.labels)


@metric("per_digit_fid_max")
def _per_digit_fid_max(s: Scored) -> float | None:
    return None if s.per_digit_fid is None else max(s.per_digit_fid)


@metric("precision")
def _precision(s: Scored) -> float:
    return precision(s.ref_features, s.features, s.k, s.ref_radii)


@metric("recall")
def _recall(s: Scored) -> float:
    return recall(s.ref_features, s.features, s.k)


@metric("nn_dist_mean")
def _nn_dist_mean(s: Scored) -> float:
    return float(s.nn_dist.mean())


@metric("nn_dist_min")
def _nn_dist_min(s: Scored) -> float:
    return float(s.nn_dist.min())


@metric("closer_than_test_1pct")
def _closer_than_test_1pct(s: Scored) -> float:
    return float((s.nn_dist < s.ref_nn_dist.quantile(0.01)).double().mean())


def summarize(s: Scored) -> dict:
    """Every metric of registry.METRICS that applies to the set, in the registry's order."""
    values = {key: FUNCTIONS[key](s) for key in METRICS}
    return {key: value for key, value in values.items() if value is not None}


def per_digit_fid(
    features: torch.Tensor, labels: torch.Tensor, ref_features: torch.Tensor, ref_labels: torch.Tensor
) -> list[float]:
    """FID of the images of each digit against the reference images of that digit."""
    return [fid(ref_features[ref_labels == d], features[labels == d]) for d in range(int(ref_labels.max()) + 1)]
