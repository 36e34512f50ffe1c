"""Whether the two-sample test has converged: the floor (real training against real test digits) and a generator's
samples, at several epoch budgets (`two_sample.max_epochs`), patiences and widths, each with its standard error, the
epoch it stopped at and the seconds it took.

    python -m benchmarks.two_sample models/generator.pt --max-epochs 50,100 --width 16,32
    python -m benchmarks.two_sample models/generator.pt --patience 5,10 --seed 0,1

The samples are the evaluate stage's (`evaluate.n_samples` from `evaluate.seed`, class-balanced when conditional,
stored as uint8); the other settings come from params.yaml's `two_sample:`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help=__doc__)


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


@app.command()
def main(
    weights: Annotated[Path, typer.Argument(help="Generator weights file.")],
    max_epochs: Annotated[str, typer.Option(help="Comma list of two_sample.max_epochs (default: params.yaml's).")] = "",
    patience: Annotated[str, typer.Option(help="Comma list of two_sample.patience (default: params.yaml's).")] = "",
    width: Annotated[str, typer.Option(help="Comma list of two_sample.width (default: params.yaml's).")] = "",
    seed: Annotated[str, typer.Option(help="Comma list of two_sample.seed (default: params.yaml's).")] = "",
    floor: Annotated[bool, typer.Option(help="Also measure the floor at each setting.")] = True,
    recentre: Annotated[
        bool, typer.Option(help="Shift each sample so its centre of mass sits at the centre, as MNIST's digits.")
    ] = False,
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
    if recentre:  # what the test reads without the samples' placement (benchmarks/centring.py)
        from benchmarks.centring import recentred

        samples = recentred(samples)
    c = cpu_class()
    typer.echo(
        f"{weights}; {c['cores']}-core {c['cpu']} family {c.get('family')}, {c['capability']}, torch threads "
        f"{torch.get_num_threads()}"
    )
    c2st = p.two_sample
    for w, s, e, pat in itertools.product(
        numbers(width) or [c2st.width],
        numbers(seed) or [c2st.seed],
        numbers(max_epochs) or [c2st.max_epochs],
        numbers(patience) or [c2st.patience],
    ):
        cfg = replace(c2st, max_epochs=e, patience=pat, width=w, seed=s)
        line = f"width {w}, max_epochs {e}, patience {pat}, seed {s}:"
        if floor:
            line += " floor " + timed(real_floor, train, test, cfg, "cpu")
        typer.echo(f"{line} samples {timed(two_sample_test, test[0], samples, cfg, test[1], labels)}")


def timed(test, *args) -> str:
    t = time.perf_counter()
    r = test(*args)
    return f"{r.accuracy:.3f} +- {r.se:.3f} (best epoch {r.epochs}, {time.perf_counter() - t:.0f} s)"


if __name__ == "__main__":
    app()
