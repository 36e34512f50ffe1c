"""The `mnist-gan` console script: the commands that are not pipeline stages, one Typer app.

    mnist-gan sample --weights generator.pt --digit 7     # images from a generator file, anywhere (no project needed)
    mnist-gan serve --model models/generator.onnx         # the digit server (serving/server.py), no torch
    mnist-gan compare [REV ...] --out reports/compare.html   # one offline page over experiments (compare.py)
    mnist-gan sweep -S lr=0.0001,0.0002 [--address HOST:PORT]   # a grid of `dvc exp run` trials on Ray (sweep/)
    mnist-gan release --version v1.2.0 --stage prod --push   # a version of the weights as GTO tags (release.py)
    mnist-gan promote v1.1.0 --stage prod --push             # move a stage to a version released before

Each command imports its module only when it runs, so `serve` works in the slim install (no torch, no DVC). Errors
are one line and an exit code (console.py), as in the stages.
"""

from __future__ import annotations

import importlib.util
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mnist_gan import console
from mnist_gan.settings.configs import SampleConfig

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="mnist-gan commands that are not pipeline stages (those are `dvc repro`'s).",
)
# `mnist-gan sample`'s defaults: the committed params.yaml's sample section (tests/test_commands.py keeps them equal),
# so a consumer with no project draws what the project's sample stage draws
SAMPLE = SampleConfig(n_images=100, seed=0, nrow=10)
Repo = Annotated[Path, typer.Option(help="The DVC project.")]
GitRemote = Annotated[str, typer.Option(help="Where consumers find the tags.")]
Push = Annotated[bool, typer.Option(help="Push the new tags to --git-remote.")]


class Bump(str, Enum):
    major = "major"
    minor = "minor"
    patch = "patch"


def needs(extra: str, module: str) -> None:
    """A command whose libraries are an extra of the package: one line when they are not installed."""
    if importlib.util.find_spec(module) is None:
        console.fail(f"this command needs {module}: pip install 'mnist-gan[{extra}]'")


def _digits(text: str | None) -> list[int] | None:
    from mnist_gan.gan.sampling import parse_digits

    try:
        return parse_digits(text)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


@app.command()
def sample(
    weights: Annotated[Path, typer.Option(help="Generator weights file (generator.pt).")] = Path("generator.pt"),
    out: Annotated[Path, typer.Option(help="Grid PNG to write; the figure, tensor and strip go beside it.")] = Path(
        "samples.png"
    ),
    n: Annotated[int, console.setting_option("sample.n_images")] = SAMPLE.n_images,
    digit: Annotated[
        str | None,
        typer.Option(help="Conditional generators: 7, 0,3,9 or all (a row per digit).", callback=_digits),
    ] = None,
    seed: Annotated[int, console.setting_option("sample.seed")] = SAMPLE.seed,
    nrow: Annotated[int, console.setting_option("sample.nrow")] = SAMPLE.nrow,
    device: Annotated[str, typer.Option(help="auto (cuda, mps, cpu) | cpu | cuda | mps.")] = "auto",
):
    """Draw images from a generator file, in any folder: `dvc artifacts get ... generator` is enough.

    The config inside the file rebuilds the network: no params.yaml, no clone. The defaults are the project's sample
    settings."""
    from mnist_gan.gan.sampling import NoDigits
    from mnist_gan.outputs.samples import sample_weights
    from mnist_gan.runtime import pick_device

    try:
        drawn, written = sample_weights(weights, out, n, digit, seed, nrow, pick_device(device))
    except NoDigits as e:
        raise typer.BadParameter(str(e), param_hint="--digit") from None
    typer.echo(f"sample: {drawn} images -> {', '.join(map(str, written))}")


@app.command()
def serve(
    model: Annotated[Path, typer.Option(help="The export stage's ONNX file.")] = Path("models/generator.onnx"),
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="onnxruntime threads per request.")] = 1,
):
    """Serve the exported ONNX generator over HTTP (a page and a PNG API)."""
    needs("serve", "fastapi")
    from mnist_gan.serving.server import run_server

    run_server(model, host, port, workers, threads)


