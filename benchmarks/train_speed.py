"""Training throughput of this project's trainer against the seeds' loop, on the same machine, in one run.

The reference loop is written the way every seed script does it: torchvision's MNIST dataset with
ToTensor() + Normalize((0.5,), (0.5,)) per item, DataLoader(shuffle=True), D ending in Sigmoid and BCELoss.
Both train the same models at the same batch size; runs alternate (ref, ours in fp32, ours in bf16 where the
device runs it natively, ...) so that machine noise hits every row alike, and the median of the repeats is
reported. Also: FLOPs per step (torch's FlopCounterMode), this machine's fp32 peaks (GEMM and a 3x3 conv at the
DCGAN's sizes), DCGAN throughput at batch 64/128/256, evaluate's wall time and peak RSS at 2k/10k/50k samples,
the train stage under torchrun with 1 and 2 CPU processes, peak RSS of a real train stage, no-op `dvc repro`,
and with --profile where an fp32 step's time goes.

    python -m benchmarks.train_speed            # after `dvc repro` (needs data/, models/generator.pt, classifier)
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python -m benchmarks.train_speed   # as on an AVX2-only CPU
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import torch
import typer
from torch import nn

from mnist_gan.data.mnist import load_processed
from mnist_gan.gan.build import build_trainer, gan_config
from mnist_gan.gan.models import build_gan
from mnist_gan.gan.step import Models, train_step
from mnist_gan.gan.trainer import Trainer
from mnist_gan.runtime import cpu_class, native_bf16, pick_device, set_cpu_threads
from mnist_gan.settings.configs import GANConfig, TrainConfig
from mnist_gan.settings.recipes import params as recipe_params

app = typer.Typer(add_completion=False, help=__doc__)
# The seeds' recipe, which the reference loop runs: committed network settings as a plain unconditional DCGAN with
# BatchNorm D, trained with bce, one learning rate, no EMA, no penalty.
MODELS = {"mlp": "002", "dcgan": "000"}  # the networks timed: seed 002's small MLP GAN, seed 000's DCGAN


def seed_networks(name: str) -> tuple[GANConfig, TrainConfig]:
    """The networks and training settings of a seed recipe (settings/recipes.yaml): what the seeds' loop trains."""
    p = recipe_params(MODELS[name])
    return gan_config(p.gan, p.train, p.normalize.image_size), p.train


def reference_loop(cfg: GANConfig, raw_root: Path, batch_size: int, steps: int, device: torch.device) -> float:
    """The seeds' loop; returns images/s over `steps` steps (after 3 warm-up steps)."""
    from torchvision import datasets, transforms

    dataset = datasets.MNIST(
        str(raw_root),
        train=True,
        download=False,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]),
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
    generator, discriminator = build_gan(cfg, "dcgan")
    generator, discriminator = generator.to(device), nn.Sequential(discriminator, nn.Sigmoid()).to(device)
    criterion = nn.BCELoss()
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    start, done = None, 0
    for i, (real, _) in enumerate(loader):
        if i == 3:
            start = time.perf_counter()
        real = real.to(device)
        ones, zeros = torch.ones(len(real), device=device), torch.zeros(len(real), device=device)
        z = torch.randn(len(real), *generator.latent_shape, device=device)
        discriminator.zero_grad()
        fake = generator(z)
        loss_d = criterion(discriminator(real), ones) + criterion(discriminator(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        generator.zero_grad()
        loss_g = criterion(discriminator(fake), ones)
        loss_g.backward()
        opt_g.step()
        loss_d.item(), loss_g.item()  # the seeds print losses every step (a host sync on GPU)
        if i >= 3:
            done += 1
        if done == steps:
            break
    _sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def our_loop(trainer: Trainer, steps: int, device: torch.device) -> float:
    """img/s (real images D sees) over `steps` steps after 3 warm-up steps (and compilation, if enabled)."""
    return timed_steps(trainer, 3, steps, device)[1]


def timed_steps(trainer: Trainer, warmup: int, steps: int, device: torch.device) -> tuple[float, float]:
    """(seconds of the warm-up steps, img/s over `steps` steps after them; img = the real images D sees, so a
    d_steps > 1 run counts each of its D steps' batches)."""
    _sync(device)
    t = time.perf_counter()
    trainer.run_epoch(1, 0, max_steps=warmup)
    _sync(device)
    warm = time.perf_counter() - t
    t = time.perf_counter()
    trainer.run_epoch(2, 0, max_steps=steps)  # run_epoch stops after max_steps of this call's own count
    _sync(device)
    return warm, steps * trainer.images_per_step / (time.perf_counter() - t)


def make_trainer(name: str, batch: int, precision: str, data: dict, dev: torch.device) -> Trainer:
    """Seed recipe `name`'s run at `batch` and `precision`, built as the train stage builds it
    (`build.build_trainer`: seeded, its configs derived and resolved)."""
    p = recipe_params(MODELS[name])
    train = replace(p.train, batch_size=batch, log_every=10**9, precision=precision)
    return build_trainer(p.gan, train, p.normalize.image_size, data, dev)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def flops_per_step(trainer: Trainer) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    real = torch.rand(1, trainer.cfg.batch_size, *trainer.images.shape[1:], device=trainer.device) * 2 - 1
    z = torch.randn(1, trainer.cfg.batch_size, *trainer.latent_shape, device=trainer.device)
    with FlopCounterMode(display=False) as counter:
        models = Models(trainer.generator, trainer.discriminator, trainer.opt_g, trainer.opt_d)
        train_step(models, real, z, None, trainer.plan)
    return counter.get_total_flops()


def matmul_peak(device: torch.device, sizes=(1024, 2048, 4096), repeats: int = 5) -> float:
    """fp32 GEMM throughput in FLOP/s: the best of `repeats` per size after a warm-up call (the first calls pay
    for thread-pool start-up and page faults, which made a single cold 2048 GEMM read low)."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        a @ b  # warm-up
        for _ in range(repeats):
            _sync(device)
            t = time.perf_counter()
            a @ b
            _sync(device)
            best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def conv_peak(device: torch.device, repeats: int = 5) -> float:
    """fp32 throughput in FLOP/s of a 3x3 convolution at the DCGAN's own sizes (128 -> 128 channels at 14x14,
    batch 128, channels-last): what the silicon does on this network's kind of work."""
    conv = nn.Conv2d(128, 128, 3, padding=1, bias=False).to(device, memory_format=torch.channels_last)
    x = torch.randn(128, 128, 14, 14, device=device).contiguous(memory_format=torch.channels_last)
    flops = 2 * 128 * 128 * 128 * 9 * 14 * 14
    best = 0.0
    with torch.no_grad():
        conv(x)
        for _ in range(repeats):
            _sync(device)
            t = time.perf_counter()
            conv(x)
            _sync(device)
            best = max(best, flops / (time.perf_counter() - t))
    return best


def cpu_line() -> str:
    """`runtime.cpu_class()` in one line."""
    c = cpu_class()
    limit = f" (limited: {c['isa_limit']})" if c["isa_limit"] else ""
    return f"{c['cpu']}, {c['cores']} cores, torch capability {c['capability']}, native bf16: {c['native_bf16']}{limit}"


def profile_fp32(trainer: Trainer, steps: int = 20, top: int = 12) -> str:
    """Where an fp32 training step's time goes: torch.profiler's ops by self CPU time, after a warm-up."""
    from torch.profiler import ProfilerActivity, profile

    trainer.run_epoch(0, 0, max_steps=3)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer.run_epoch(0, 0, max_steps=steps)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in GB, stdout) of one child process; os.wait4 gives that child's own rusage."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out}")
    return time.perf_counter() - start, usage.ru_maxrss / 1e6, out  # KiB on Linux -> GB


