"""Draw images from a trained generator: a grid PNG, a labelled matplotlib figure, a tensor file and an
interpolation strip.

Works outside DVC too, on a pulled generator alone:
    python -m stages.sample --weights models/generator.pt --n 64 --out grid.png
    python -m stages.sample --weights models/generator.pt --digit 7 --n 16 --out sevens.png   # conditional G
"""

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import torch
import typer

from mnist_gan.data.pixels import to_uint8
from mnist_gan.gan.models import asks_digits
from mnist_gan.gan.sampling import balanced_labels, generate, interpolation, load_generator
from mnist_gan.outputs.figures import sample_figure, save_figure
from mnist_gan.outputs.images import image_grid, save_png
from mnist_gan.runtime import pick_device
from mnist_gan.stage import DeviceOption, params_or_exit, run, setting_option
from mnist_gan.storage import save_torch

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)


def parse_digits(value: str | None) -> list[int] | None:
    """--digit 7 | 0,3,9 | all -> [7] | [0, 3, 9] | [0..9]; anything else is a usage error."""
    if value is None:
        return None
    if value.strip() == "all":
        return list(range(10))
    try:
        digits = [int(part) for part in value.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a digit list; expected e.g. 7, 0,3,9 or all") from None
    if not digits or any(not 0 <= d <= 9 for d in digits):
        raise typer.BadParameter(f"{value!r}: digits are 0 to 9")
    return digits


@app.command()
def main(
    weights: Annotated[Path, typer.Option(help="Generator weights file.")] = Path("models/generator.pt"),
    out: Annotated[Path, typer.Option(help="Grid PNG to write; the figure, tensor and strip go beside it.")] = Path(
        "results/sample/grid.png"
    ),
    n: Annotated[int, setting_option("sample.n_images")] = P.sample.n_images,
    digit: Annotated[
        str | None,
        typer.Option(help="Conditional generators: 7, 0,3,9 or all (a row per digit).", callback=parse_digits),
    ] = None,
    seed: Annotated[int, setting_option("sample.seed")] = P.sample.seed,
    nrow: Annotated[int, setting_option("sample.nrow")] = P.sample.nrow,
    device: DeviceOption = "auto",
):
    """Sample `n` images from the generator with a fixed seed (a conditional one: class-balanced, or --digit)."""
    generator = load_generator(weights, pick_device(device))
    digits = asks_digits(generator.cfg)
    if digit is not None and not digits:
        kind = (
            f" (self-conditioned on {generator.cfg.num_classes} clusters, not digits)"
            if generator.cfg.num_classes
            else ""
        )
        raise typer.BadParameter(
            f"{weights} holds an unconditional generator{kind}; --digit needs one trained with conditional: true",
            param_hint="--digit",
        )
    labels = None
    if digit is not None:
        labels = torch.tensor(digit).repeat_interleave(n)
        nrow = n if len(digit) > 1 else nrow
    elif digits:
        labels = balanced_labels(n, generator.cfg.num_classes)
    images = generate(generator, len(labels) if labels is not None else n, seed, labels)
    save_png(image_grid(images, nrow=nrow), out)
    figure = out.with_name(out.stem + "_figure.png")
    titles = [str(int(d)) for d in labels[:64]] if labels is not None else None
    save_figure(
        sample_figure(images[:64], f"{generator.cfg.model}: {len(images)} samples, seed {seed}", titles), figure
    )
    strip = out.with_name(out.stem + "_interpolation.png")
    save_png(image_grid(interpolation(generator, seed), nrow=10), strip)
    tensor = out.with_name(out.stem + ".pt")
    save_torch({"images": to_uint8(images), "labels": labels, "seed": seed, "config": asdict(generator.cfg)}, tensor)
    typer.echo(f"sample: {len(images)} images -> {out}, {figure}, {strip}, {tensor}")


if __name__ == "__main__":
    run(app)
