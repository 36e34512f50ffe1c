"""Score the generator against real MNIST in the classifier's feature space, beside the real-vs-real floor."""

import json
from pathlib import Path
from typing import Annotated

import torch
import torch.nn.functional as F
import typer

from mnist_gan.classifier import load_classifier, predict
from mnist_gan.cli import checked, params_or_exit, run
from mnist_gan.data import load_split, to_float
from mnist_gan.metrics import class_coverage, nearest_training_images, summarize
from mnist_gan.report import class_grid, pairs_grid, save_png
from mnist_gan.sampling import generate, load_generator
from mnist_gan.storage import write_text
from mnist_gan.utils import pick_device, set_cpu_threads

P = params_or_exit()["evaluate"]
app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    weights: Annotated[Path, typer.Argument(help="Generator weights file.")],
    classifier: Annotated[Path, typer.Argument(help="Classifier weights (classifier stage).")],
    raw_root: Annotated[Path, typer.Argument(help="Folder holding MNIST/raw/.")],
    out_dir: Annotated[Path, typer.Argument(help="Where metrics.json, classes.json and images go.")],
    n_samples: Annotated[int, typer.Option(help="Generated images to score.", callback=checked("evaluate.n_samples"))]
    = P["n_samples"],
    seed: Annotated[int, typer.Option(help="Noise seed.", callback=checked("evaluate.seed"))] = P["seed"],
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | mps; not a DVC param.")] = "auto",
):
    """Generate `n_samples` images and compute FID, classifier score, coverage, precision/recall, memorization."""
    dev = pick_device(device)
    if dev.type == "cpu":
        set_cpu_threads(None)
    model = load_classifier(classifier, dev)
    samples = generate(load_generator(weights, dev), n_samples, seed)
    if samples.shape[-1] != 28:  # dcgan64: score at MNIST's own resolution, like the classifier saw it
        samples = F.interpolate(samples, size=(28, 28), mode="bilinear", antialias=True).clamp(-1, 1)
    train_u8, _ = load_split(raw_root, train=True)
    test_u8, _ = load_split(raw_root, train=False)
    # the floor: as many real training images as samples, scored against the same test set
    real = to_float(train_u8[torch.randperm(len(train_u8), generator=torch.Generator().manual_seed(seed))[:n_samples]])

    test_feats, _ = predict(model, test_u8)
    fake_feats, fake_probs = predict(model, samples)
    real_feats, real_probs = predict(model, real)
    train_images = to_float(train_u8)
    fake_nn, fake_nn_idx = nearest_training_images(samples, train_images)
    test_nn, _ = nearest_training_images(to_float(test_u8[:n_samples]), train_images)  # same sample size

    metrics = {"generated": summarize(fake_probs, fake_feats, test_feats, P["nearest_k"]),
               "real_floor": summarize(real_probs, real_feats, test_feats, P["nearest_k"])}
    metrics["generated"].update(nn_dist_mean=float(fake_nn.mean()), nn_dist_min=float(fake_nn.min()),
                                closer_than_test_1pct=float((fake_nn < test_nn.quantile(0.01)).double().mean()))
    metrics["real_floor"].update(nn_dist_mean=float(test_nn.mean()), nn_dist_min=float(test_nn.min()),
                                 closer_than_test_1pct=0.01)
    write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    classes = {"generated": class_coverage(fake_probs)["histogram"], "real": class_coverage(real_probs)["histogram"]}
    write_text(out_dir / "classes.json", json.dumps(classes, indent=2) + "\n")

    save_png(class_grid(samples, fake_probs), out_dir / "per_class.png")
    closest = fake_nn.argsort()[: P["n_pairs"]]
    save_png(pairs_grid(samples[closest], train_images[fake_nn_idx[closest]]), out_dir / "nearest.png")
    g, r = metrics["generated"], metrics["real_floor"]
    typer.echo(f"evaluate: FID {g['fid']:.2f} (real floor {r['fid']:.2f}), score {g['classifier_score']:.2f} "
               f"(real {r['classifier_score']:.2f}), classes {g['classes_covered']}/10, "
               f"precision {g['precision']:.3f}, recall {g['recall']:.3f}")


if __name__ == "__main__":
    run(app)