def train_cmd(out: Path, steps: int, launcher: list[str] | None = None) -> list[str]:
    return [
        *(launcher or [sys.executable, "-m"]),
        "stages.train",
        "data/processed",
        str(out),
        "--results",
        str(out / "results"),
        "--checkpoint",
        str(out / "checkpoint.pt"),
        "--max-steps",
        str(steps),
        "--epochs",
        "1",
    ]


def train_stage_peak_rss(steps: int) -> float:
    """Peak RSS (GB) of a real `python -m stages.train` process on the full training set."""
    return timed(train_cmd(Path("/tmp/mnist-gan-bench"), steps))[1]


def evaluate_cost(n_samples: int) -> tuple[float, float]:
    """(wall s, peak RSS GB) of the evaluate stage on the trained generator with `n_samples` samples."""
    wall, rss, _ = timed(
        [
            sys.executable,
            "-m",
            "stages.evaluate",
            "models/generator.pt",
            "models/classifier.pt",
            "data/raw",
            f"/tmp/mnist-gan-bench/eval-{n_samples}",
            "--n-samples",
            str(n_samples),
        ]
    )
    return wall, rss


def torchrun_speed(processes: int, steps: int) -> float:
    """img/s of the train stage under torchrun with `processes` CPU processes (gloo), batch_size per process."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", "-m"]
    _, _, out = timed(train_cmd(Path(f"/tmp/mnist-gan-bench/ddp{processes}"), steps, launcher))
    return float(re.findall(r"\((\d+) img/s\)", out)[-1])


def noop_repro(repeats: int) -> float | None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    if "up to date" not in subprocess.run(["dvc", "status"], capture_output=True, text=True, env=env).stdout:
        return None  # only meaningful on a reproduced pipeline
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(["dvc", "repro"], check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def seeds_against_ours(name: str, precisions: list[str], steps: int, repeats: int, data, dev, peak: float) -> dict:
    """The seed script's loop and this trainer (each precision) on a seed's networks, interleaved `repeats` times
    (machine noise hits every row alike): medians in img/s, ours as a ratio and as a share of the fp32 peak."""
    cfg, seed_train = seed_networks(name)
    batch = seed_train.batch_size
    trainers = {p: make_trainer(name, batch, p, data, dev) for p in precisions}
    flops = flops_per_step(trainers["fp32"])
    ref, ours = [], {p: [] for p in precisions}
    for _ in range(repeats):
        ref.append(reference_loop(cfg, Path("data/raw"), batch, steps, dev))
        for p, trainer in trainers.items():
            ours[p].append(our_loop(trainer, steps, dev))
    r = statistics.median(ref)
    row = {"batch": batch, "reference_img_s": r, "flops_per_image": flops / batch}
    typer.echo(f"{name:6s} batch {batch:4d}: seeds' loop {r:8.0f} img/s   ({flops / batch / 1e6:.0f} MFLOP/img)")
    for p in precisions:
        o = statistics.median(ours[p])
        fraction = o / batch * flops / peak
        row[p] = {"img_s": o, "ratio": o / r, "fraction_of_fp32_peak": fraction}
        share = f"   {100 * fraction:.0f}% of the fp32 peak" if p == "fp32" else ""  # bf16 has its own peak
        typer.echo(f"{'':6s} this trainer, {p}: {o:8.0f} img/s   x{o / r:.2f}{share}")
    return row


def batch_scaling(batches: list[int], precisions: list[str], steps: int, data, dev) -> dict:
    """The DCGAN's img/s at each batch size and precision (as many images timed at each size)."""
    table = {}
    for b in batches:
        row = {p: our_loop(make_trainer("dcgan", b, p, data, dev), max(10, steps * 128 // b), dev) for p in precisions}
        table[b] = row
        typer.echo(f"dcgan batch {b:4d}: " + "   ".join(f"{p} {v:6.0f} img/s" for p, v in row.items()))
    return table


@app.command()
def main(
    steps: Annotated[int, typer.Option(help="Timed steps per repeat.")] = 60,
    repeats: Annotated[int, typer.Option(help="Alternating repeats per loop.")] = 5,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda.")] = "auto",
    models: Annotated[str, typer.Option(help="Comma-separated: mlp,dcgan.")] = "mlp,dcgan",
    batches: Annotated[str, typer.Option(help="DCGAN batch sizes for the scaling table ('' = skip).")] = "64,128,256",
    eval_sizes: Annotated[
        str, typer.Option(help="evaluate.n_samples values to time ('' = skip).")
    ] = "2000,10000,50000",
    processes: Annotated[str, typer.Option(help="torchrun process counts to time ('' = skip).")] = "1,2",
    out: Annotated[Path | None, typer.Option(help="Also write the figures as JSON here.")] = None,
    profile: Annotated[
        bool, typer.Option(help="Also print where an fp32 DCGAN step's time goes (torch.profiler).")
    ] = False,
):
    """Alternate the seeds' loop and ours; print img/s medians, ratios, fraction of the fp32 peak, memory."""
    dev = pick_device(device)
    if dev.type == "cpu":
        set_cpu_threads(None)
    data = load_processed(Path("data/processed/train.pt"))
    gemm, conv = matmul_peak(dev), conv_peak(dev)
    peak = max(gemm, conv)
    report: dict = {
        "device": str(dev),
        "cpu": cpu_line(),
        "threads": torch.get_num_threads(),
        "matmul_peak_gflops": gemm / 1e9,
        "conv_peak_gflops": conv / 1e9,
    }
    typer.echo(f"{cpu_line()}; device {dev}, {torch.get_num_threads()} threads")
    typer.echo(
        f"fp32 peaks: GEMM {gemm / 1e9:.0f} GFLOP/s (best of 1024-4096), 3x3 conv at the DCGAN's sizes "
        f"{conv / 1e9:.0f} GFLOP/s; '% of peak' below is against the larger"
    )
    precisions = ["fp32"] + (["bf16"] if native_bf16(dev) else [])
    for name in models.split(","):
        report[name] = seeds_against_ours(name, precisions, steps, repeats, data, dev, peak)
    if profile:
        typer.echo(profile_fp32(make_trainer("dcgan", seed_networks("dcgan")[1].batch_size, "fp32", data, dev)))
    if batches:
        report["batch_scaling"] = batch_scaling([int(b) for b in batches.split(",")], precisions, steps, data, dev)
    if eval_sizes:
        report["evaluate"] = {}
        for n in map(int, eval_sizes.split(",")):
            wall, rss = evaluate_cost(n)
            report["evaluate"][n] = {"wall_s": wall, "peak_rss_gb": rss}
            typer.echo(f"evaluate n_samples {n:6d}: {wall:6.1f} s, peak RSS {rss:.2f} GB")
    if processes:
        report["torchrun"] = {}
        for k in map(int, processes.split(",")):
            report["torchrun"][k] = torchrun_speed(k, steps=max(steps, 100))
            typer.echo(
                f"torchrun {k} CPU process(es), train stage (params.yaml model): {report['torchrun'][k]:.0f} img/s"
            )
    rss = train_stage_peak_rss(steps=20)
    report["train_stage_peak_rss_gb"] = rss
    typer.echo(f"train stage peak RSS: {rss:.2f} GB")
    noop = noop_repro(repeats=5)
    report["noop_dvc_repro_s"] = noop
    typer.echo("no-op dvc repro: " + (f"{noop:.2f} s (median of 5)" if noop else "skipped (pipeline not up to date)"))
    if out:
        out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    app()
