"""Train the GAN on normalized MNIST: weights, per-epoch fixed-noise grids, DVCLive curves, resumable."""

import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from dvclive import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mnist_gan.cli import checked, params_or_exit, run
from mnist_gan.data import load_processed
from mnist_gan.models import GANConfig, build_gan, weights_file
from mnist_gan.report import image_grid
from mnist_gan.storage import PipelineError, file_digest, save_torch
from mnist_gan.training import (STATS, Trainer, TrainConfig, fingerprint, fixed_noise, load_checkpoint,
                                prepare_models, replicas_in_sync, trim_history)
from mnist_gan.utils import seed_everything, set_cpu_threads, setup_distributed, teardown_distributed

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)
LABELS = {"loss_d": "loss_d", "loss_g": "loss_g", "d_real": "D(x)", "d_fake": "D(G(z))"}


@app.command()
def main(
    data_dir: Annotated[Path, typer.Argument(help="Output of the normalize stage (holds train.pt).")],
    models_dir: Annotated[Path, typer.Argument(help="Where generator.pt and discriminator.pt go.")],
    results: Annotated[Path, typer.Option(help="DVCLive folder: metrics.json, plots/.")] = Path("results/train"),
    checkpoint: Annotated[Path, typer.Option(help="Resumable checkpoint (outside DVC's outputs).")]
    = Path("models/checkpoint.pt"),
    epochs: Annotated[int, typer.Option(help="Passes over the training set.", callback=checked("epochs"))]
    = P["epochs"],
    lr: Annotated[float, typer.Option(help="Adam learning rate of G and D.", callback=checked("lr"))] = P["lr"],
    batch_size: Annotated[int, typer.Option(help="Images per step (per process under torchrun).",
                                            callback=checked("batch_size"))] = P["batch_size"],
    seed: Annotated[int, typer.Option(help="Seeds init, batches and noise.", callback=checked("seed"))]
    = P["seed"],
    device: Annotated[str, typer.Option(help="auto (cuda, mps, cpu) | cpu | cuda | mps; not a DVC param.")]
    = "auto",
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: one per core).")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many steps (smoke tests).")]
    = None,
):
    """Train the GAN selected by `model` in params.yaml on normalized MNIST."""
    rank, world, dev = setup_distributed(device)
    if dev.type == "cpu":
        set_cpu_threads(threads)
    seed_everything(seed)
    cfg = TrainConfig(lr=lr, beta1=P["beta1"], beta2=P["beta2"], batch_size=batch_size, epochs=epochs,
                      seed=seed, log_every=P["log_every"], precision=P["precision"],
                      channels_last=P["channels_last"], compile=P["compile"])
    gan = GANConfig.from_params(P)
    train_file = data_dir / "train.pt"
    images = load_processed(train_file)["images"]
    generator, discriminator = prepare_models(*build_gan(gan, P["init"]), cfg, dev, world)
    trainer = Trainer(generator, discriminator, images.to(dev), cfg, dev, rank, world)
    run_id = fingerprint({**asdict(cfg), **asdict(gan), "init": P["init"], "world": world,
                          "max_steps": max_steps}, file_digest(train_file), script=Path(__file__))
    total = min(epochs * trainer.steps_per_epoch, max_steps or 10**12)
    epoch, step = load_checkpoint(checkpoint, run_id, trainer, total)
    if epoch and rank == 0:
        typer.echo(f"resuming from {checkpoint}: {epoch} epoch(s), {step} steps done")
        trim_history(results, step)
    noise = fixed_noise(trainer.latent_shape, 16, seed).to(dev)
    live = Live(str(results), dvcyaml=False, save_dvc_exp=False, resume=epoch > 0) if rank == 0 else None
    tboard = None
    if rank == 0 and P["tensorboard"]:  # seed 002's SummaryWriter logging, behind a param
        from torch.utils.tensorboard import SummaryWriter

        tboard = SummaryWriter(str(results / "tensorboard"))

    def log_window(at: int, means: dict[str, float]) -> None:
        progress.update(task, completed=at, stats="  ".join(f"{LABELS[k]} {v:.3f}" for k, v in means.items()))
        if live is not None:
            live.step = at
            for k, v in means.items():
                live.log_metric(f"train/{k}", v)
                if tboard is not None:
                    tboard.add_scalar(f"train/{k}", v, at)

    with Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
                  TimeRemainingColumn(), disable=rank != 0, transient=True) as progress:
        task = progress.add_task("train", total=total, completed=step, stats="")
        while epoch < epochs and step < total:
            epoch += 1
            started, first = time.perf_counter(), step
            means = trainer.run_epoch(epoch, step, max_steps, on_log=log_window)
            step = min(step + trainer.steps_per_epoch, total)
            speed = (step - first) * batch_size * world / (time.perf_counter() - started)
            if rank != 0:
                continue
            fixed = trainer.sample(noise)  # (16, C, H, W) in [-1, 1]
            for k, v in means.items():
                live.log_metric(f"epoch_mean/{k}", v)
            live.log_metric("epochs", epoch, plot=False)
            live.log_image(f"fixed_noise/epoch_{epoch:03d}.png", image_grid(fixed, nrow=4))
            live.make_summary()
            if tboard is not None:
                tboard.add_images("fixed_noise", fixed.add(1).div(2), epoch)
            save_torch(weights_file(trainer.g), models_dir / "generator.pt")
            save_torch(weights_file(trainer.d), models_dir / "discriminator.pt")
            save_torch({**trainer.state_dict(), "epoch": epoch, "step": step, "run_id": run_id}, checkpoint)
            progress.console.print(f"epoch {epoch}/{epochs}: " + "  ".join(f"{LABELS[k]} {means[k]:.4f}" for k in STATS)
                                   + f"  ({speed:.0f} img/s)", soft_wrap=True)
    if world > 1:
        in_sync = all(replicas_in_sync(m) for m in (trainer.generator, trainer.discriminator))
        if rank == 0:
            typer.echo(f"ddp: {world} processes, replicas {'identical' if in_sync else 'DIVERGED'}")
        if not in_sync:
            raise PipelineError("DDP replicas hold different weights; outputs are rank 0's")
    if live is not None:
        live.end()
    if tboard is not None:
        tboard.close()
    teardown_distributed()


if __name__ == "__main__":
    run(app)
