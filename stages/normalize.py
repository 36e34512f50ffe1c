"""Turn the raw idx files into uint8 tensors ready for training (x = u8 / 127.5 - 1 gives [-1, 1])."""

from pathlib import Path
from typing import Annotated

import typer

from mnist_gan.data.mnist import load_split
from mnist_gan.data.pixels import resize_uint8
from mnist_gan.stage import params_or_exit, run, setting_option
from mnist_gan.storage import save_torch

P = params_or_exit()
app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    raw_root: Annotated[Path, typer.Argument(help="Folder holding MNIST/raw/ (torchvision's layout).")],
    out_dir: Annotated[Path, typer.Argument(help="Where train.pt and test.pt go.")],
    image_size: Annotated[int, setting_option("normalize.image_size")] = P.normalize.image_size,
    max_train_images: Annotated[int, setting_option("normalize.max_train_images")] = P.normalize.max_train_images,
):
    """Load MNIST with torchvision's own loader and save {images: uint8 (N,1,S,S), labels: int64 (N,)}."""
    for split, train in (("train", True), ("test", False)):
        images, labels = load_split(raw_root, train=train)
        if train and max_train_images:
            images, labels = images[:max_train_images], labels[:max_train_images]
        images = resize_uint8(images, image_size)
        save_torch({"images": images, "labels": labels}, out_dir / f"{split}.pt")
        typer.echo(f"normalize: {split}.pt  {tuple(images.shape)} uint8, labels {tuple(labels.shape)}")


if __name__ == "__main__":
    run(app)
