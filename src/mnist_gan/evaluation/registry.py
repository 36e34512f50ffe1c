"""One entry per metric: its key, labels, which way is better and its format.

`METRICS`: the evaluate stage's (results/evaluate/metrics.json, in this order). The report, the compare page, the
model card and the sweep's table take labels and directions from here (torch-free: a tool can read it without
importing torch); the training curves' words live with the figures (outputs/curves.py). A new evaluate metric is
one entry below plus one function in `metrics.py` registered with `@metric(key)`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    key: str  # in results/evaluate/metrics.json ("generated" and "real_floor")
    label: str  # long label (report, model card)
    short: str  # column header (compare page)
    better: str  # "lower" | "higher"
    fmt: str = ".4g"  # format spec of one value
    headline: bool = False  # a column of the compare page and a metric of the model card
    error: str | None = None  # the key of its standard error, shown beside it ("0.900 +- 0.003")

    def best(self, values: list[float]) -> float:
        return min(values) if self.better == "lower" else max(values)

    def format(self, value) -> str:
        return "" if value is None else format(value, self.fmt) if isinstance(value, (int, float)) else str(value)

    def reading(self, scores: dict) -> str:
        """Its value in a set's scores, with its standard error when they hold one."""
        error = scores.get(self.error) if self.error else None
        return self.format(scores[self.key]) + ("" if error is None else f" +- {self.format(error)}")


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric(
            "two_sample_accuracy",
            "two-sample test accuracy (a fresh CNN, trained until it stops improving, tells them from real test digits;"
            " 0.5 = indistinguishable)",
            "C2ST",
            "lower",
            ".3f",
            headline=True,
            error="two_sample_se",
        ),
        Metric("two_sample_se", "its standard error (binomial, over the held-out images)", "C2ST SE", "lower", ".3f"),
        Metric(
            "per_digit_two_sample_max", "worst per-digit two-sample test accuracy", "worst digit C2ST", "lower", ".3f"
        ),
        Metric("fid", "FID in classifier features", "FID", "lower", ".2f", headline=True),
        Metric("classifier_score", "classifier score (max 10)", "score", "higher", ".2f", headline=True),
        Metric("classes_covered", "digit classes covered (>= 2% each)", "classes", "higher", "d", headline=True),
        Metric("kl_to_uniform", "KL(class histogram || uniform)", "KL", "lower", ".4f", headline=True),
        Metric(
            "label_accuracy",
            "label accuracy (asked-for digit recognized)",
            "label acc.",
            "higher",
            ".4f",
            headline=True,
        ),
        Metric("per_digit_fid_max", "worst per-digit FID", "worst digit FID", "lower", ".2f"),
        Metric("precision", "precision (k-NN manifold)", "precision", "higher", ".3f", headline=True),
        Metric("recall", "recall (k-NN manifold)", "recall", "higher", ".3f", headline=True),
        Metric("nn_dist_mean", "mean L2 to nearest training image (higher = less copying)", "NN dist", "higher", ".3f"),
        Metric("nn_dist_min", "min L2 to nearest training image (higher = less copying)", "NN min", "higher", ".3f"),
        Metric("closer_than_test_1pct", "share closer than 99% of test images", "near copies", "lower", ".4f"),
    )
}

METRICS_FILE = "results/evaluate/metrics.json"  # the evaluate stage's metrics, in a checkout of the pipeline
SUMMARY = ("two_sample_accuracy", "fid", "precision", "recall", "label_accuracy")  # a run's one-line summary


def summary(scores: dict, floor: dict | None = None, keys: tuple[str, ...] = SUMMARY) -> str:
    """One line of a set's metrics by their short labels, each the set has, the floor's beside it:
    "C2ST 0.900 +- 0.003 (real 0.532 +- 0.005), FID 5.98 (real 3.24), ..." (the evaluate stage's last line, the
    release's tag message, the GPU check's and the study's lines)."""
    floor = floor or {}
    parts = []
    for key in keys:
        if scores.get(key) is not None:
            m = METRICS[key]
            beside = f" (real {m.reading(floor)})" if floor.get(key) is not None else ""
            parts.append(f"{m.short} {m.reading(scores)}{beside}")
    return ", ".join(parts)
