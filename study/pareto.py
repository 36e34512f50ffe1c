"""Quality against cost: one training setting per `run`, a row each in a JSON-lines table; the table as Markdown
and FID against train time as a plot.

`run` trains with the real train stage (params.yaml plus `-S key=value` overrides, validated by the project's own
rules), scores the generator with the real evaluate stage and appends one row: the overrides, the CPU class, the
train stage's FLOPs (counted with torch's FlopCounterMode: the training steps, plus what every epoch adds: the EMA
generator's BatchNorm recalibration and the FID probe), its wall time, its speed and every headline metric.
`speed` times one epoch of the train stage (steps, per-epoch FID, BN recalibration and saves) under a precision
and an instruction-set limit, for the fp32 and AVX2 columns of settings whose quality was measured in bf16.

    python -m study.pareto run d64 -S d_features=64                      # after `dvc repro`
    python -m study.pareto score d64 -S d_features=64                    # a trained run's folder, scored again
    python -m study.pareto speed d64 -S d_features=64 --precision fp32 --isa avx2
    python -m study.pareto adopt base                                    # the committed default's repro
    python -m study.pareto table                                         # docs/pareto.jsonl -> Markdown
    python -m study.pareto plot                                          # -> docs/pareto.png

`--isa avx2` runs the stages with oneDNN and ATen limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2,
ATEN_CPU_CAPABILITY=avx2): what a CPU without AVX512 (AMD Zen 3, Intel client CPUs) runs.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
import yaml

from mnist_gan.evaluation.registry import METRICS_FILE, summary
from mnist_gan.outputs.curves import metric_file, read_tsv
from study.flops import train_flops
from study.rows import QUALITY, ROOT, SHOWN, SPEED, append, quiet_times, read

app = typer.Typer(add_completion=False, help=__doc__)
ISA = {"native": {}, "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}


def overridden(settings: list[str], base: Path | None = None) -> dict:
    """params.yaml (or `base`) with `key=value` overrides (values read as YAML, as `dvc exp run -S` does),
    validated."""
    from mnist_gan.settings.params import parse, with_changes

    raw = with_changes(yaml.safe_load((base or ROOT / "params.yaml").read_text()), list(settings))
    parse(raw)
    return raw


def upgraded(params: dict) -> dict:
    """A run's params in today's layout: D's learning rate as a multiple of lr (`lr_d`, an absolute rate or null,
    became `lr_d_ratio`), and the sections of params.yaml as it is now where the run's differ in layout."""
    if "lr_d" in params:  # in its place, so the file reads in params.yaml's order
        ratio = 1.0 if params["lr_d"] is None else params["lr_d"] / params["lr"]
        params = {("lr_d_ratio" if k == "lr_d" else k): (ratio if k == "lr_d" else v) for k, v in params.items()}
    current = yaml.safe_load((ROOT / "params.yaml").read_text())
    kept = {k: v for k, v in params.items() if k in current}  # a section since removed (report:) goes
    # sections it predates come from params.yaml; the two-sample test is always today's: every row is scored by it
    return {
        **kept,
        **{k: v for k, v in current.items() if isinstance(v, dict) and k not in kept},
        "two_sample": current["two_sample"],
    }


def cpu_class(isa: str) -> dict:
    """`runtime.cpu_class()` of a process that runs under the instruction-set limit `isa` (what a stage sees)."""
    probe = "import json; from mnist_gan.runtime import cpu_class; print(json.dumps(cpu_class()))"
    env = {**os.environ, **ISA[isa]}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout
    return {**json.loads(out), "isa_limit": isa}


def stage(args: list[str], env: dict) -> tuple[float, str]:
    """(wall seconds, output) of a stage process; every output line is prefixed with its arrival time
    (`[seconds] line`), which is how `speed` times single epochs."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DVC_NO_ANALYTICS": "1", **env},
    )
    lines = [f"[{time.perf_counter() - start:.2f}] {line}" for line in proc.stdout]
    if proc.wait() != 0:
        raise SystemExit(f"{args[0]} failed:\n{''.join(lines)[-3000:]}")
    return time.perf_counter() - start, "".join(lines)


def epoch_times(log: str) -> list[float]:
    """Arrival times of the train stage's `epoch k/n:` lines (one per finished epoch, after its FID)."""
    return [float(m) for m in re.findall(r"^\[([\d.]+)\] epoch \d+/\d+:", log, flags=re.M)]


