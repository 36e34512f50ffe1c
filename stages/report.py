"""Write reports/report.html (self-contained) and reports/report.md: params, metrics, curves, samples."""

from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.outputs.report import build_report
from mnist_gan.stage import params_or_exit, run

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    train_dir: Annotated[Path, typer.Argument(help="The train stage's DVCLive folder.")],
    sample_dir: Annotated[Path, typer.Argument(help="The sample stage's folder (grid.png).")],
    eval_dir: Annotated[Path, typer.Argument(help="The evaluate stage's folder (metrics.json, images).")],
    out_dir: Annotated[Path, typer.Argument(help="Where report.html, report.md and assets/ go.")],
):
    """Assemble the run's report from the outputs of the earlier stages."""
    page = build_report(P, train_dir, sample_dir, eval_dir)
    page.write(out_dir)
    typer.echo(f"report: {out_dir / 'report.html'} and {out_dir / 'report.md'} ({len(page.assets)} images)")


if __name__ == "__main__":
    run(app)
