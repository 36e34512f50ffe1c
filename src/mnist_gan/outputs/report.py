"""The run's report: metrics beside the real floor, training curves, samples, the fixed-noise animation and every
param, as one `Page` (self-contained HTML and its Markdown twin).

The report stage (`stages/report.py`) calls `build_report` on the outputs of the earlier stages, and on nothing else
(no git revision, no clock), so a rerun writes the same bytes; the compare page (`compare.py`) is its sibling over
several revisions, and the place to see this run beside another.
"""

from __future__ import annotations

import json
from pathlib import Path

from mnist_gan.errors import PipelineError
from mnist_gan.evaluation.registry import METRICS
from mnist_gan.outputs.curves import READINGS, TRAINING
from mnist_gan.outputs.figures import figure_bytes, histogram_figure, training_curves_figure
from mnist_gan.outputs.images import epoch_grids, gif_bytes
from mnist_gan.outputs.page import Page, yaml_cell
from mnist_gan.settings.configs import Params, conditioning_words


def read_json(path: Path, stage: str) -> dict:
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the {stage} stage first (dvc repro)")
    return json.loads(path.read_text())


def build_report(p: Params, train_dir: Path, sample_dir: Path, eval_dir: Path) -> Page:
    """The page for the outputs of the train, sample and evaluate stages of a run with params `p`."""
    train = read_json(train_dir / "metrics.json", "train")
    evaluation = read_json(eval_dir / "metrics.json", "evaluate")
    grid = sample_dir / "grid.png"
    if not grid.is_file():
        raise PipelineError(f"{grid} does not exist; run the sample stage first (dvc repro)")
    t = p.train
    how = conditioning_words(t.conditional, t.clusters)
    page = Page(f"mnist-gan: {p.gan.model}, {how}, {t.loss} loss, {t.epochs} epoch(s), lr {t.lr:g}")
    metrics_section(page, p, evaluation, eval_dir)
    page.heading("Training")
    page.table(
        ["metric", "final epoch"],
        [
            [TRAINING[f"train/{k}"].label, TRAINING[f"train/{k}"].format(v)]
            for k, v in train.get("epoch_mean", {}).items()
        ],
    )
    page.image(
        "curves.png",
        figure_bytes(training_curves_figure(train_dir, t.loss)),
        f"Losses and D outputs per logged step (D outputs as {READINGS[t.loss].label}); FID per epoch",
    )
    samples_section(page, p, grid, sample_dir, train_dir)
    page.heading("Params")
    page.paragraph("params.yaml as used by this run:")
    page.table(["param", "value"], [[k, yaml_cell(v)] for k, v in p.flat().items()])
    return page


def metrics_section(page: Page, p: Params, evaluation: dict, eval_dir: Path) -> None:
    page.heading("Metrics")
    page.paragraph(
        f"{p.evaluate.n_samples} generated images against the 10,000 real test images, in the feature space of a "
        f"classifier trained on real MNIST; the two-sample test trains a network of its own. 'real floor': real "
        f"training images scored the same way. Beside other runs: `mnist-gan compare` (e.g. `mnist-gan compare HEAD "
        f"workspace`) or `dvc exp show`."
    )
    gen, floor = evaluation["generated"], evaluation["real_floor"]
    errors = {m.error for m in METRICS.values() if m.error}  # shown beside their metric ("0.927 +- 0.003")
    reading = lambda m, scores: m.reading(scores) if scores.get(m.key) is not None else ""  # noqa: E731
    rows = [
        [m.label, reading(m, gen), reading(m, floor), m.better]
        for k, m in METRICS.items()
        if k in gen and k not in errors
    ]
    page.table(["metric", "this run", "real floor", "better"], rows)
    if "per_digit_fid" in gen:
        page.paragraph(
            "Per digit: FID of the samples asked for each digit against the test images of that digit, beside the "
            "same for real training images of that digit (about a tenth of the samples each, so both are larger "
            "than the overall FID)."
        )
        page.table(
            ["digit", *range(10)],
            [["generated", *gen["per_digit_fid"]], ["real floor", *floor.get("per_digit_fid", [None] * 10)]],
        )
    if "per_digit_two_sample" in gen:
        page.paragraph(
            "Per digit: the two-sample test's held-out accuracy on the samples asked for each digit and the test "
            "images of that digit, beside its floor (real training against real test images of that digit)."
        )
        page.table(
            ["digit", *range(10)],
            [
                ["generated", *gen["per_digit_two_sample"]],
                ["real floor", *floor.get("per_digit_two_sample", [None] * 10)],
            ],
        )
    classes = read_json(eval_dir / "classes.json", "evaluate")
    page.image(
        "classes.png",
        figure_bytes(histogram_figure(classes["generated"], classes["real"])),
        "Digits the classifier sees in the samples and in real data",
    )
    rows_are = "asked for digit d" if "label_accuracy" in gen else "classified as digit d (most confident first)"
    page.image("per_class.png", (eval_dir / "per_class.png").read_bytes(), f"Samples per digit: row d = {rows_are}")
    page.image(
        "least_real.png",
        (eval_dir / "least_real.png").read_bytes(),
        "What the two-sample test finds least real: the held-out samples it is surest are generated (top), and for "
        "contrast the real test digits it is surest are real (bottom)",
        zoom=2,
    )
    page.image(
        "nearest.png",
        (eval_dir / "nearest.png").read_bytes(),
        "Memorization check: the samples closest to a training image (top) and that image (bottom)",
    )


def samples_section(page: Page, p: Params, grid: Path, sample_dir: Path, train_dir: Path) -> None:
    t = p.train
    page.heading("Samples")
    page.image("samples.png", grid.read_bytes(), f"{p.sample.n_images} samples, seed {p.sample.seed}")
    strip = sample_dir / "grid_interpolation.png"
    if strip.is_file():
        caption = "One z, digits 0 to 9" if t.conditional else "Moving z along a great circle between two draws"
        caption += ", in one cluster" if not t.conditional and t.clusters else ""
        page.image("interpolation.png", strip.read_bytes(), f"Interpolation: {caption}")
    frames = epoch_grids(train_dir)
    if frames:  # already 3x (nearest): more zoom would overflow the page and be rescaled (blurred)
        page.image(
            "fixed_noise.gif", gif_bytes(frames), "The fixed noise (and digits) after each epoch (animated)", zoom=1
        )
        for i, frame in enumerate(frames, 1):
            page.image(f"epoch_{i:03d}.png", frame.read_bytes(), f"epoch {i}", zoom=1)
