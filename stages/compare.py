"""Compare experiments on one offline page: differing params, key metrics, sample grids, training curves.

Not a DVC stage (it spans revisions). Reads every revision through DVC, never checking one out:
    python -m stages.compare                       # every experiment of the current commit
    python -m stages.compare exp-a exp-b main workspace --out reports/compare.html
"""

from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.cli import fail, run
from mnist_gan.compare import build_page, experiments_of_head, load, local_experiments, resolve

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    revisions: Annotated[list[str] | None, typer.Argument(help="Experiment names, branches, tags, commits or "
                                                               "`workspace` (default: all experiments of HEAD).")]
    = None,
    out: Annotated[Path, typer.Option(help="HTML page to write; the Markdown twin goes beside it (.md).")]
    = Path("reports/compare.html"),
    repo: Annotated[Path, typer.Option(help="The DVC project.")] = Path("."),
):
    """Write a self-contained HTML page (and its Markdown twin) comparing the revisions."""
    known = dict(experiments_of_head(repo))
    found, unknown = resolve(repo, revisions or list(known), known)
    problems = [f"{name}: unknown revision (not an experiment of HEAD, a branch, a tag or a commit; "
                f"`dvc exp pull origin {name}` if it is someone else's experiment)" for name in unknown]
    if not found:
        fail("no revisions to compare" + (f": {problems[0]}" if problems else
                                          " (no experiments of HEAD; run `dvc exp run` or name revisions)"), code=2)
    experiments = {**known, **local_experiments(repo)}
    loaded = [load(repo, r, experiment=r.name in experiments) for r in found]
    problems += [r.problem for r in loaded if r.problem]
    for line in problems:
        typer.echo(f"warning: {line}", err=True)
    build_page(loaded, problems).write(out.parent, stem=out.stem)
    typer.echo(f"compare: {len(loaded)} revision(s) -> {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    run(app)
