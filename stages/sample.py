"""Draw images from a trained generator: a grid PNG, a labelled matplotlib figure, a tensor file and an
interpolation strip.

In a project, outside DVC too: `python -m stages.sample --weights models/generator.pt --digit 7 --n 16 --out
sevens.png`. A fetched generator file alone, anywhere: `mnist-gan sample` (the same library call).
"""

from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.gan.sampling import NoDigits, parse_digits
from mnist_gan.outputs.samples import sample_weights
from mnist_gan.runtime import pick_device
from mnist_gan.stage import DeviceOption, params_or_exit, parsed, run, setting_option

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    weights: Annotated[Path, typer.Option(help="Generator weights file.")] = Path("models/generator.pt"),
    out: Annotated[Path, typer.Option(help="Grid PNG to write; the figure, tensor and strip go beside it.")] = Path(
        "results/sample/grid.png"
    ),
    n: Annotated[int, setting_option("sample.n_images")] = P.sample.n_images,
    digit: Annotated[
        str | None,
        typer.Option(help="Conditional generators: 7, 0,3,9 or all (a row per digit).", callback=parsed(parse_digits)),
    ] = None,
    seed: Annotated[int, setting_option("sample.seed")] = P.sample.seed,
    nrow: Annotated[int, setting_option("sample.nrow")] = P.sample.nrow,
    device: DeviceOption = "auto",
):
    """Sample `n` images from the generator with a fixed seed (a conditional one: class-balanced, or --digit)."""
    try:
        drawn, written = sample_weights(weights, out, n, digit, seed, nrow, pick_device(device))
    except NoDigits as e:
        raise typer.BadParameter(str(e), param_hint="--digit") from None
    typer.echo(f"sample: {drawn} images -> {', '.join(map(str, written))}")


if __name__ == "__main__":
    run(app)
