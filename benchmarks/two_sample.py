"""How the two-sample test's reading depends on how long its network trains: the floor (real training against real
test digits) and a generator's samples, at several `two_sample.epochs` (and widths), with the seconds each took.

    python -m benchmarks.two_sample models/generator.pt --epochs 4,6,12,20
    python -m benchmarks.two_sample models/generator.pt --epochs 12 --width 16,32 --seed 0,1

The samples are the evaluate stage's (`evaluate.n_samples` from `evaluate.seed`, class-balanced when conditional,
stored as uint8); the other settings come from params.yaml's `two_sample:`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help=__doc__)


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


@app.command()
def main(
    weights: Annotated[Path, typer.Argument(help="Generator weights file.")],
    epochs: Annotated[str, typer.Option(help="Comma list of two_sample.epochs.")] = "4,6,12,20",
    width: Annotated[str, typer.Option(help="Comma list of two_sample.width (default: params.yaml's).")] = "",
    seed: Annotated[str, typer.Option(help="Comma list of two_sample.seed (default: params.yaml's).")] = "",
    raw_root: Annotated[Path, typer.Option(help="Folder holding MNIST/raw/.")] = Path("data/raw"),
):
    """Print one line per setting: the floor's accuracy and the samples', and the seconds of each test."""
    import torch

    from mnist_gan.data.mnist import load_split
    from mnist_gan.data.pixels import to_uint8
    from mnist_gan.evaluation.two_sample import real_floor, two_sample_test
    from mnist_gan.gan.models import asks_digits
    from mnist_gan.gan.sampling import balanced_labels, generate, load_generator
    from mnist_gan.runtime import cpu_class, set_cpu_threads
    from mnist_gan.settings.params import load_params

    set_cpu_threads(None)
    p = load_params()
    train, test = load_split(raw_root, train=True), load_split(raw_root, train=False)
    generator = load_generator(weights)
    n = p.evaluate.n_samples
    labels = balanced_labels(n, generator.cfg.num_classes) if asks_digits(generator.cfg) else None
    samples = to_uint8(generate(generator, n, p.evaluate.seed, labels))
    c = cpu_class()
    typer.echo(
        f"{weights}; {c['cores']}-core {c['cpu']} family {c.get('family')}, {c['capability']}, torch threads "
        f"{torch.get_num_threads()}"
    )
    widths = numbers(width) if width else [p.two_sample.width]
    seeds = numbers(seed) if seed else [p.two_sample.seed]
    for w in widths:
        for s in seeds:
            for e in numbers(epochs):
                cfg = replace(p.two_sample, epochs=e, width=w, seed=s)
                t = time.perf_counter()
                floor = real_floor(train, test, cfg, "cpu").accuracy
                floor_s, t = time.perf_counter() - t, time.perf_counter()
                gen = two_sample_test(test[0], samples, cfg, test[1], labels).accuracy
                typer.echo(
                    f"width {w}, epochs {e:>2}, seed {s}: floor {floor:.3f} ({floor_s:.1f} s), "
                    f"samples {gen:.3f} ({time.perf_counter() - t:.1f} s)"
                )


if __name__ == "__main__":
    app()
