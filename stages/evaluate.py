"""Score the generator against real MNIST in the classifier's feature space, beside the real-vs-real floor."""

import json
from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.data.mnist import load_split
from mnist_gan.data.pixels import to_float
from mnist_gan.evaluation.classifier import load_classifier
from mnist_gan.evaluation.metrics import class_coverage
from mnist_gan.evaluation.scoring import evaluate
from mnist_gan.gan.sampling import load_generator
from mnist_gan.outputs.images import class_grid, labelled_grid, pairs_grid, save_png
from mnist_gan.runtime import pick_device, set_cpu_threads
from mnist_gan.stage import DeviceOption, params_or_exit, run, setting_option
from mnist_gan.storage import write_text

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
    device: DeviceOption = "auto",
):
    """Generate `n_samples` images (class-balanced for a conditional generator) and score them: FID, classifier
    score, coverage, precision/recall, memorization; label accuracy and per-digit FID when conditional."""
    dev = pick_device(device)
    if dev.type == "cpu":
        set_cpu_threads(None)
    generator = load_generator(weights, dev)
    train, test = load_split(raw_root, train=True), load_split(raw_root, train=False)
    result = evaluate(generator, load_classifier(classifier, dev), train, test, n_samples, seed, P.evaluate.nearest_k)
    write_text(out_dir / "metrics.json", json.dumps(result.metrics, indent=2) + "\n")
    classes = {
        "generated": class_coverage(result.probs)["histogram"],
        "real": class_coverage(result.real_probs)["histogram"],
    }
    write_text(out_dir / "classes.json", json.dumps(classes, indent=2) + "\n")

    # row d: samples asked for d (conditional) or those the classifier is surest are d (unconditional)
    grid = (
        class_grid(result.samples, result.probs)
        if result.labels is None
        else labelled_grid(result.samples, result.labels)
    )
    save_png(grid, out_dir / "per_class.png")
    closest = result.nn_dist.argsort()[: P.evaluate.n_pairs]
    save_png(pairs_grid(result.samples[closest], to_float(train[0][result.nn_index[closest]])), out_dir / "nearest.png")
    g, r = result.metrics["generated"], result.metrics["real_floor"]
    conditional = f", label accuracy {g['label_accuracy']:.4f}" if "label_accuracy" in g else ""
    typer.echo(
        f"evaluate: FID {g['fid']:.2f} (real floor {r['fid']:.2f}), score {g['classifier_score']:.2f} "
        f"(real {r['classifier_score']:.2f}), classes {g['classes_covered']}/10, "
        f"precision {g['precision']:.3f}, recall {g['recall']:.3f}{conditional}"
    )


if __name__ == "__main__":
    run(app)
