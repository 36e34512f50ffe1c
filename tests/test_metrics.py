"""Metric functions on inputs with known answers."""

import math

import pytest
import torch

from mnist_gan.metrics import (class_coverage, classifier_score, fid, knn_radii, nearest_training_images,
                               precision_recall)


@pytest.fixture
def features():
    return torch.randn(2000, 16, generator=torch.Generator().manual_seed(0))


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift(features):
    assert fid(features, features) == pytest.approx(0.0, abs=1e-6)
    other = torch.randn(2000, 16, generator=torch.Generator().manual_seed(1))
    same_law = fid(features, other)
    shifted = fid(features, other + 1.0)  # mean moved by 1 in each of 16 dims: FID grows by ~16
    assert same_law < 0.5
    assert shifted == pytest.approx(same_law + 16, rel=0.1)


def test_classifier_score_extremes():
    one_class = torch.zeros(500, 10)
    one_class[:, 3] = 1.0
    assert classifier_score(one_class) == pytest.approx(1.0, abs=1e-4)
    confident_uniform = torch.eye(10).repeat(50, 1)  # each sample sure of its class, all classes equally
    assert classifier_score(confident_uniform) == pytest.approx(10.0, rel=1e-3)


def test_class_coverage():
    one_class = torch.zeros(100, 10)
    one_class[:, 7] = 1.0
    coverage = class_coverage(one_class)
    assert coverage["classes_covered"] == 1
    assert coverage["kl_to_uniform"] == pytest.approx(math.log(10))
    assert coverage["histogram"][7] == 1.0
    balanced = class_coverage(torch.eye(10).repeat(10, 1))
    assert balanced["classes_covered"] == 10 and balanced["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)


def test_precision_recall_of_a_set_with_itself_is_one_and_drops_for_a_far_set(features):
    assert precision_recall(features, features, k=3) == (1.0, 1.0)
    far = features + 100.0
    assert precision_recall(features, far, k=3) == (0.0, 0.0)
    half = torch.cat([features[:1000], features[1000:] + 100.0])  # half on the real manifold, half far off
    precision, recall = precision_recall(features, half, k=3)
    assert precision == pytest.approx(0.5, abs=0.02)
    assert 0.5 <= recall < 1.0  # the copied half is covered; the rest only where the samples' balls reach


def test_knn_radii_excludes_the_point_itself():
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(points, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]


def test_nearest_training_image():
    train = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 0.0, 1.0)])
    samples = torch.stack([torch.full((1, 2, 2), 0.9), torch.full((1, 2, 2), -0.2)])
    distance, index = nearest_training_images(samples, train)
    assert index.tolist() == [2, 1]
    assert distance.tolist() == pytest.approx([0.2, 0.4])
