"""Train the GAN on normalized MNIST: weights, per-epoch fixed-noise grids and FID, DVCLive curves, resumable."""

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.data.mnist import load_processed
from mnist_gan.evaluation.probe import quality_probe
from mnist_gan.gan.build import train_run
from mnist_gan.outputs.tracking import RunLog
from mnist_gan.runtime import set_cpu_threads, setup_distributed, teardown_distributed
from mnist_gan.stage import DeviceOption, params_or_exit, run, setting_option

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)
CHECKPOINT = Path("models/checkpoint.pt")  # resumable, outside DVC's outputs: DVC deletes those before a rerun


@app.command()
def main(
    data_dir: Annotated[Path, typer.Argument(help="Output of the normalize stage (train.pt, test.pt).")],
    models_dir: Annotated[Path, typer.Argument(help="Where generator.pt and discriminator.pt go.")],
    results: Annotated[Path, typer.Option(help="DVCLive folder: metrics.json, plots/.")] = Path("results/train"),
    checkpoint: Annotated[Path, typer.Option(help="Resumable checkpoint (not a DVC output).")] = CHECKPOINT,
    classifier: Annotated[Path | None, typer.Option(help="Classifier weights: FID per epoch.")] = None,
    epochs: Annotated[int, setting_option("epochs")] = P.train.epochs,
    lr: Annotated[float, setting_option("lr")] = P.train.lr,
    batch_size: Annotated[int, setting_option("batch_size")] = P.train.batch_size,
    seed: Annotated[int, setting_option("seed")] = P.train.seed,
    device: DeviceOption = "auto",
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: one per core).")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after this many steps (smoke tests).")] = None,
    eager: Annotated[bool, typer.Option(help="On a GPU: run each step eagerly, not replayed as a CUDA graph.")] = False,
):
    """Train the GAN selected by `model` (and `loss`, `conditional`, ...) in params.yaml on normalized MNIST."""
    rank, world, dev = setup_distributed(device)
    if dev.type == "cpu":
        set_cpu_threads(threads)
    train = replace(P.train, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)  # the CLI's overrides, once
    lead = rank == 0
    probe = quality_probe(classifier, data_dir / "test.pt", train.quality_samples, train.seed, dev) if lead else None
    train_run(
        P.gan,
        train,
        P.normalize.image_size,
        load_processed(data_dir / "train.pt"),
        models_dir,
        checkpoint,
        dev,
        rank=rank,
        world=world,
        cuda_graph=not eager,
        probe=probe,
        hooks=RunLog(results, train.tensorboard) if lead else None,
        max_steps=max_steps,
    )
    if world > 1 and lead:
        typer.echo(f"ddp: {world} processes, replicas identical")
    teardown_distributed()


if __name__ == "__main__":
    run(app)
