"""Which digits the evaluation's classifier misreads, as asked-for -> read: on each conditional generator's samples
(the evaluate stage's: `n` class-balanced at noise seed 1, so the count is its label accuracy's) and on MNIST's real
test digits, for contrast.

    python -m benchmarks.confusions models/generator.pt /tmp/pareto/pg32e56/models/generator.pt
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import torch
import typer

from mnist_gan.data.mnist import load_split
from mnist_gan.evaluation.classifier import load_classifier, predict
from mnist_gan.gan.models import asks_digits
from mnist_gan.gan.sampling import balanced_labels, generate, load_generator

app = typer.Typer(add_completion=False, help=__doc__)


def misreadings(probs: torch.Tensor, labels: torch.Tensor) -> Counter:
    """{(asked-for, read): count} of the images whose most probable class is not their label."""
    read = probs.argmax(1)
    wrong = read != labels
    return Counter(zip(labels[wrong].tolist(), read[wrong].tolist(), strict=True))


def line(name: str, probs: torch.Tensor, labels: torch.Tensor, most: int = 6) -> str:
    errors = misreadings(probs, labels)
    n, wrong = len(labels), sum(errors.values())
    pairs = ", ".join(f"{a} -> {b} {k}" for (a, b), k in errors.most_common(most))
    return f"{name}: {wrong} of {n:,} misread ({1 - wrong / n:.2%} read as asked); most: {pairs}"


@app.command()
def main(
    weights: Annotated[list[Path], typer.Argument(help="generator.pt files of conditional generators.")],
    n: Annotated[int, typer.Option(help="Samples per generator (the evaluate stage's n_samples).")] = 10000,
    seed: Annotated[int, typer.Option(help="Noise seed (the evaluate stage's).")] = 1,
    classifier: Annotated[Path, typer.Option(help="The evaluation's classifier.")] = Path("models/classifier.pt"),
    raw: Annotated[Path, typer.Option(help="Folder holding MNIST/raw/.")] = Path("data/raw"),
):
    """The classifier's misreadings of MNIST's real test digits, then of each generator's samples."""
    model = load_classifier(classifier)
    images, labels = load_split(raw, train=False)
    typer.echo(line("real test digits", predict(model, images)[1], labels))
    for path in weights:
        g = load_generator(path)
        if not asks_digits(g.cfg):
            raise typer.BadParameter(f"{path} is not conditional on the digit: its samples have no asked-for digit")
        asked = balanced_labels(n, g.cfg.num_classes)
        typer.echo(line(str(path), predict(model, generate(g, n, seed, asked))[1], asked))


if __name__ == "__main__":
    app()
