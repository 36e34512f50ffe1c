"""The training curves as people read them: each logged curve's label and format, how D's outputs read under each
objective, and the DVCLive files the curves live in (one reader for all of them).

The train stage's console lines, the report's curves and the compare page take their words from here, so editing a
label reruns only what shows it (the report), never training or sampling. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnist_gan.settings.configs import LOSSES


@dataclass(frozen=True)
class Curve:
    key: str  # the DVCLive name under results/train/plots/metrics
    label: str  # long label (report, figures)
    short: str  # the console's and the compare page's word
    better: str | None = None  # "lower" for a quality curve; None for a GAN loss, which has no better direction
    fmt: str = ".4f"

    def format(self, value) -> str:
        return "" if value is None else format(value, self.fmt)


TRAINING: dict[str, Curve] = {
    c.key: c
    for c in (
        Curve("train/loss_d", "loss D", "loss_d"),
        Curve("train/loss_g", "loss G", "loss_g"),
        Curve("train/d_real", "D(x)", "D(x)"),
        Curve("train/d_fake", "D(G(z))", "D(G(z))"),
        Curve("quality/fid", "FID per epoch (EMA generator, classifier features)", "FID", "lower"),
    )
}


@dataclass(frozen=True)
class Reading:
    """How to read the logged D(x) / D(G(z)) of an objective: axis label, range, reference lines."""

    label: str
    limits: tuple[float, float] | None = None  # fixed axis range (a probability), else fitted to the data
    guides: tuple[tuple[float, str], ...] = ()  # (value, what it means) drawn as horizontal lines


READINGS: dict[str, Reading] = {  # by `loss`: what gan/losses.py's Objective.score makes of D's logit
    "bce": Reading("probability of real (sigmoid of D's logit)", (0.0, 1.0), ((0.5, "undecided"),)),
    "hinge": Reading(
        "raw score (hinge: real pushed to >= +1, fake to <= -1)",
        None,
        ((1.0, "real margin"), (0.0, "decision boundary"), (-1.0, "fake margin")),
    ),
    "wgan-gp": Reading("critic value (D(x) - D(G(z)) estimates the Wasserstein distance)", None, ((0.0, "zero"),)),
    "lsgan": Reading("regression output (least squares targets)", None, ((1.0, "real target"), (0.0, "fake target"))),
    "rpgan": Reading("raw score (RpGAN: only D(x) - D(G(z)) of a pair matters)", None, ((0.0, "zero"),)),
}
assert tuple(READINGS) == LOSSES, "a reading for every objective params.yaml accepts"


def parse_tsv(text: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one DVCLive metric file's text (columns: step, <name>; a timestamp column is skipped)."""
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    if len(rows) < 2:
        return [], []
    step, value = rows[0].index("step"), next(i for i, k in enumerate(rows[0]) if k not in ("timestamp", "step"))
    return [float(r[step]) for r in rows[1:]], [float(r[value]) for r in rows[1:]]


def read_tsv(path: Path) -> tuple[list[float], list[float]]:
    return parse_tsv(Path(path).read_text())


def metric_file(live_dir: Path, key: str) -> Path:
    """The DVCLive file of the curve `key` in a train stage's results folder."""
    return Path(live_dir) / "plots" / "metrics" / f"{key}.tsv"
