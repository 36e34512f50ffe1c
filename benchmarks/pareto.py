"""Quality against cost: one training setting per `run`, a row each in a JSON-lines table; the table as Markdown
and FID against train time as a plot.

`run` trains with the real train stage (params.yaml plus `-S key=value` overrides, validated by the project's own
rules), scores the generator with the real evaluate stage and appends one row: the overrides, the CPU class, the
train stage's FLOPs (counted with torch's FlopCounterMode: the training steps, plus what every epoch adds: the EMA
generator's BatchNorm recalibration and the FID probe), its wall time, its speed and every headline metric.
`speed` times one epoch of the train stage (steps, per-epoch FID, BN recalibration and saves) under a precision
and an instruction-set limit, for the fp32 and AVX2 columns of settings whose quality was measured in bf16.

    python -m benchmarks.pareto run w32 -S g_features=32 -S d_features=32          # after `dvc repro`
    python -m benchmarks.pareto speed w32 -S g_features=32 -S d_features=32 --precision fp32 --isa avx2
    python -m benchmarks.pareto adopt base                                         # the committed default's repro
    python -m benchmarks.pareto table                                              # docs/pareto.jsonl -> Markdown
    python -m benchmarks.pareto plot                                               # -> docs/pareto.png

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

from mnist_gan.outputs.curves import metric_file, read_tsv

app = typer.Typer(add_completion=False, help=__doc__)
ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "pareto.jsonl"
ISA = {"native": {}, "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}
SHOWN = (
    "two_sample_accuracy",
    "per_digit_two_sample_max",
    "fid",
    "precision",
    "recall",
    "label_accuracy",
    "per_digit_fid_max",
    "classifier_score",
    "classes_covered",
    "closer_than_test_1pct",
)


def overridden(settings: list[str], base: Path | None = None) -> dict:
    """params.yaml (or `base`) with `key=value` overrides (values read as YAML, as `dvc exp run -S` does),
    validated."""
    from mnist_gan.settings.params import validate, with_changes

    raw = with_changes(yaml.safe_load((base or ROOT / "params.yaml").read_text()), list(settings))
    validate(raw)
    return raw


def upgraded(params: dict) -> dict:
    """A run's params in today's layout: D's learning rate as a multiple of lr (`lr_d`, an absolute rate or null,
    became `lr_d_ratio`), and the sections a run trained before they existed took from params.yaml as it is now."""
    if "lr_d" in params:  # in its place, so the file reads in params.yaml's order
        ratio = 1.0 if params["lr_d"] is None else params["lr_d"] / params["lr"]
        params = {("lr_d_ratio" if k == "lr_d" else k): (ratio if k == "lr_d" else v) for k, v in params.items()}
    current = yaml.safe_load((ROOT / "params.yaml").read_text())
    return {**params, **{k: v for k, v in current.items() if isinstance(v, dict) and k not in params}}


def cpu_class(isa: str) -> dict:
    """`runtime.cpu_class()` of a process that runs under the instruction-set limit `isa` (what a stage sees)."""
    probe = "import json; from mnist_gan.runtime import cpu_class; print(json.dumps(cpu_class()))"
    env = {**os.environ, **ISA[isa]}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env).stdout
    return {**json.loads(out), "isa_limit": isa}


def train_flops(params: dict) -> dict:
    """FLOPs of the train stage for these params: per training image (one step of the trainer `build_trainer` makes,
    / batch), per epoch's extras (BN recalibration, the FID probe). A penalty's double backward is beyond torch's
    FlopCounterMode: its steps are then counted without it, and `flops_without_penalties` says so."""
    from dataclasses import replace

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mnist_gan.gan.build import build_trainer
    from mnist_gan.settings.configs import Params
    from mnist_gan.settings.params import validate

    p = Params.from_values(validate(params))
    train, size = replace(p.train, precision="fp32"), p.normalize.image_size
    b, k = train.batch_size, train.d_steps
    n = max(b * k, 8 * train.clusters)  # enough images for the self-conditioning clusters
    data = {"images": torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8), "labels": torch.arange(n) % 10}
    trainer = build_trainer(p.gan, train, size, data, torch.device("cpu"), cuda_graph=False)
    idx, z = torch.arange(b * k).view(k, b), torch.randn(k, b, *trainer.latent_shape)
    without_penalties = False
    try:
        with FlopCounterMode(display=False) as step:
            trainer.step(idx, z)
    except RuntimeError:  # autograd.grad(create_graph=True) inside the counter
        without_penalties = True
        trainer.cfg = replace(trainer.cfg, reg_every=2)  # step 1 of 2: a step of the objective alone
        with FlopCounterMode(display=False) as step:
            trainer.step(idx, z, number=1)
    with FlopCounterMode(display=False) as forward, torch.no_grad():
        trainer.g(z[0], None if trainer.labels is None else trainer.labels[idx[0]])
    per_image = step.get_total_flops() / (b * k)
    g_forward = forward.get_total_flops() / b
    images_per_epoch = (p.normalize.max_train_images or 60000) // (b * k) * b * k
    images = images_per_epoch * p.train.epochs
    ema = train.ema_decay > 0 or train.ema_kimg is not None
    extra = p.train.epochs * g_forward * (train.ema_bn_batches * b * ema + p.train.quality_samples)
    return {
        "flops_per_image": per_image,
        "g_forward_flops": g_forward,
        "images": images,
        "train_flops": per_image * images + extra,
        "flops_without_penalties": without_penalties,
    }


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


def append(row: dict, table: Path) -> None:
    table.parent.mkdir(parents=True, exist_ok=True)
    with open(table, "a") as f:
        f.write(json.dumps(row) + "\n")


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
    table: Annotated[Path, typer.Option(help="JSON-lines table to append to.")] = TABLE,
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
    table: Annotated[Path, typer.Option(help="JSON-lines table to append to.")] = TABLE,
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
        f"{name}: two-sample {g['two_sample_accuracy']:.3f}, FID {g['fid']:.2f}, precision {g['precision']:.3f}, "
        f"recall {g['recall']:.3f}, {row['flops_per_image'] / 1e6:.0f} MFLOP/img, {row['train_flops'] / 1e12:.1f} TFLOP"
    )


@app.command()
def adopt(
    name: Annotated[str, typer.Argument(help="Row name.")],
    folder: Annotated[Path, typer.Option(help="A pipeline run: params.yaml, results/evaluate, results/train.")] = ROOT,
    table: Annotated[Path, typer.Option(help="JSON-lines table to append to.")] = TABLE,
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
        folder / "results/evaluate/metrics.json",
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
    table: Annotated[Path, typer.Argument(help="JSON-lines table.")] = TABLE,
    out_dir: Annotated[Path, typer.Option(help="Where the runs' folders (their params.yaml) are.")] = Path(
        "/tmp/pareto"
    ),
):
    """Recount every row's FLOPs with the step as the library now has it (same maths, e.g. after the G step
    stopped computing D's discarded weight gradients), from each run's full params; measured columns stay."""
    out = []
    for r in rows(table):
        params = r.get("params") or yaml.safe_load((out_dir / r["name"] / "params.yaml").read_text())
        out.append({**r, "params": params, **train_flops(params)})
    table.write_text("".join(json.dumps(r) + "\n" for r in out))
    typer.echo(f"recount: {len(out)} rows")


def rows(table: Path) -> list[dict]:
    return [json.loads(line) for line in table.read_text().splitlines() if line.strip()]


SPEED = ROOT / "docs" / "pareto_speed.jsonl"


def setting(r: dict, base: dict | None = None) -> str:
    """A row's setting as the `-S` changes that make it from `base` (the committed params.yaml), seed apart."""
    from benchmarks.docs import difference, shown

    return shown(difference(r["params"], base), "the default" if base is None else "that default")


