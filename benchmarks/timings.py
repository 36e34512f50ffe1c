"""Wall times of whole commands (`make run`, `make test`, ...), one JSON line each in docs/timings.jsonl with the CPU
class they ran on and the commit: the source of every whole-pipeline and suite time the README and docs show.

    python -m benchmarks.timings record "make run" -- make run          # after `make clean-outputs`, alone
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python -m benchmarks.timings record "make run" -- make run

Run each alone on the machine: timings swing 15-25% from run to run, and two heavy jobs on 2 cores slow each other.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.runtime import cpu_class
from mnist_gan.vcs import git

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "timings.jsonl"
app = typer.Typer(add_completion=False, help=__doc__)


@app.callback()
def main() -> None:
    """Subcommands: record (more may come, e.g. a table)."""


@app.command()
def record(
    name: Annotated[str, typer.Argument(help='What is timed, as the docs name it ("make run").')],
    command: Annotated[list[str], typer.Argument(help="The command, after --.")],
    table: Annotated[Path, typer.Option(help="JSON-lines table to append to.")] = TABLE,
    note: Annotated[str, typer.Option(help='What else the reader should know (e.g. "from an empty cache").')] = "",
):
    """Run the command, time it, append a row (only when it succeeds)."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise typer.Exit(done.returncode)
    row = {
        "name": name,
        "command": " ".join(command),
        "wall_s": round(wall, 1),
        "date": datetime.date.today().isoformat(),
        "commit": git(ROOT, "rev-parse", "--short", "HEAD").stdout.strip(),
        "note": note,
        **cpu_class(),
    }
    with open(table, "a") as f:
        f.write(json.dumps(row) + "\n")
    typer.echo(f"{name}: {wall / 60:.1f} min")


if __name__ == "__main__":
    app()
