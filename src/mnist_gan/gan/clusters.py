"""Self-conditioning labels: k-means clusters of the training images, found without their digit labels.

Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs": an unconditional GAN trained with the
conditional machinery (conditional BatchNorm in G, projection D) on cluster ids instead of class labels. The
clusters split the data into modes that G must each cover, which is what an unconditional GAN on MNIST fails
at (it mixes digits). G then samples a cluster id from the clusters' shares of the training set, so the model
is unconditional for its user: no digit label is read in training, and no digit can be asked for.

Clustering is k-means++ (Arthur & Vassilvitskii 2007) on the first `PCA_DIMS` principal components of the
*deskewed* pixels (each digit sheared upright and centred by its image moments, the classic MNIST preprocessing):
slant is a writer's habit, not a digit's identity, and removing it makes the clusters far purer (share of
images in their cluster's majority digit, measured here with the labels that training never reads: 50 clusters
0.81 -> 0.90, 100 clusters 0.87 -> 0.92). Only the clustering sees deskewed images; the GAN learns the originals.
In torch: deterministic for a seed on one machine and thread count.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CLUSTER_SIZE = 28  # images are clustered at MNIST's own size (larger ones are resized down to it first)
PCA_DIMS = 50  # principal components of the 784 pixels that k-means sees (85% of the variance of MNIST)
KMEANS_ITERS = 50  # Lloyd iterations at most; it stops earlier when no assignment changes


def deskew(images: torch.Tensor) -> torch.Tensor:
    """Images (N, H, W) in [0, 1] sheared so their principal stroke stands upright, and centred by mass
    (the moment-based deskewing of LeCun et al.'s MNIST benchmarks)."""
    n, h, w = images.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=images.dtype), torch.arange(w, dtype=images.dtype), indexing="ij")
    mass = images.sum((1, 2)).clamp(min=1e-6)
    cy, cx = (images * ys).sum((1, 2)) / mass, (images * xs).sum((1, 2)) / mass
    dy, dx = ys - cy[:, None, None], xs - cx[:, None, None]
    skew = (images * dy * dx).sum((1, 2)) / (images * dy * dy).sum((1, 2)).clamp(min=1e-6)  # x drift per row
    # output pixel (y, x) reads the input at (y + cy - c, x + cx - c + skew (y - c)), c = the centre;
    # affine_grid works in [-1, 1] coordinates, c = (size - 1) / 2 pixels
    c = (w - 1) / 2
    theta = torch.zeros(n, 2, 3, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = 1.0, skew, (cx - c) / c
    theta[:, 1, 1], theta[:, 1, 2] = 1.0, (cy - c) / c
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=True)
    return F.grid_sample(images[:, None], grid, align_corners=True)[:, 0]


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
    images = images_u8[:, 0].float() / 255
    if images.shape[-1] > CLUSTER_SIZE:
        # larger images (dcgan64's 64x64) are MNIST resized up: clustered at its own 28x28, where they hold the same
        # digits, and the PCA's scatter matrix is 784 wide instead of 4,096 (an SVD 5 times narrower)
        images = F.interpolate(images[:, None], size=(CLUSTER_SIZE, CLUSTER_SIZE), mode="area")[:, 0]
    x = pca(deskew(images).flatten(1).double(), PCA_DIMS)
    assign = kmeans(x, k, seed)
    counts = torch.bincount(assign, minlength=k)
    order = torch.argsort(counts, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(k)
    labels = rank[assign]
    prior = (counts[order].double() / len(labels)).tolist()
    return labels, prior