# What an epoch's time depends on (the networks, the objective's passes, the batch, the per-epoch FID probe)
COST_KEYS = (
    "model",
    "conditional",
    "g_features",
    "d_features",
    "g_upsample",
    "g_self_modulation",
    "d_mbstd",
    "spectral_norm",
    "loss",
    "gp_weight",
    "r1_gamma",
    "r2_gamma",
    "reg_every",
    "batch_size",
    "d_steps",
    "quality_samples",
)


def network(params: dict) -> tuple:
    """Rows that share these settings share their `speed` figures (a different seed, learning rate, EMA or epoch
    count costs the same per epoch); a setting absent from an older row reads as it was then (docs.BEFORE)."""
    from benchmarks.docs import top_level

    p = top_level(params)
    return tuple(json.dumps(p.get(k)) for k in COST_KEYS)


def quiet_times(speed_table: Path) -> dict[tuple, tuple[float, float]]:
    """{(network, precision, isa): (start-up s, one-epoch s)} from `speed` runs (alone on the machine; the latest
    run of a network wins)."""
    if not speed_table.exists():
        return {}
    return {
        (network(r["params"]), r["precision"], r["isa_limit"]): (r["startup_s"], r["epoch_wall_s"])
        for r in rows(speed_table)
    }


def train_minutes(r: dict, times: dict, precision: str = "bf16", isa: str = "native") -> float | None:
    """The train stage's time for a whole run: start-up + epochs x the quiet one-epoch time (None: not measured)."""
    measured = times.get((network(r["params"]), precision, isa))
    return None if measured is None else (measured[0] + measured[1] * r["epochs"]) / 60


