"""The `mnist-gan` console script: the commands that are not pipeline stages.

    mnist-gan serve --model models/generator.onnx     # the digit server (serving/server.py), no torch
    mnist-gan compare [REV ...] --out reports/compare.html   # one offline page over experiments (compare.py)
    mnist-gan sweep -S lr=0.0001,0.0002 [--address HOST:PORT]   # a grid of `dvc exp run` trials on Ray (sweep/)
    mnist-gan release --version v1.2.0 --stage prod --push   # a version of the weights as GTO tags (release.py)
    mnist-gan promote v1.1.0 --stage prod --push             # move a stage to a version released before

Each command imports its module only when it runs, so `serve` works in the slim install (no torch, no DVC).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def needs(parser: argparse.ArgumentParser, extra: str, module: str) -> None:
    """A command whose libraries are an extra of the package: one line when they are not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        parser.exit(1, f"error: this command needs {module}: pip install -e '.[{extra}]'\n")


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    needs(parser, "serve", "fastapi")
    from mnist_gan.errors import PipelineError
    from mnist_gan.serving.server import run_server

    try:
        run_server(args.model, args.host, args.port, args.workers, args.threads)
    except PipelineError as e:  # ServeError: exit code 2
        parser.exit(e.exit_code, f"error: {e}\n")


