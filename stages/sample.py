"""Draw images from a trained generator: a grid PNG, a labelled matplotlib figure and a tensor file.

Works outside DVC too, on a pulled generator alone:
    python -m stages.sample --weights models/generator.pt --n 64 --out grid.png
"""

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.cli import checked, params_or_exit, run
from mnist_gan.data import to_uint8
from mnist_gan.report import image_grid, sample_figure, save_figure, save_png
from mnist_gan.sampling import generate, load_generator
from mnist_gan.storage import save_torch
from mnist_gan.utils import pick_device

P = params_or_exit()["sample"]
app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    weights: Annotated[Path, typer.Option(help="Generator weights file.")] = Path("models/generator.pt"),
    out: Annotated[Path, typer.Option(help="Grid PNG to write; the figure and tensor go beside it.")]
    = Path("results/sample/grid.png"),
    n: Annotated[int, typer.Option(help="How many images.", callback=checked("sample.n_images"))]
    = P["n_images"],
    seed: Annotated[int, typer.Option(help="Seed of the noise.", callback=checked("sample.seed"))] = P["seed"],
    nrow: Annotated[int, typer.Option(help="Images per grid row.", callback=checked("sample.nrow"))] = P["nrow"],
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | mps; not a DVC param.")] = "auto",
):
    """Sample `n` images from the generator with a fixed seed."""
    generator = load_generator(weights, pick_device(device))
    images = generate(generator, n, seed)
    save_png(image_grid(images, nrow=nrow), out)
    figure = out.with_name(out.stem + "_figure.png")
    save_figure(sample_figure(images[:64], f"{generator.cfg.model}: {n} samples, seed {seed}"), figure)
    tensor = out.with_name(out.stem + ".pt")
    save_torch({"images": to_uint8(images), "seed": seed, "config": asdict(generator.cfg)}, tensor)
    typer.echo(f"sample: {n} images -> {out}, {figure}, {tensor}")


if __name__ == "__main__":
    run(app)
