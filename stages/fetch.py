"""Fetch the raw MNIST idx files (torchvision's layout) and verify each against the original MD5."""

from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.data.mnist import fetch_raw
from mnist_gan.stage import params_or_exit, run, setting_option

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the four idx files, e.g. data/raw/MNIST/raw.")],
    source: Annotated[str, setting_option("fetch.source")] = P.fetch.source,
    timeout: Annotated[float, setting_option("fetch.timeout")] = P.fetch.timeout,
):
    """Fetch MNIST from `fetch.source`; the result is byte-identical whatever the source."""
    origin = fetch_raw(source, out_dir, timeout=timeout, log=typer.echo)
    typer.echo(f"fetch: 4 idx files in {out_dir}, MD5s verified (from {origin})")


if __name__ == "__main__":
    run(app)