def _compare(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from mnist_gan.errors import PipelineError
    from mnist_gan.outputs.compare import write_comparison

    try:
        shown, problems = write_comparison(args.repo, args.revisions, args.out)
    except PipelineError as e:  # NothingToCompare: exit code 2
        parser.exit(e.exit_code, f"error: {e}\n")
    except OSError as e:
        parser.exit(1, f"error: {e}\n")
    for line in problems:
        print(f"warning: {line}", file=sys.stderr)
    print(f"compare: {shown} revision(s) -> {args.out} and {args.out.with_suffix('.md')}")


def _sweep(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    needs(parser, "sweep", "ray")
    from mnist_gan.errors import PipelineError
    from mnist_gan.sweep.driver import SweepOptions, run_sweep

    options = SweepOptions(
        settings=args.set_param,
        repo=args.repo,
        name=args.name,
        address=args.address,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        git_remote=args.git_remote,
        dvc_remote=args.dvc_remote,
        shared_storage=args.shared_storage,
        dry_run=args.dry_run,
        retries=args.retries,
        report=args.report,
        stages=tuple(args.stage),
    )
    try:
        code = run_sweep(options)
    except PipelineError as e:  # SweepError: exit code 2
        parser.exit(e.exit_code, f"error: {e}\n")
    sys.exit(code)


def _release(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from mnist_gan.errors import PipelineError
    from mnist_gan.release import Release, release

    options = Release(args.repo, args.version, args.bump, args.stage, args.push, args.git_remote)
    try:
        tags = release(options)
    except PipelineError as e:  # ReleaseError: exit code 2
        parser.exit(e.exit_code, f"error: {e}\n")
    where = f", pushed to {args.git_remote}" if args.push else f" (push: git push {args.git_remote} --tags)"
    print(f"release: {', '.join(tags)}{where}")


def _promote(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from mnist_gan.errors import PipelineError
    from mnist_gan.release import promote

    try:
        tags = promote(args.repo, args.version, args.stage, args.git_remote if args.push else None)
    except PipelineError as e:
        parser.exit(e.exit_code, f"error: {e}\n")
    if not tags:
        print(f"promote: {args.stage} is {args.version} already; nothing tagged")
        return
    print(f"promote: {', '.join(tags)}" + (f", pushed to {args.git_remote}" if args.push else ""))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mnist-gan", description="mnist-gan commands that are not pipeline stages.")
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="Serve the exported ONNX generator over HTTP (a page and a PNG API).")
    serve.add_argument("--model", type=Path, default=Path("models/generator.onnx"), help="the export stage's ONNX file")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--threads", type=int, default=1, help="onnxruntime threads per request")
    serve.set_defaults(run=_serve)
    compare = commands.add_parser(
        "compare",
        help="Compare experiments on one offline page: differing params, key metrics, grids, curves.",
        description="Reads every revision through DVC, never checking one out; writes a self-contained HTML page "
        "and its Markdown twin.",
    )
    compare.add_argument(
        "revisions",
        nargs="*",
        help="experiment names, branches, tags, commits or `workspace` (default: every experiment of HEAD)",
    )
    compare.add_argument(
        "--out",
        type=Path,
        default=Path("reports/compare.html"),
        help="HTML page to write; the Markdown twin goes beside it (.md)",
    )
    compare.add_argument("--repo", type=Path, default=Path("."), help="the DVC project")
    compare.set_defaults(run=_compare)
    sweep = commands.add_parser(
        "sweep",
        help="Run a grid of `dvc exp run` trials as Ray tasks, here or on a cluster, and pull the results.",
        description="Each trial clones the swept commit, runs `dvc exp run --pull -S ...` and `dvc exp push`es the "
        "experiment; the finished ones are pulled into this clone (`dvc exp show`, `mnist-gan compare`).",
    )
    sweep.add_argument(
        "-S",
        "--set-param",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="as `dvc exp run --queue -S`: a comma list sweeps a key, several keys make a grid",
    )
    sweep.add_argument("--name", help="experiments are NAME-1, NAME-2, ... (default: sweep-<date>-<time>)")
    sweep.add_argument("--address", metavar="HOST:PORT", help="a running Ray cluster (default: one on this machine)")
    sweep.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray CPUs per trial, also its torch threads")
    sweep.add_argument("--gpus-per-trial", type=float, default=0.0, help="Ray GPUs per trial (CUDA_VISIBLE_DEVICES)")
    sweep.add_argument("--git-remote", help="git remote name or URL every node reaches (default: this repo)")
    sweep.add_argument("--dvc-remote", help="DVC remote every node reaches (default: the project's default remote)")
    sweep.add_argument(
        "--shared-storage",
        action="store_true",
        help="the DVC remote is a folder every node of the cluster sees (NFS, ...)",
    )
    sweep.add_argument("--retries", type=int, default=3, help="reruns of a trial whose node or worker dies")
    sweep.add_argument(
        "--stage",
        action="append",
        default=[],
        help="reproduce only this stage (and what it "
        "needs) in each trial, as `dvc exp run STAGE`; repeatable (default: the whole pipeline)",
    )
    sweep.add_argument("--dry-run", action="store_true", help="print the trials and exit")
    sweep.add_argument("--report", type=Path, help="also write every trial's result (node, time, metrics) as JSON")
    sweep.add_argument("--repo", type=Path, default=Path("."), help="the DVC project")
    sweep.set_defaults(run=_sweep)
    release = commands.add_parser(
        "release",
        help="Register the commit's generator files as a version (GTO tags), after checking a consumer can fetch them.",
        description="Refuses (exit code 2) uncommitted changes, a pipeline out of date, outputs not in the DVC "
        "remote and a missing git remote; every tag's message carries the evaluate stage's metrics. Consumers: "
        "`dvc artifacts get URL generator --stage prod` (docs/remote.md).",
    )
    version = release.add_mutually_exclusive_group()
    version.add_argument("--version", help="semantic version, e.g. v1.2.0 (default: the next patch)")
    version.add_argument("--bump", choices=("major", "minor", "patch"), help="bump the latest version")
    release.add_argument("--stage", help="also assign this stage to the new version, e.g. prod")
    release.add_argument("--push", action="store_true", help="push the new tags to --git-remote")
    release.add_argument("--git-remote", default="origin", help="where consumers find the tags (default origin)")
    release.add_argument("--repo", type=Path, default=Path("."), help="the DVC project")
    release.set_defaults(run=_release)
    promote = commands.add_parser("promote", help="Assign a stage (e.g. prod) to a version released before.")
    promote.add_argument("version", help="a released version, e.g. v1.1.0")
    promote.add_argument("--stage", required=True, help="the stage to assign, e.g. prod")
    promote.add_argument("--push", action="store_true", help="push the new tags to --git-remote")
    promote.add_argument("--git-remote", default="origin", help="where consumers find the tags (default origin)")
    promote.add_argument("--repo", type=Path, default=Path("."), help="the DVC project")
    promote.set_defaults(run=_promote)
    return top


def main(argv: list[str] | None = None) -> None:
    top = parser()
    args = top.parse_args(argv)
    try:
        args.run(top, args)
    except KeyboardInterrupt as e:  # Ctrl-C; the sweep also turns SIGTERM into one (sweep.driver.Interrupted)
        signum = getattr(e, "signum", signal.SIGINT)
        why = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        top.exit(128 + signum, f"error: interrupted ({why})\n")


if __name__ == "__main__":
    main()
