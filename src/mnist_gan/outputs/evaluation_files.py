"""What the evaluate stage writes from a scored generator (`evaluation.scoring.Evaluation`): metrics.json,
classes.json and three grids, each file written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mnist_gan.data.pixels import to_float
from mnist_gan.evaluation.scoring import Evaluation
from mnist_gan.outputs.images import class_grid, labelled_grid, pairs_grid, save_png
from mnist_gan.storage import write_text

LEAST_REAL = 16  # samples (and real digits, for contrast) in least_real.png


def write_evaluation(
    result: Evaluation, train_u8: torch.Tensor, test_u8: torch.Tensor, out_dir: Path, n_pairs: int
) -> list[Path]:
    """metrics.json, classes.json, per_class.png (row d: samples asked for d when conditional, else those the
    classifier is surest are d), nearest.png (the `n_pairs` samples closest to a training image, beside it) and
    least_real.png (top row: the samples the two-sample test is surest are generated; bottom row: the real test
    digits it is surest are real)."""
    out_dir = Path(out_dir)
    names = ("metrics.json", "classes.json", "per_class.png", "nearest.png", "least_real.png")
    written = [out_dir / name for name in names]
    write_text(written[0], json.dumps(result.metrics, indent=2) + "\n")
    write_text(written[1], json.dumps(result.classes(), indent=2) + "\n")
    grid = (
        class_grid(result.samples, result.probs)
        if result.labels is None
        else labelled_grid(result.samples, result.labels)
    )
    save_png(grid, written[2])
    samples, neighbours = result.nearest_pairs(n_pairs)
    save_png(pairs_grid(samples, to_float(train_u8[neighbours])), written[3])
    fake, real = result.least_real(test_u8, LEAST_REAL)
    save_png(pairs_grid(to_float(fake), to_float(real)), written[4])
    return written
