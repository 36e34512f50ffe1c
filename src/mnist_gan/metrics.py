"""Sample-quality metrics in the MNIST classifier's feature space, each with a real-vs-real reading.

- FID (Heusel et al. 2017) on the classifier's 128-d features, computed by torchmetrics.
- Classifier score: Inception Score (Salimans et al. 2016) with the MNIST classifier, exp E[KL(p(y|x) || p(y))],
  at most 10; computed by torchmetrics.
- Class coverage: histogram of predicted digits, classes holding >= 2% of samples, KL(histogram || uniform).
- Precision / recall with k-NN manifolds (Kynkaanniemi et al. 2019, https://arxiv.org/abs/1904.06991).
- Memorization: each sample's L2 distance (pixels in [-1, 1]) to its nearest training image.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

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
    metric = FrechetInceptionDistance(feature=_Precomputed(dim), input_img_size=(dim,), normalize=False)
    metric.update(real_features.double(), real=True)
    metric.update(fake_features.double(), real=False)
    return float(metric.compute())


def classifier_score(probs: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))): 1 when every sample gets the same class distribution, 10 at best."""
    with warnings.catch_warnings():  # its memory warning is moot for 10 numbers per image, and with one
        warnings.simplefilter("ignore", UserWarning)  # split its std over splits is undefined (unused here)
        metric = InceptionScore(feature=_Precomputed(probs.shape[1]), splits=1)
        metric.update(probs.clamp_min(1e-12).log())  # log-probabilities are valid logits: softmax gives p back
        return float(metric.compute()[0])


def class_coverage(probs: torch.Tensor) -> dict:
    """Share of samples per predicted digit, how many digits hold >= COVERED_SHARE, KL to uniform."""
    k = probs.shape[1]
    hist = torch.bincount(probs.argmax(1), minlength=k).double() / len(probs)
    nonzero = hist[hist > 0]
    return {"histogram": hist.tolist(), "classes_covered": int((hist >= COVERED_SHARE).sum()),
            "kl_to_uniform": float((nonzero * (nonzero * k).log()).sum())}


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
    return torch.cat([torch.cdist(q.float(), features.float()).kthvalue(k + 1, dim=1).values
                      for q in features.split(chunk)])


def _inside_manifold(query: torch.Tensor, ref: torch.Tensor, radii: torch.Tensor, chunk: int = 1024) -> float:
    """Fraction of `query` points inside at least one ball B(ref_j, radii_j)."""
    inside = [(torch.cdist(q.float(), ref.float()) <= radii[None, :]).any(dim=1) for q in query.split(chunk)]
    return float(torch.cat(inside).double().mean())


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Precision: share of samples on the real manifold; recall: share of real data on the sample manifold."""
    precision = _inside_manifold(fake_features, real_features, knn_radii(real_features, k))
    recall = _inside_manifold(real_features, fake_features, knn_radii(fake_features, k))
    return precision, recall


def nearest_training_images(samples: torch.Tensor, train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each sample's nearest training image, L2 over pixels in [-1, 1]."""
    return _min_dist(samples.flatten(1), train.flatten(1))


def summarize(probs: torch.Tensor, features: torch.Tensor, ref_features: torch.Tensor, k: int) -> dict:
    """Every feature-space metric of one image set against the reference (test) set."""
    precision, recall = precision_recall(ref_features, features, k)
    coverage = class_coverage(probs)
    return {"fid": fid(ref_features, features), "classifier_score": classifier_score(probs),
            "precision": precision, "recall": recall, "classes_covered": coverage["classes_covered"],
            "kl_to_uniform": coverage["kl_to_uniform"]}

