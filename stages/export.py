"""Export the generator for use anywhere: safetensors and ONNX (checked by onnxruntime) with a model card.

Reads the trained generator and never trains: the export reruns when generator.pt, its evaluation or the
sample grid change. Writes models/generator.safetensors, models/generator.onnx, models/MODEL_CARD.md and
models/samples.png: the folder a model hub takes as is.
"""

import json
from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.outputs.export import export_generator
from mnist_gan.runtime import set_cpu_threads
from mnist_gan.stage import require, run

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
    scores = json.loads(require(metrics, "evaluate").read_text())
    typer.echo(f"export: {export_generator(weights, scores, require(grid, 'sample'), out_dir)}")


if __name__ == "__main__":
    run(app)
