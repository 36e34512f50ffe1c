"""Metric functions on inputs with known answers."""

import json
import math
import sys
from dataclasses import replace

import pytest
import torch

from mnist_gan.evaluation.metrics import (
    FUNCTIONS,
    Scored,
    class_coverage,
    classifier_score,
    fid,
    knn_radii,
    nearest_training_images,
    precision,
    recall,
    summarize,
)
from mnist_gan.evaluation.registry import METRICS, summary


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
    assert (precision(features, features, k=3), recall(features, features, k=3)) == (1.0, 1.0)
    far = features + 100.0
    assert (precision(features, far, k=3), recall(features, far, k=3)) == (0.0, 0.0)
    half = torch.cat([features[:1000], features[1000:] + 100.0])  # half on the real manifold, half far off
    assert precision(features, half, k=3) == pytest.approx(0.5, abs=0.02)
    assert 0.5 <= recall(features, half, k=3) < 1.0  # the copied half is covered; the rest where the balls reach


def test_knn_radii_excludes_the_point_itself():
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(points, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]


def test_nearest_training_image():
    train = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 0.0, 1.0)])
    samples = torch.stack([torch.full((1, 2, 2), 0.9), torch.full((1, 2, 2), -0.2)])
    distance, index = nearest_training_images(samples, train)
    assert index.tolist() == [2, 1]
    assert distance.tolist() == pytest.approx([0.2, 0.4])


def scored(n: int = 400, labels: bool = True, seed: int = 0) -> Scored:
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(n, 10, generator=g), 1)
    ref_labels = torch.arange(n) % 10
    return Scored(
        probs,
        torch.randn(n, 8, generator=g),
        torch.randn(n, 8, generator=g),
        ref_labels,
        ref_labels.clone() if labels else None,
        torch.rand(n, generator=g) + 1,
        torch.rand(n, generator=g) + 1,
        3,
        two_sample={
            "two_sample_accuracy": 0.7,
            "two_sample_se": 0.01,
            "per_digit_two_sample": [0.6 + d / 100 for d in range(10)],
        },
    )


def test_each_registry_entry_has_exactly_one_function():
    assert list(FUNCTIONS) == [k for k in METRICS if k in FUNCTIONS] and set(FUNCTIONS) == set(METRICS)


def test_summarize_runs_every_metric_that_applies():
    with_labels, without = summarize(scored()), summarize(scored(labels=False))
    assert list(with_labels) == list(METRICS)  # the registry's order
    # they need each image's digit
    assert set(METRICS) - set(without) == {"label_accuracy", "per_digit_fid_max", "per_digit_two_sample_max"}
    assert with_labels["two_sample_accuracy"] == 0.7 and with_labels["per_digit_two_sample_max"] == 0.69
    untested = summarize(replace(scored(), two_sample=None))  # a floor without the two_sample stage's file
    assert "two_sample_accuracy" not in untested and "fid" in untested


def test_one_summary_line_for_every_page_with_the_standard_error_beside_its_metric():
    gen = {"two_sample_accuracy": 0.9, "two_sample_se": 0.003, "fid": 5.98, "precision": 0.84, "recall": 0.83}
    floor = {"two_sample_accuracy": 0.532, "two_sample_se": 0.005, "fid": 3.24, "label_accuracy": 0.995}
    line = summary(gen, floor)
    assert line == (
        "C2ST 0.900 +- 0.003 (real 0.532 +- 0.005), FID 5.98 (real 3.24), precision 0.840, recall 0.830"
    )  # the registry's short labels and formats, in SUMMARY's order; label accuracy: not the set's
    assert summary({"fid": 5.98}) == "FID 5.98" and summary(gen, keys=("recall",)) == "recall 0.830"


def test_the_registered_functions_give_known_answers_on_a_hand_made_set():
    """1-d features and k = 1, so every ball is known: real points 0, 0.55, 3, 7 have radii 0.55, 0.55, 2.45, 4;
    samples 0.5 and 0.6 fall inside the ball of 0.55, samples 100 and 100.2 inside none (precision 1/2); the
    samples' own radii are 0.1, 0.1, 0.2, 0.2, so only the real 0.55 lies in one (recall 1/4). The classifier
    agrees with 3 of the 4 asked-for digits (label accuracy 3/4)."""
    real = torch.tensor([[0.0], [0.55], [3.0], [7.0]])
    fake = torch.tensor([[0.5], [0.6], [100.0], [100.2]])
    labels = torch.tensor([1, 2, 3, 4])
    probs = torch.nn.functional.one_hot(torch.tensor([1, 2, 3, 9]), 10).float()
    s = Scored(probs, fake, real, labels, labels, torch.ones(4), torch.ones(4), 1)
    got = {key: FUNCTIONS[key](s) for key in ("precision", "recall", "label_accuracy")}  # what summarize runs
    assert got == {"precision": 0.5, "recall": 0.25, "label_accuracy": 0.75}
    # radii given (the evaluate stage computes the test set's once for both of its sets) are the ones used
    assert FUNCTIONS["precision"](replace(s, ref_radii=knn_radii(real, 1))) == 0.5
    assert FUNCTIONS["precision"](replace(s, ref_radii=torch.tensor([0.0, 0.0, 0.0, 100.0]))) == 1.0


def test_a_new_metric_is_one_function_and_one_entry(monkeypatch, tmp_path):
    """What a newcomer writes for a new metric, and nothing else: it then reaches metrics.json (summarize), the
    compare page's columns (best in bold) and the model card, with its label and direction."""
    from mnist_gan.evaluation.metrics import metric
    from mnist_gan.evaluation.registry import Metric
    from mnist_gan.outputs.compare import Revision, build_page
    from mnist_gan.outputs.model_card import card_metadata

    monkeypatch.setitem(
        METRICS,
        "top_probability",
        Metric("top_probability", "mean top-class probability", "top p", "higher", ".3f", headline=True),
    )
    monkeypatch.setattr(sys.modules["mnist_gan.evaluation.metrics"], "FUNCTIONS", dict(FUNCTIONS))
    metric("top_probability")(lambda s: float(s.probs.max(1).values.mean()))

    values = summarize(scored())
    assert values["top_probability"] == pytest.approx(float(scored().probs.max(1).values.mean()))
    runs = [
        Revision("a", "a", metrics={"generated": {**values, "top_probability": 0.5}}),
        Revision("b", "b", metrics={"generated": {**values, "top_probability": 0.9}}),
    ]
    build_page(runs, []).write(tmp_path, stem="compare")
    html = (tmp_path / "compare.html").read_text()
    assert "<th>top p</th>" in html and "<strong>0.900</strong>" in html  # in its own format, .3f
    meta = {
        "config": json.dumps({"model": "dcgan"}),
        "kind": "conditional",
        "metrics": json.dumps({"generated": values, "real_floor": values}),
    }
    assert "top_probability" in card_metadata(meta)["metrics"]