def train(
    name: str, settings: list[str], isa: str, out_dir: Path, extra: list[str] = (), base: Path | None = None
) -> tuple[dict, float, str]:
    params = overridden(settings, base)
    run_dir = out_dir / name
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {"MNIST_GAN_PARAMS": str(run_dir / "params.yaml"), **ISA[isa]}
    wall, log = stage(
        [
            "stages.train",
            "data/processed",
            str(run_dir / "models"),
            "--results",
            str(run_dir / "results"),
            "--checkpoint",
            str(run_dir / "checkpoint.pt"),
            "--classifier",
            "models/classifier.pt",
            *extra,
        ],
        env,
    )
    (run_dir / "train.log").write_text(log)
    return params, wall, log


def speeds(log: str) -> list[float]:
    return [float(s) for s in re.findall(r"\((\d+) img/s\)", log)]


Settings = Annotated[list[str] | None, typer.Option("-S", "--set", help="key=value override of params.yaml.")]
Isa = Annotated[str, typer.Option(help="native | avx2 (oneDNN and ATen limited to AVX2).")]


def quality_row(
    name: str,
    overrides: list[str],
    params: dict,
    isa: str,
    precision: str | None,
    metrics_file: Path,
    fid_curve: Path,
    train_wall_s: float | None = None,
    img_s: float | None = None,
) -> dict:
    """One row of the quality table: the setting, the machine, the train stage's counted cost, its per-epoch FID
    and the evaluate stage's metrics (`run` and `adopt` write the same fields)."""
    metrics = json.loads(metrics_file.read_text())
    fids = read_tsv(fid_curve)[1] if fid_curve.exists() else []
    return {
        "name": name,
        "overrides": overrides,
        "params": params,
        "date": datetime.date.today().isoformat(),
        **cpu_class(isa),
        "precision": precision,
        "epochs": params["epochs"],
        "train_wall_s": train_wall_s,
        "img_s": img_s,
        **train_flops(params),
        "fid_per_epoch": fids,
        "generated": {k: metrics["generated"].get(k) for k in SHOWN},
        "real_floor": {k: metrics["real_floor"].get(k) for k in SHOWN},
    }


@app.command("run")
def run_setting(
    name: Annotated[str, typer.Argument(help="Row name.")],
    settings: Settings = None,
    isa: Isa = "native",
    table: Annotated[Path, typer.Option(help="JSON-lines table to append to.")] = QUALITY,
    out_dir: Annotated[Path, typer.Option(help="Where each run's outputs stay.")] = Path("/tmp/pareto"),
):
    """Train (timed) and evaluate one setting; append its row."""
    settings = settings or []
    _, wall, log = train(name, settings, isa, out_dir)
    (out_dir / name / "wall_s").write_text(f"{wall:.1f}\n")
    score(name, settings, isa, table, out_dir)


@app.command()
def score(
    name: Annotated[str, typer.Argument(help="Row name: the folder a `run` (or its training alone) wrote.")],
    settings: Settings = None,
    isa: Isa = "native",
    table: Annotated[Path, typer.Option(help="JSON-lines table to append to.")] = QUALITY,
    out_dir: Annotated[Path, typer.Option(help="Where each run's outputs stay.")] = Path("/tmp/pareto"),
):
    """Evaluate a trained setting with the evaluate stage as it is now; append its row."""
    settings = settings or []
    run_dir = out_dir / name
    params = upgraded(yaml.safe_load((run_dir / "params.yaml").read_text()))
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    log = (run_dir / "train.log").read_text()
    wall_file = run_dir / "wall_s"
    wall = float(wall_file.read_text()) if wall_file.exists() else None
    stage(
        [
            "stages.evaluate",
            str(run_dir / "models/generator.pt"),
            "models/classifier.pt",
            "data/raw",
            str(run_dir / "evaluate"),
            "--two-sample-floor",
            "results/two_sample/metrics.json",
        ],
        {"MNIST_GAN_PARAMS": str(run_dir / "params.yaml")},
    )
    precision = re.search(r", (bf16|fp32) on ", log)
    row = quality_row(
        name,
        settings,
        params,
        isa,
        precision.group(1) if precision else None,
        run_dir / "evaluate/metrics.json",
        metric_file(run_dir / "results", "quality/fid"),
        train_wall_s=wall,
        img_s=statistics.median(speeds(log)) if speeds(log) else None,
    )
    append(row, table)
    g = row["generated"]
    typer.echo(
        f"{name}: {summary(g)}, {row['flops_per_image'] / 1e6:.0f} MFLOP/img, {row['train_flops'] / 1e12:.1f} TFLOP"
    )


