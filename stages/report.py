"""Write reports/report.html (self-contained) and reports/report.md: params, metrics, curves, samples."""

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from mnist_gan.cli import checked, params_or_exit, run
from mnist_gan.report import Page, curves_figure, epoch_grids, figure_bytes, gif_bytes
from mnist_gan.storage import PipelineError

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise PipelineError(f"{path} does not exist; run the stage that writes it first (dvc repro)")
    return json.loads(path.read_text())


@app.command()
def main(
    train_dir: Annotated[Path, typer.Argument(help="The train stage's DVCLive folder.")],
    sample_dir: Annotated[Path, typer.Argument(help="The sample stage's folder (grid.png).")],
    out_dir: Annotated[Path, typer.Argument(help="Where report.html, report.md and assets/ go.")],
    baseline: Annotated[str, typer.Option(help="Git revision whose metrics stand beside these.",
                                          callback=checked("report.baseline"))] = P["report"]["baseline"],
):
    """Assemble the run's report from the outputs of the earlier stages."""
    train = read_json(train_dir / "metrics.json")
    grid = sample_dir / "grid.png"
    if not grid.is_file():
        raise PipelineError(f"{grid} does not exist; run the sample stage first (dvc repro)")
    page = Page(f"mnist-gan: {P['model']}, {P['epochs']} epoch(s), lr {P['lr']:g}")

    page.heading("Training")
    page.table(["metric", "final epoch"], [[k, v] for k, v in train.get("epoch", {}).items()])
    page.image("curves.png", figure_bytes(curves_figure(train_dir)), "Losses and D outputs per logged step")

    page.heading("Samples")
    page.image("samples.png", grid.read_bytes(), f"{P['sample']['n_images']} samples, seed {P['sample']['seed']}")
    frames = epoch_grids(train_dir)
    if frames:
        page.image("fixed_noise.gif", gif_bytes(frames), "The same 16 noise vectors after each epoch (animated)")
        for i, frame in enumerate(frames, 1):
            page.image(f"epoch_{i:03d}.png", frame.read_bytes(), f"epoch {i}", width=120)

    page.heading("Params")
    page.paragraph("params.yaml as used by this run:")
    flat = {k: v for k, v in P.items() if not isinstance(v, dict)}
    sections = {f"{s}.{k}": v for s, d in P.items() if isinstance(d, dict) for k, v in d.items()}
    page.table(["param", "value"], [[k, yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()]
                                    for k, v in {**flat, **sections}.items()])
    page.write(out_dir)
    typer.echo(f"report: {out_dir / 'report.html'} and {out_dir / 'report.md'} ({len(page.assets)} images)")


if __name__ == "__main__":
    run(app)
