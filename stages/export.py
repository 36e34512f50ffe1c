"""Export the generator for use anywhere: safetensors and ONNX (checked by onnxruntime) with a model card.

Reads the trained generator and never trains: the export reruns when generator.pt, its evaluation or the
sample grid change. Writes models/generator.safetensors, models/generator.onnx, models/MODEL_CARD.md and
models/samples.png: the folder a model hub takes as is.
"""

import json
from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.errors import PipelineError
from mnist_gan.gan.sampling import generate, load_generator
from mnist_gan.outputs.export import (
    CHECK_BATCHES,
    ONNX_TOLERANCE,
    check_onnx,
    export_onnx,
    git_revision,
    load_safetensors,
    metadata,
    save_safetensors,
)
from mnist_gan.outputs.model_card import render
from mnist_gan.runtime import set_cpu_threads
from mnist_gan.stage import require, run
from mnist_gan.storage import load_torch, write_bytes, write_text

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    weights: Annotated[Path, typer.Argument(help="Generator weights file (the train stage's generator.pt).")],
    metrics: Annotated[Path, typer.Argument(help="The evaluate stage's metrics.json (shown on the model card).")],
    grid: Annotated[Path, typer.Argument(help="The sample stage's grid PNG (shown on the model card).")],
    out_dir: Annotated[Path, typer.Argument(help="Where the exported files and the card go.")],
):
    """Write generator.safetensors, generator.onnx (checked against torch), MODEL_CARD.md and samples.png."""
    set_cpu_threads(None)
    require(metrics, "evaluate")
    require(grid, "sample")
    generator = load_generator(weights)  # the EMA generator, BN statistics recomputed, eval mode
    meta = metadata(load_torch(weights, "generator weights"), json.loads(metrics.read_text()), git_revision())

    safetensors_path = out_dir / "generator.safetensors"
    save_safetensors(generator, safetensors_path, meta)
    reloaded = load_safetensors(safetensors_path)
    if not generate(reloaded, 64, seed=0).equal(generate(generator, 64, seed=0)):
        raise PipelineError(f"{safetensors_path} does not reproduce the generator's samples bit for bit")

    onnx_path = out_dir / "generator.onnx"
    export_onnx(generator, onnx_path, meta)
    worst = check_onnx(onnx_path, generator)
    write_bytes(out_dir / "samples.png", grid.read_bytes())
    write_text(out_dir / "MODEL_CARD.md", render(meta))
    typer.echo(
        f"export: {safetensors_path} (samples bitwise equal after reload), {onnx_path} (onnxruntime vs torch: "
        f"max |diff| {worst:.2g} <= {ONNX_TOLERANCE:g} at batches {', '.join(map(str, CHECK_BATCHES))}), "
        f"{out_dir / 'MODEL_CARD.md'}"
    )


if __name__ == "__main__":
    run(app)