@app.command()
def adopt(
    name: Annotated[str, typer.Argument(help="Row name.")],
    folder: Annotated[Path, typer.Option(help="A pipeline run: params.yaml, results/evaluate, results/train.")] = ROOT,
    table: Annotated[Path, typer.Option(help="JSON-lines table to append to.")] = QUALITY,
):
    """A row from a finished `dvc repro` (e.g. the committed default's): its params, the evaluate stage's metrics and
    the per-epoch FID, as `run` records them; its time comes from `speed`, like every row's in the table."""
    params = yaml.safe_load((folder / "params.yaml").read_text())
    native_bf16 = cpu_class("native")["native_bf16"]
    row = quality_row(
        name,
        [],
        params,
        "native",
        "bf16" if params["precision"] == "auto" and native_bf16 else "fp32",
        folder / METRICS_FILE,
        metric_file(folder / "results/train", "quality/fid"),
    )
    append(row, table)
    typer.echo(f"{name}: FID {row['generated']['fid']:.2f} (from {folder})")


@app.command()
def speed(
    name: Annotated[str, typer.Argument(help="Row name.")],
    settings: Settings = None,
    isa: Isa = "native",
    precision: Annotated[str, typer.Option(help="fp32 | bf16 | auto.")] = "fp32",
    table: Annotated[Path, typer.Option(help="JSON-lines table to append to.")] = ROOT / "docs" / "pareto_speed.jsonl",
    out_dir: Annotated[Path, typer.Option(help="Scratch folder.")] = Path("/tmp/pareto-speed"),
    base: Annotated[Path | None, typer.Option(help="Params file to start from (a `run`'s params.yaml).")] = None,
):
    """Time the train stage for a setting: two epochs, and the second alone (training, the EMA generator's BN
    recalibration, FID, grid, saves); a whole run is then its start-up plus epochs x one epoch. Append a row."""
    settings = [*(settings or []), f"precision={precision}"]
    params, wall, log = train(name, settings, isa, out_dir, ["--epochs", "2"], base)
    first, second = epoch_times(log)
    epoch = second - first
    row = {
        "name": name,
        "overrides": settings,
        "params": params,
        "date": datetime.date.today().isoformat(),
        **cpu_class(isa),
        "precision": precision,
        "epoch_wall_s": round(epoch, 1),
        "startup_s": round(first - epoch, 1),  # process start, data, models, probe: before the first step
        "img_s": speeds(log)[-1],
        "epochs": params["epochs"],
        **train_flops(params),
    }
    append(row, table)
    typer.echo(
        f"{name} ({precision}, {isa}): one epoch {epoch:.1f} s after {row['startup_s']:.1f} s of start-up, "
        f"{row['img_s']:.0f} img/s"
    )


@app.command()
def recount(
    table: Annotated[Path, typer.Argument(help="JSON-lines table.")] = QUALITY,
    out_dir: Annotated[Path, typer.Option(help="Where the runs' folders (their params.yaml) are.")] = Path(
        "/tmp/pareto"
    ),
):
    """Recount every row's FLOPs with the step as the library now has it (same maths, e.g. after the G step
    stopped computing D's discarded weight gradients), from each run's full params; measured columns stay."""
    out = []
    for r in read(table):
        params = r.get("params") or yaml.safe_load((out_dir / r["name"] / "params.yaml").read_text())
        out.append({**r, "params": params, **train_flops(params)})
    table.write_text("".join(json.dumps(r) + "\n" for r in out))
    typer.echo(f"recount: {len(out)} rows")


@app.command("table")
def markdown(
    table: Annotated[Path, typer.Argument(help="JSON-lines table.")] = QUALITY,
    speed_table: Annotated[Path, typer.Option(help="The `speed` rows.")] = SPEED,
):
    """Print the quality table as Markdown, conditional then unconditional (what docs/pareto.md shows)."""
    from study.docs import study_table

    for conditional in (True, False):
        typer.echo(f"\n**{'conditional' if conditional else '`-S conditional=false`'}**\n")
        typer.echo(study_table(read(table), quiet_times(speed_table), conditional))


@app.command()
def plot(
    table: Annotated[Path, typer.Argument(help="JSON-lines table.")] = QUALITY,
    out: Annotated[Path, typer.Argument(help="PNG to write.")] = ROOT / "docs" / "pareto.png",
    speed_table: Annotated[Path, typer.Option(help="The `speed` rows.")] = SPEED,
):
    """The two-sample accuracy and FID of every row against the train stage's time (docs/pareto.png)."""
    from study.plot import draw

    draw(read(table), speed_table, out)
    typer.echo(f"plot: {out}")


if __name__ == "__main__":
    app()
