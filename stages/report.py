"""Write reports/report.html (self-contained) and reports/report.md: params, metrics, curves, samples."""

import json
import subprocess
from pathlib import Path
from typing import Annotated

import typer
import yaml

from mnist_gan.cli import params_or_exit, run, setting_option
from mnist_gan.configs import TrainConfig
from mnist_gan.figures import curves_figure, figure_bytes, histogram_figure
from mnist_gan.images import epoch_grids, gif_bytes
from mnist_gan.losses import OBJECTIVES
from mnist_gan.metric_registry import METRICS, TRAINING
from mnist_gan.page import Page
from mnist_gan.storage import PipelineError

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the stage that writes it first (dvc repro)")
    return json.loads(path.read_text())


def baseline_metrics(path: Path, rev: str) -> dict | None:
    """`path` as committed at git revision `rev` (DVC metrics with cache: false live in git), if any."""
    done = subprocess.run(["git", "show", f"{rev}:{path.as_posix()}"], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        return None


def conditioning(train: TrainConfig) -> str:
    if train.conditional:
        return "conditional on the digit"
    return f"unconditional (self-conditioned on {train.clusters} clusters)" if train.clusters else "unconditional"


@app.command()
def main(
    train_dir: Annotated[Path, typer.Argument(help="The train stage's DVCLive folder.")],
    sample_dir: Annotated[Path, typer.Argument(help="The sample stage's folder (grid.png).")],
    eval_dir: Annotated[Path, typer.Argument(help="The evaluate stage's folder (metrics.json, images).")],
    out_dir: Annotated[Path, typer.Argument(help="Where report.html, report.md and assets/ go.")],
    baseline: Annotated[str, setting_option("report.baseline")] = P.report.baseline,
):
    """Assemble the run's report from the outputs of the earlier stages."""
    train = read_json(train_dir / "metrics.json")
    grid = sample_dir / "grid.png"
    if not grid.is_file():
        raise PipelineError(f"{grid} does not exist; run the sample stage first (dvc repro)")
    t = P.train
    page = Page(f"mnist-gan: {P.gan.model}, {conditioning(t)}, {t.loss} loss, {t.epochs} epoch(s), lr {t.lr:g}")

    evaluation = read_json(eval_dir / "metrics.json")
    previous = (baseline_metrics(eval_dir / "metrics.json", baseline) or {}).get("generated", {})
    page.heading("Metrics")
    page.paragraph(f"{P.evaluate.n_samples} generated images against the 10,000 real test images, in the "
                   f"feature space of a classifier trained on real MNIST. 'real floor': the same number of real "
                   f"training images scored the same way. 'baseline': this run's metrics as committed at "
                   f"{baseline!r}" + ("" if previous else " (none found)") + ".")
    gen, floor = evaluation["generated"], evaluation["real_floor"]
    page.table(["metric", "this run", "real floor", f"baseline ({baseline})", "better"],
               [[m.label, m.format(gen.get(k)), m.format(floor.get(k)), m.format(previous.get(k)), m.better]
                for k, m in METRICS.items() if k in gen])
    if "per_digit_fid" in gen:
        page.paragraph("Per digit: FID of the samples asked for each digit against the test images of that digit, "
                       "beside the same for real training images of that digit (about a tenth of the samples each, "
                       "so both are larger than the overall FID).")
        page.table(["digit", *range(10)], [["generated", *gen["per_digit_fid"]],
                                           ["real floor", *floor.get("per_digit_fid", [None] * 10)]])
    classes = read_json(eval_dir / "classes.json")
    page.image("classes.png", figure_bytes(histogram_figure(classes["generated"], classes["real"])),
               "Digits the classifier sees in the samples and in real data")
    rows = "asked for digit d" if "label_accuracy" in gen else "classified as digit d (most confident first)"
    page.image("per_class.png", (eval_dir / "per_class.png").read_bytes(), f"Samples per digit: row d = {rows}")
    page.image("nearest.png", (eval_dir / "nearest.png").read_bytes(),
               "Memorization check: the samples closest to a training image (top) and that image (bottom)")

    page.heading("Training")
    page.table(["metric", "final epoch"], [[TRAINING[f"train/{k}"].label, TRAINING[f"train/{k}"].format(v)]
                                           for k, v in train.get("epoch_mean", {}).items()])
    reading = OBJECTIVES[t.loss].reading
    page.image("curves.png", figure_bytes(curves_figure(train_dir, t.loss, reading)),
               f"Losses and D outputs per logged step (D outputs as {reading.label}); FID per epoch")

    page.heading("Samples")
    page.image("samples.png", grid.read_bytes(), f"{P.sample.n_images} samples, seed {P.sample.seed}")
    strip = sample_dir / "grid_interpolation.png"
    if strip.is_file():
        caption = ("One z, digits 0 to 9" if t.conditional else "Moving z along a great circle between two draws"
                   + (", in one cluster" if t.clusters else ""))
        page.image("interpolation.png", strip.read_bytes(), f"Interpolation: {caption}")
    frames = epoch_grids(train_dir)
    if frames:
        page.image("fixed_noise.gif", gif_bytes(frames), "The fixed noise (and digits) after each epoch (animated)",
                   zoom=1)  # already 3x (nearest); more would overflow the page and be rescaled (blurred)
        for i, frame in enumerate(frames, 1):
            page.image(f"epoch_{i:03d}.png", frame.read_bytes(), f"epoch {i}", zoom=1)

    page.heading("Params")
    page.paragraph("params.yaml as used by this run:")
    page.table(["param", "value"], [[k, yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()]
                                    for k, v in P.flat().items()])
    page.write(out_dir)
    typer.echo(f"report: {out_dir / 'report.html'} and {out_dir / 'report.md'} ({len(page.assets)} images)")


if __name__ == "__main__":
    run(app)
