"""Shared fixtures: real MNIST (fetched once into the user cache) and tiny datasets made from it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from mnist_gan.data import fetch_raw, load_split
from mnist_gan.storage import save_torch

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@pytest.fixture(scope="session")
def raw_mnist(tmp_path_factory) -> Path:
    """Folder holding MNIST/raw/ with the four verified idx files (real MNIST, from ~/.cache/mnist-gan)."""
    root = tmp_path_factory.mktemp("mnist")
    fetch_raw("auto", root / "MNIST" / "raw", timeout=5, log=lambda *_: None)
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, raw_mnist) -> Path:
    """A processed-data folder like the normalize stage writes, with 256 train and 128 test images."""
    out = tmp_path_factory.mktemp("processed")
    for split, train, n in (("train", True, 256), ("test", False, 128)):
        images, labels = load_split(raw_mnist, train=train)
        save_torch({"images": images[:n].clone(), "labels": labels[:n].clone()}, out / f"{split}.pt")
    return out


def copy_project(dest: Path) -> Path:
    """The git-tracked files of this checkout (plus uncommitted edits) in `dest`, as a fresh git repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest


def set_params(project: Path, **changes) -> None:
    """Edit params.yaml in `project`; keys like "normalize.max_train_images"."""
    import yaml

    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        *sections, leaf = key.split(".")
        node = params
        for s in sections:
            node = node[s]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def tiny_images(n: int = 8, size: int = 28) -> torch.Tensor:
    return torch.rand(n, 1, size, size) * 2 - 1
