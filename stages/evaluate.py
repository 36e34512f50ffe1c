"""Score the generator against real MNIST in the classifier's feature space, beside the real-vs-real floor."""

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.data.mnist import load_split
from mnist_gan.evaluation.classifier import load_classifier
from mnist_gan.evaluation.scoring import evaluate_weights
from mnist_gan.outputs.evaluation_files import write_evaluation
from mnist_gan.runtime import stage_device
from mnist_gan.stage import DeviceOption, params_or_exit, require, run, setting_option

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    weights: Annotated[Path, typer.Argument(help="Generator weights file.")],
    classifier: Annotated[Path, typer.Argument(help="Classifier weights (classifier stage).")],
    raw_root: Annotated[Path, typer.Argument(help="Folder holding MNIST/raw/.")],
    out_dir: Annotated[Path, typer.Argument(help="Where metrics.json, classes.json and images go.")],
    n_samples: Annotated[int, setting_option("evaluate.n_samples")] = P.evaluate.n_samples,
    seed: Annotated[int, setting_option("evaluate.seed")] = P.evaluate.seed,
    two_sample_floor: Annotated[
        Path | None, typer.Option(help="The two_sample stage's metrics.json: the two-sample test's real floor.")
    ] = None,
    device: DeviceOption = "auto",
):
    """Generate `n_samples` images (class-balanced for a conditional generator) and score them: the two-sample test,
    FID, classifier score, coverage, precision/recall, memorization; label accuracy and per-digit FID and
    two-sample accuracy when conditional."""
    dev = stage_device(device)
    floor = None if two_sample_floor is None else json.loads(require(two_sample_floor, "two_sample").read_text())
    settings = replace(P.evaluate, n_samples=n_samples, seed=seed)  # the CLI's overrides, once
    train, test = load_split(raw_root, train=True), load_split(raw_root, train=False)
    result = evaluate_weights(settings, P.two_sample, weights, load_classifier(classifier, dev), train, test, floor)
    write_evaluation(result, train[0], test[0], out_dir, settings.n_pairs)
    typer.echo(f"evaluate: {result.summary()}")


if __name__ == "__main__":
    run(app)
