"""The `mnist-gan` console script: the commands that are not pipeline stages.

    mnist-gan serve --model models/generator.onnx     # the digit server (serve.py), no torch imported
    mnist-gan compare [REV ...] --out reports/compare.html   # one offline page over experiments (compare.py)

Each command imports its module only when it runs, so `serve` works in the slim install (no torch, no DVC).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from mnist_gan.serving.server import ServeError, run_server

    try:
        run_server(args.model, args.host, args.port, args.workers, args.threads)
    except ServeError as e:
        parser.exit(2, f"error: {e}\n")


def _compare(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from mnist_gan.errors import PipelineError
    from mnist_gan.outputs.compare import NothingToCompare, write_comparison

    try:
        shown, problems = write_comparison(args.repo, args.revisions, args.out)
    except NothingToCompare as e:
        parser.exit(2, f"error: {e}\n")
    except (PipelineError, OSError) as e:
        parser.exit(1, f"error: {e}\n")
    for line in problems:
        print(f"warning: {line}", file=sys.stderr)
    print(f"compare: {shown} revision(s) -> {args.out} and {args.out.with_suffix('.md')}")


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
    return top


def main(argv: list[str] | None = None) -> None:
    top = parser()
    args = top.parse_args(argv)
    try:
        args.run(top, args)
    except KeyboardInterrupt:
        top.exit(130, "error: interrupted (Ctrl-C)\n")


if __name__ == "__main__":
    main()