SPEEDS = (("bf16", "native"), ("fp32", "native"), ("fp32", "avx2"))


def study_table(table: list[dict], times: dict, conditional: bool, base: dict | None = None) -> str:
    """The quality table of one mode as Markdown, cheapest first (then best FID): the setting, its counted cost,
    its train minutes where its network was timed, and the evaluate stage's metrics."""
    from benchmarks.docs import percent
    from benchmarks.docs import table as markdown_table

    def number(value, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    body = []
    mine = [r for r in table if r["params"]["conditional"] == conditional]
    for r in sorted(mine, key=lambda r: (r["train_flops"], r["generated"]["fid"])):
        g = r["generated"]
        minutes = [train_minutes(r, times, *k) for k in SPEEDS]
        body.append(
            [
                r["name"],
                setting(r, base),
                r["params"]["seed"],
                f"{r['flops_per_image'] / 1e6:.0f}",
                *(number(m, ".1f") for m in minutes),
                f"{g['fid']:.2f}",
                number(g.get("precision"), ".3f"),
                number(g.get("recall"), ".3f"),
                *([percent(g.get("label_accuracy")), number(g.get("per_digit_fid_max"), ".1f")] if conditional else []),
            ]
        )
    changes = "`-S` from the default" if base is None else "`-S` from that"
    head = ["row", changes, "seed", "MFLOP/img", "train min, bf16", "fp32", "fp32, AVX2 limit"]
    head += ["FID", "precision", "recall", *(["label accuracy", "worst digit FID"] if conditional else [])]
    return markdown_table(head, body)


@app.command("table")
def markdown(
    table: Annotated[Path, typer.Argument(help="JSON-lines table.")] = TABLE,
    speed_table: Annotated[Path, typer.Option(help="The `speed` rows.")] = SPEED,
):
    """Print the table as Markdown, conditional then unconditional (docs/pareto.md holds it: `make docs`)."""
    for conditional in (True, False):
        typer.echo(f"\n**{'conditional' if conditional else '`-S conditional=false`'}**\n")
        typer.echo(study_table(rows(table), quiet_times(speed_table), conditional))


def timed_on(speed_table: Path) -> str:
    """The CPU class of the native bf16 `speed` rows, in words, for the axis label."""
    native = [r for r in rows(speed_table) if r["isa_limit"] == "native" and r["precision"] == "bf16"]
    if not native:
        return "no timed CPU"
    r = native[-1]
    family = f" family {r['family']}" if r.get("family") else ""
    return f"{r['cores']}-core {r['cpu']}{family}, {r['capability']}, native bf16"


@app.command()
def plot(
    table: Annotated[Path, typer.Argument(help="JSON-lines table.")] = TABLE,
    out: Annotated[Path, typer.Argument(help="PNG to write.")] = ROOT / "docs" / "pareto.png",
    speed_table: Annotated[Path, typer.Option(help="The `speed` rows.")] = SPEED,
):
    """Left: FID against the train stage's time (bf16, start-up + epochs x the quiet one-epoch time) of the rows
    whose network was timed, conditional, the Pareto front drawn. Right: FID against the counted train FLOPs of
    every row, both modes (the unconditional networks were not all timed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    times = quiet_times(speed_table)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    panels = [
        (
            axes[0],
            lambda r: train_minutes(r, times),
            (True,),
            f"train stage, minutes (bf16 on {timed_on(speed_table)})",
        ),
        (axes[1], lambda r: r["train_flops"] / 1e15, (True, False), "train stage, PFLOP (counted)"),
    ]
    for ax, cost, modes, label in panels:
        for conditional in modes:
            points = [
                (cost(r), r["generated"]["fid"], r)
                for r in rows(table)
                if r["params"]["conditional"] == conditional and cost(r) is not None
            ]
            color = "tab:blue" if conditional else "tab:orange"
            for x, y, r in points:
                ax.scatter(x, y, s=18, color=color)
                ax.annotate(r["name"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
            front, best = [], float("inf")
            for x, y, _ in sorted(points, key=lambda p: p[0]):
                if y < best:
                    best = y
                    front.append((x, y))
            if front:
                mode = "conditional" if conditional else "-S conditional=false"
                ax.step(
                    *zip(*front, strict=True), where="post", color=color, linewidth=0.8, label=f"{mode}: Pareto front"
                )
        ax.legend(fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("FID (classifier features, lower is better)")
        ax.set_yscale("log")
        for axis in (ax.yaxis,):
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(ScalarFormatter())
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_title("conditional: FID against train time")
    axes[1].set_title("both modes: FID against train FLOPs")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    typer.echo(f"plot: {out}")


if __name__ == "__main__":
    app()