@app.command()
def compare(
    revisions: Annotated[
        list[str] | None,
        typer.Argument(help="Experiment names, branches, tags, commits or `workspace` (default: HEAD's experiments)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="HTML page to write; its Markdown twin goes beside it (.md).")] = Path(
        "reports/compare.html"
    ),
    repo: Repo = Path("."),
):
    """Compare experiments on one offline page: differing params, key metrics, grids, curves.

    Reads every revision through DVC, never checking one out."""
    from mnist_gan.outputs.compare import write_comparison

    shown, problems = write_comparison(repo, revisions or [], out)
    for line in problems:
        typer.echo(f"warning: {line}", err=True)
    typer.echo(f"compare: {shown} revision(s) -> {out} and {out.with_suffix('.md')}")


@app.command()
def sweep(
    set_param: Annotated[
        list[str] | None,
        typer.Option(
            "-S",
            "--set-param",
            metavar="KEY=V1,V2",
            help="As `dvc exp run --queue -S`: a comma list sweeps a key, several keys make a grid.",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Experiments are NAME-1, NAME-2, ... (default: sweep-<time>).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(metavar="HOST:PORT", help="A running Ray cluster (default: one on this machine).")
    ] = None,
    cpus_per_trial: Annotated[float, typer.Option(min=0, help="Ray CPUs per trial, also its torch threads.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(min=0, help="Ray GPUs per trial (CUDA_VISIBLE_DEVICES).")] = 0.0,
    git_remote: Annotated[
        str | None, typer.Option(help="Git remote name or URL every node reaches (default: this repo).")
    ] = None,
    dvc_remote: Annotated[
        str | None, typer.Option(help="DVC remote every node reaches (default: the project's default remote).")
    ] = None,
    shared_storage: Annotated[
        bool, typer.Option(help="The DVC remote is a folder every node of the cluster sees (NFS, ...).")
    ] = False,
    retries: Annotated[int, typer.Option(min=0, help="Reruns of a trial whose node or worker dies.")] = 3,
    stage: Annotated[
        list[str] | None,
        typer.Option(help="Reproduce only this stage (and what it needs) in each trial; repeatable (default: all)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the trials and exit.")] = False,
    report: Annotated[Path | None, typer.Option(help="Also write every trial's result (node, time, metrics).")] = None,
    repo: Repo = Path("."),
):
    """Run a grid of `dvc exp run` trials as Ray tasks, here or on a cluster, and pull the results.

    Each trial clones the swept commit, runs `dvc exp run --pull -S ...` and `dvc exp push`es the experiment; Ctrl-C
    or SIGTERM stops every running trial on its node and keeps those that landed (docs/sweeps.md)."""
    needs("sweep", "ray")
    from mnist_gan.sweep.driver import SweepOptions, run_sweep

    options = SweepOptions(
        settings=set_param or [],
        repo=repo,
        name=name,
        address=address,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        git_remote=git_remote,
        dvc_remote=dvc_remote,
        shared_storage=shared_storage,
        dry_run=dry_run,
        retries=retries,
        report=report,
        stages=tuple(stage or ()),
    )
    try:
        code = run_sweep(options)
    except KeyboardInterrupt as e:  # before the trials ran (Typer would call a SIGTERM Ctrl-C)
        signum = getattr(e, "signum", signal.SIGINT)
        console.fail(console.interrupted(signum), code=128 + signum)
    sys.exit(code)  # not typer.Exit: Typer's 130 means a Ctrl-C it caught, and the sweep has said its own line


@app.command()
def release(
    version: Annotated[
        str | None, typer.Option(help="Semantic version, e.g. v1.2.0 (default: the next patch).")
    ] = None,
    bump: Annotated[Bump | None, typer.Option(help="Bump the latest version.")] = None,
    stage: Annotated[str | None, typer.Option(help="Also assign this stage to the new version, e.g. prod.")] = None,
    push: Push = False,
    git_remote: GitRemote = "origin",
    repo: Repo = Path("."),
):
    """Register the commit's generator files as a version (GTO tags), after checking a consumer can fetch them.

    Refuses (exit code 2) uncommitted changes, a pipeline out of date, outputs not in the DVC remote, a git remote a
    consumer could not resolve a version from; every tag's message carries the evaluate stage's metrics. Consumers:
    `dvc artifacts get URL generator --stage prod` (docs/remote.md)."""
    from mnist_gan.release import Release
    from mnist_gan.release import release as register

    tags = register(Release(repo, version, bump.value if bump else None, stage, push, git_remote))
    where = f", pushed to {git_remote}" if push else f" (push: git push {git_remote} --tags)"
    typer.echo(f"release: {', '.join(tags)}{where}")


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="A released version, e.g. v1.1.0.")],
    stage: Annotated[str, typer.Option(help="The stage to assign, e.g. prod.")],
    push: Push = False,
    git_remote: GitRemote = "origin",
    repo: Repo = Path("."),
):
    """Assign a stage (e.g. prod) to a version released before."""
    from mnist_gan.release import promote as assign

    tags = assign(repo, version, stage, git_remote if push else None)
    if not tags:
        typer.echo(f"promote: {stage} is {version} already; nothing tagged")
        return
    typer.echo(f"promote: {', '.join(tags)}" + (f", pushed to {git_remote}" if push else ""))


def main(argv: list[str] | None = None) -> None:
    console.run(app, argv, prog_name="mnist-gan")


if __name__ == "__main__":
    main()
