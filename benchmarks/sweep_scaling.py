"""The same 4-trial sweep (short runs of the tiny pipeline) on a Ray cluster of one worker node and of two, on
this machine: wall time of each, the per-trial overhead (clone, pull, push: everything but the stages' work) and
the ratio. Each node is a real `ray start` process of one CPU (harness/ray_cluster.py).

    python -m benchmarks.sweep_scaling                 # builds the tiny project in a temp folder first

The tiny project has tests/conftest.small_repo's settings: 512 training images, 1 epoch of batch 64 (8 steps), a
200-sample evaluation; a trial's time is then mostly overhead, which is what this measures.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
import yaml

from harness.ray_cluster import ENV, Cluster
from mnist_gan.settings.params import with_changes

ROOT = Path(__file__).resolve().parents[1]
DVC = [sys.executable, "-m", "dvc"]

app = typer.Typer(add_completion=False, help=__doc__)
SMALL = {
    "epochs": 1,
    "batch_size": 64,
    "normalize.max_train_images": 512,
    "sample.n_images": 16,
    "evaluate.n_samples": 200,
    "classifier.epochs": 1,
    "classifier.max_train_images": 4000,
    "classifier.min_accuracy": 0.9,
}


def run(cmd: list, cwd: Path) -> None:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env=ENV)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def tiny_project(root: Path) -> Path:
    """A clone of this checkout's HEAD (a sweep sees only committed files) with tiny params, reproduced, with a
    bare git remote and a shared DVC remote."""
    repo = root / "repo"
    run(["git", "clone", "-q", ROOT, repo], root)
    params = repo / "params.yaml"
    params.write_text(yaml.safe_dump(with_changes(yaml.safe_load(params.read_text()), SMALL), sort_keys=False))
    run(DVC + ["remote", "add", "-f", "-d", "shared", root / "dvc-storage"], repo)
    run(["git", "commit", "-qam", "tiny params, a shared DVC remote"], repo)
    run(DVC + ["repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "reproduced"], repo)
    run(["git", "init", "-q", "--bare", "-b", "main", root / "origin.git"], repo)
    run(["git", "remote", "set-url", "origin", root / "origin.git"], repo)
    run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], repo)
    return repo


def one_sweep(repo: Path, workers: int, name: str, report: Path) -> float:
    with Cluster(workers=workers) as cluster:
        start = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mnist_gan.cli",
                "sweep",
                "-S",
                "seed=1,2,3,4",
                "--name",
                name,
                "--address",
                cluster.address,
                "--git-remote",
                "origin",
                "--shared-storage",
                "--report",
                str(report),
            ],
            cwd=repo,
            env=ENV,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stdout[-3000:] + done.stderr[-2000:])
    return wall


@app.command()
def main(keep: Annotated[bool, typer.Option(help="Keep the temp folder.")] = False):
    """One worker node, then two: the same 4 trials; print the walls, the per-trial times and the ratio."""
    root = Path(tempfile.mkdtemp(prefix="mnist-gan-sweep-bench-"))
    repo = tiny_project(root)
    walls, trials = {}, {}
    for workers in (1, 2):
        report = root / f"report-{workers}.json"
        walls[workers] = one_sweep(repo, workers, f"bench{workers}", report)
        trials[workers] = json.loads(report.read_text())
        parts = {
            k: statistics.median(r["steps"].get(k, 0.0) for r in trials[workers])
            for k in ("clone", "pull", "run", "push")
        }
        typer.echo(
            f"{workers} worker node(s): sweep of 4 trials {walls[workers]:.0f} s; per trial (median): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in parts.items())
            + f"; overhead (clone + pull + push) {parts['clone'] + parts['pull'] + parts['push']:.1f} s"
        )
    typer.echo(f"ratio 1 node / 2 nodes: {walls[1] / walls[2]:.2f}")
    if not keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    app()
