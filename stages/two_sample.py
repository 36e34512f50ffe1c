"""The two-sample test's floor: its network told to tell real training digits from real test digits.

It reads the raw data and its own params only, so every GAN experiment reuses it; the evaluate stage runs the same
test on the samples and shows this floor beside them.
"""

import json
from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.data.mnist import load_split
from mnist_gan.evaluation.two_sample import real_floor
from mnist_gan.runtime import stage_device
from mnist_gan.stage import DeviceOption, params_or_exit, run
from mnist_gan.storage import write_text

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    raw_root: Annotated[Path, typer.Argument(help="Folder holding MNIST/raw/ (torchvision's layout).")],
    out: Annotated[Path, typer.Argument(help="metrics.json to write: the floor's accuracy, overall and per digit.")],
    device: DeviceOption = "auto",
):
    """Train the two-sample test's network on half of 10,000 real training and 10,000 real test digits; write its
    held-out accuracy (0.5 = indistinguishable)."""
    train, test = load_split(raw_root, train=True), load_split(raw_root, train=False)
    result = real_floor(train, test, P.two_sample, stage_device(device))
    write_text(out, json.dumps(result.metrics(), indent=2) + "\n")
    typer.echo(f"two_sample: real training against real test digits, accuracy {result.accuracy:.4f}")


if __name__ == "__main__":
    run(app)
