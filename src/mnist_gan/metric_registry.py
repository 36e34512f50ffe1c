"""One entry per evaluate-stage metric: its key in metrics.json, labels, which way is better and its format.

The report, the compare page and the model card take labels and directions from here (torch-free, so the
digit server can read it too). A new metric is one function in `metrics.py` plus one entry below.
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

    def best(self, values: list[float]) -> float:
        return min(values) if self.better == "lower" else max(values)

    def format(self, value) -> str:
        return "" if value is None else format(value, self.fmt) if isinstance(value, (int, float)) else str(value)


METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("fid", "FID in classifier features", "FID", "lower", ".2f"),
    Metric("classifier_score", "classifier score (max 10)", "score", "higher", ".2f"),
    Metric("classes_covered", "digit classes covered (>= 2% each)", "classes", "higher", "d"),
    Metric("kl_to_uniform", "KL(class histogram || uniform)", "KL", "lower", ".4f"),
    Metric("label_accuracy", "label accuracy (asked-for digit recognized)", "label acc.", "higher", ".4f"),
    Metric("per_digit_fid_max", "worst per-digit FID", "worst digit FID", "lower", ".2f"),
    Metric("precision", "precision (k-NN manifold)", "precision", "higher", ".3f"),
    Metric("recall", "recall (k-NN manifold)", "recall", "higher", ".3f"),
    Metric("nn_dist_mean", "mean L2 to nearest training image (higher = less copying)", "NN dist", "higher", ".3f"),
    Metric("nn_dist_min", "min L2 to nearest training image (higher = less copying)", "NN min", "higher", ".3f"),
    Metric("closer_than_test_1pct", "share closer than 99% of test images", "near copies", "lower", ".4f"),
)}
