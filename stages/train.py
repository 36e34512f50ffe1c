"""Train the GAN on normalized MNIST: weights, per-epoch fixed-noise grids and FID, DVCLive curves, resumable."""

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.checkpoints import fingerprint, load_checkpoint, trim_history
from mnist_gan.cli import checked_device, params_or_exit, progress_bar, run, setting_option
from mnist_gan.clusters import self_condition_labels
from mnist_gan.configs import values
from mnist_gan.metric_registry import TRAINING
from mnist_gan.mnist import load_processed
from mnist_gan.models import asks_digits, build_gan, weights_file
from mnist_gan.parallel import check_replicas, prepare_models
from mnist_gan.params import digest
from mnist_gan.runtime import resolve_precision, seed_everything, set_cpu_threads, setup_distributed, teardown_distributed
from mnist_gan.storage import file_digest, save_torch
from mnist_gan.tracking import RunLog
from mnist_gan.training import Trainer, fixed_inputs, gan_config, train_config

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)


def fid_probe(classifier: Path | None, data_dir: Path, device, seed: int):
    """The per-epoch FID of `quality_samples` samples (None without a classifier or with quality_samples 0)."""
    if classifier is None or not P.train.quality_samples:
        return None
    from mnist_gan.classifier import load_classifier
    from mnist_gan.evaluation import QualityProbe

    test = load_processed(data_dir / "test.pt")["images"]
    return QualityProbe(load_classifier(classifier, device), test, P.train.quality_samples, seed)


@app.command()
def main(
    data_dir: Annotated[Path, typer.Argument(help="Output of the normalize stage (train.pt, test.pt).")],
    models_dir: Annotated[Path, typer.Argument(help="Where generator.pt and discriminator.pt go.")],
    results: Annotated[Path, typer.Option(help="DVCLive folder: metrics.json, plots/.")] = Path("results/train"),
    checkpoint: Annotated[Path, typer.Option(help="Resumable checkpoint (outside DVC's outputs).")]
    = Path("models/checkpoint.pt"),
    classifier: Annotated[Path | None, typer.Option(help="Classifier weights: log FID per epoch (quality_samples).")]
    = None,
    epochs: Annotated[int, setting_option("epochs")] = P.train.epochs,
    lr: Annotated[float, setting_option("lr")] = P.train.lr,
    batch_size: Annotated[int, setting_option("batch_size")] = P.train.batch_size,
    seed: Annotated[int, setting_option("seed")] = P.train.seed,
    device: Annotated[str, typer.Option(help="auto (cuda, mps, cpu) | cpu | cuda | mps; not a DVC param.",
                                        callback=checked_device)] = "auto",
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: one per core).")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many steps (smoke tests).")]
    = None,
):
    """Train the GAN selected by `model` (and `loss`, `conditional`, ...) in params.yaml on normalized MNIST."""
    rank, world, dev = setup_distributed(device)
    if dev.type == "cpu":
        set_cpu_threads(threads)
    seed_everything(seed)
    cfg = train_config(P.train, resolve_precision(P.train.precision, dev), lr=lr, batch_size=batch_size,
                       epochs=epochs, seed=seed)
    data = load_processed(data_dir / "train.pt")
    labels, prior = data["labels"], None
    if not cfg.conditional and cfg.clusters:  # self-conditioning: cluster ids stand in for the unread digits
        labels, prior = self_condition_labels(data["images"], cfg.clusters, seed)
    gan = gan_config(P.gan, cfg, P.normalize.image_size, prior)
    generator, discriminator = prepare_models(*build_gan(gan, cfg.init), cfg, dev, world)
    trainer = Trainer(generator, discriminator, data["images"].to(dev), cfg, dev, rank, world, labels)
    run_id = fingerprint({**asdict(cfg), **asdict(gan), "world": world, "max_steps": max_steps},
                         file_digest(data_dir / "train.pt"), script=Path(__file__))
    total = min(epochs * trainer.steps_per_epoch, max_steps or 10**12)
    epoch, step = load_checkpoint(checkpoint, run_id, trainer, total)
    if rank == 0 and epoch:
        typer.echo(f"resuming from {checkpoint}: {epoch} epoch(s), {step} steps done")
        trim_history(results, step)
    if rank == 0:
        mode = " conditional" if asks_digits(gan) else f" self-conditioned on {gan.num_classes} clusters" if gan.num_classes else ""
        typer.echo(f"train: {gan.model}{mode}, loss {cfg.loss}, "
                   f"{cfg.precision} on {dev.type}, {total - step} steps to go")
    # the settings this run used (CLI options included), recorded with the weights
    recorded = {**values(P.gan), **values(replace(P.train, lr=lr, batch_size=batch_size, epochs=epochs, seed=seed)),
                "normalize.image_size": P.normalize.image_size}
    grid_z, grid_y = fixed_inputs(trainer.latent_shape, gan, seed)
    probe = fid_probe(classifier, data_dir, dev, seed) if rank == 0 else None
    log = RunLog(results, resume=epoch > 0, tensorboard=cfg.tensorboard) if rank == 0 else None

    with progress_bar("train", total, step, disable=rank != 0) as (bar, task):
        def on_log(at: int, means: dict[str, float]) -> None:
            bar.update(task, completed=at, stats="  ".join(f"{TRAINING['train/' + k].short} {v:.3f}" for k, v in means.items()))
            log.window(at, means)

        while epoch < epochs and step < total:
            epoch += 1
            started, first = time.perf_counter(), step
            means = trainer.run_epoch(epoch, step, max_steps, on_log=on_log if rank == 0 else None)
            step = min(step + trainer.steps_per_epoch, total)
            speed = (step - first) * batch_size * cfg.d_steps * world / (time.perf_counter() - started)
            if rank != 0:
                continue
            best = trainer.best_generator()  # the EMA generator with BN statistics recomputed, when EMA is on
            fid = probe.fid(best) if probe is not None else None
            log.epoch(epoch, means, trainer.sample(best, grid_z, grid_y), nrow=8 if asks_digits(gan) else 4, fid=fid)
            save_torch({**weights_file(best), "ema": trainer.ema is not None, "params": recorded,
                        "params_digest": digest(recorded)}, models_dir / "generator.pt")
            save_torch(weights_file(trainer.d), models_dir / "discriminator.pt")
            save_torch({**trainer.state_dict(), "epoch": epoch, "step": step, "run_id": run_id}, checkpoint)
            trainer.g.train()
            shown = {**{f"train/{k}": v for k, v in means.items()}, **({"quality/fid": fid} if fid is not None else {})}
            bar.console.print(f"epoch {epoch}/{epochs}: " + "  ".join(f"{TRAINING[k].short} {TRAINING[k].format(v)}"
                                                                      for k, v in shown.items())
                              + f"  ({speed:.0f} img/s)", soft_wrap=True)
    if world > 1:
        check_replicas(trainer.generator, trainer.discriminator)
        if rank == 0:
            typer.echo(f"ddp: {world} processes, replicas identical")
    if log is not None:
        log.close()
    teardown_distributed()


if __name__ == "__main__":
    run(app)
