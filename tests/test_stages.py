"""Each stage's Typer CLI on tiny data (pytorch/examples' smoke-test style: a few steps, then check outputs)."""

import json

import torch

from mnist_gan.data.mnist import verify_raw
from mnist_gan.gan.sampling import load_generator
from stages import fetch, normalize, sample, train
from tests.conftest import cli

runner = cli()


def invoke(app, *args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_fetch_from_a_local_folder(tmp_path, raw_mnist):
    invoke(fetch.app, tmp_path / "raw", "--source", raw_mnist / "MNIST" / "raw")
    verify_raw(tmp_path / "raw")


def test_normalize_writes_uint8_tensors(tmp_path, raw_mnist):
    invoke(normalize.app, raw_mnist, tmp_path, "--image-size", 28, "--max-train-images", 100)
    train_set = torch.load(tmp_path / "train.pt", weights_only=True)
    assert train_set["images"].shape == (100, 1, 28, 28) and train_set["images"].dtype == torch.uint8
    assert torch.load(tmp_path / "test.pt", weights_only=True)["labels"].shape == (10000,)


def test_normalize_resizes_for_dcgan64(tmp_path, raw_mnist):
    invoke(normalize.app, raw_mnist, tmp_path, "--image-size", 64, "--max-train-images", 10)
    assert torch.load(tmp_path / "train.pt", weights_only=True)["images"].shape == (10, 1, 64, 64)


def test_train_then_sample(tmp_path, tiny_data):
    """The train and sample commands in-process (their options); evaluate, classifier and report run as real
    processes in the tiny `dvc repro` (tests/test_pipeline.py), whose outputs are checked there."""
    models, results = tmp_path / "models", tmp_path / "results"
    invoke(
        train.app,
        tiny_data,
        models,
        "--results",
        results / "train",
        "--checkpoint",
        models / "ck.pt",
        "--epochs",
        2,
        "--batch-size",
        32,
        "--max-steps",
        10,
    )
    assert (models / "generator.pt").is_file() and (models / "discriminator.pt").is_file()
    metrics = json.loads((results / "train" / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and set(metrics["train"]) == {"loss_d", "loss_g", "d_real", "d_fake"}
    grids = sorted((results / "train" / "plots" / "images" / "fixed_noise").glob("*.png"))
    assert [g.name for g in grids] == ["epoch_001.png", "epoch_002.png"]

    out = results / "sample" / "grid.png"
    invoke(sample.app, "--weights", models / "generator.pt", "--out", out, "--n", 16, "--seed", 3)
    assert out.is_file() and (results / "sample" / "grid_figure.png").is_file()
    drawn = torch.load(results / "sample" / "grid.pt", weights_only=True)
    assert drawn["images"].shape == (16, 1, 28, 28) and drawn["images"].dtype == torch.uint8
    assert load_generator(models / "generator.pt").cfg.model == "dcgan"


def test_option_outside_its_range_is_a_usage_error(tmp_path, tiny_data):
    result = runner.invoke(train.app, [str(tiny_data), str(tmp_path), "--lr", "-1"])
    assert result.exit_code == 2
    assert "lr = -1.0 is not allowed" in result.output
    assert not (tmp_path / "generator.pt").exists()
