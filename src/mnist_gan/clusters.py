"""Self-conditioning labels: k-means clusters of the training images, found without their digit labels.

Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs": an unconditional GAN trained with the
conditional machinery (conditional BatchNorm in G, projection D) on cluster ids instead of class labels. The
clusters split the data into modes that G must each cover, which is what an unconditional GAN on MNIST fails
at (it mixes digits). G then samples a cluster id from the clusters' shares of the training set, so the model
is unconditional for its user: no digit label is read in training, and no digit can be asked for.

Clustering is k-means++ (Arthur & Vassilvitskii 2007) on the first `dims` principal components of the pixels,
in torch: deterministic for a seed on one machine and thread count, a few seconds for 60,000 images on a CPU.
"""

from __future__ import annotations

import torch

from mnist_gan.data import to_float

PCA_DIMS = 50  # principal components of the 784 pixels that k-means sees (85% of the variance of MNIST)
KMEANS_ITERS = 50  # Lloyd iterations at most; it stops earlier when no assignment changes


def pca(x: torch.Tensor, dims: int) -> torch.Tensor:
    """x (N, D) projected on its first `dims` principal components (exact SVD of the centred data)."""
    centred = x - x.mean(0)
    u, _, _ = torch.linalg.svd(centred.T @ centred)  # (D, D) scatter matrix, symmetric: columns of u = axes
    return centred @ u[:, :dims]


def kmeans(x: torch.Tensor, k: int, seed: int, iters: int = KMEANS_ITERS) -> torch.Tensor:
    """Cluster ids (N,) of the rows of x (N, D): k-means++ seeding, then Lloyd's iterations."""
    rng = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=rng)]
    nearest = torch.cdist(x, centres).squeeze(1) ** 2
    for _ in range(1, k):  # k-means++: the next centre with probability ~ squared distance to the nearest
        pick = torch.multinomial(nearest / nearest.sum(), 1, generator=rng)
        centres = torch.cat([centres, x[pick]])
        nearest = torch.minimum(nearest, ((x - x[pick]) ** 2).sum(1))
    assign = torch.cdist(x, centres).argmin(1)
    for _ in range(iters):
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1).to(x.dtype)
        centres = torch.where(counts > 0, sums / counts.clamp(min=1), centres)  # an empty cluster keeps its centre
        new = torch.cdist(x, centres).argmin(1)
        if torch.equal(new, assign):
            break
        assign = new
    return assign


def self_condition_labels(images_u8: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, list[float]]:
    """(cluster id of every image (N,), share of the images in each cluster) for k clusters.

    Clusters are renumbered by size (0 = largest), so the ids do not depend on k-means' seeding order."""
    x = pca(to_float(images_u8).flatten(1).double(), PCA_DIMS)
    assign = kmeans(x, k, seed)
    counts = torch.bincount(assign, minlength=k)
    order = torch.argsort(counts, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(k)
    labels = rank[assign]
    prior = (counts[order].double() / len(labels)).tolist()
    return labels, prior
