"""Train the MNIST classifier whose features every evaluation metric uses (FID, score, precision/recall).

It reads the raw 28x28 data and its own params only, so GAN experiments (any model, any image size) reuse it.
"""

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.data.mnist import load_split
from mnist_gan.evaluation.classifier import classifier_file, require_accuracy, test_accuracy
from mnist_gan.evaluation.fitting import train_classifier
from mnist_gan.runtime import resolve_precision, stage_device
from mnist_gan.stage import DeviceOption, params_or_exit, run, setting_option
from mnist_gan.storage import save_torch, write_text

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    raw_root: Annotated[Path, typer.Argument(help="Folder holding MNIST/raw/ (torchvision's layout).")],
    out: Annotated[Path, typer.Argument(help="Classifier weights file to write.")],
    metrics: Annotated[Path, typer.Option(help="Where the test accuracy goes.")] = Path(
        "results/classifier/metrics.json"
    ),
    epochs: Annotated[int, setting_option("classifier.epochs")] = P.classifier.epochs,
    max_train_images: Annotated[int, setting_option("classifier.max_train_images")] = P.classifier.max_train_images,
    min_accuracy: Annotated[float, setting_option("classifier.min_accuracy")] = P.classifier.min_accuracy,
    device: DeviceOption = "auto",
):
    """Train on the 60,000 real training images, measure accuracy on the 10,000 test images."""
    dev = stage_device(device)
    precision = resolve_precision(P.classifier.precision, dev)
    cfg = replace(P.classifier, epochs=epochs, max_train_images=max_train_images, precision=precision)
    say = lambda e, loss: typer.echo(f"classifier epoch {e}/{epochs} ({precision}): loss {loss:.4f}")  # noqa: E731
    model = train_classifier(*load_split(raw_root, train=True), cfg, dev, on_epoch=say)
    accuracy = test_accuracy(model, *load_split(raw_root, train=False))
    write_text(metrics, json.dumps({"test_accuracy": accuracy}, indent=2) + "\n")
    typer.echo(f"classifier: test accuracy {accuracy:.4f}")
    require_accuracy(accuracy, min_accuracy)
    save_torch(classifier_file(model), out)


if __name__ == "__main__":
    run(app)
