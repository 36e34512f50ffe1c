"""benchmarks/gpu_check.py on the CPU: every section runs on a slice of real MNIST, so the check still works the
day it meets a GPU (where the CUDA graph rows and the compile section run too)."""

from __future__ import annotations

import gzip
import json
import math
import subprocess

import pytest
import torch

from benchmarks.gpu_check import raw_root
from mnist_gan.data.mnist import MNIST_MD5, DataError
from mnist_gan.gan.build import build_trainer
from mnist_gan.gan.graphs import graph_unsupported
from tests.conftest import DEFAULTS, PY, ROOT


def test_quick_check_runs_every_section_on_the_cpu(tmp_path, raw_mnist):
    gz = tmp_path / "gz"  # the files as first published, gzipped: what travels to a GPU machine
    gz.mkdir()
    for name in MNIST_MD5:
        (gz / f"{name}.gz").write_bytes(gzip.compress((raw_mnist / "MNIST" / "raw" / name).read_bytes(), 1))
    out = tmp_path / "out"
    cmd = ["benchmarks.gpu_check", "--device", "cpu", "--quick", "--out", str(out), "--raw", str(gz)]
    done = subprocess.run(PY + [*cmd, "--variant", "seed=7"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    record = json.loads((out / "gpu_check.json").read_text())
    sections = record["sections"]
    assert list(sections) == ["machine", "data", "speed", "classifier", "full_run", "determinism", "export", "study"]
    assert all(s["status"] == "ok" for s in sections.values()), {k: s.get("error") for k, s in sections.items()}
    rows = sections["speed"]["default"]
    assert "fp32 eager" in rows and all(r["img_s"] > 0 for r in rows.values())
    assert sections["speed"]["seeds_loop"]["reference_img_s"] > 0
    assert 0 < sections["classifier"]["test_accuracy"] <= 1
    run = sections["full_run"]
    assert run["step"].startswith("eager (CUDA graphs need a CUDA device")
    assert math.isfinite(run["generated"]["fid"]) and 0 <= run["generated"]["label_accuracy"] <= 1
    assert [e["epoch"] for e in run["epochs"]] == [1]
    assert sections["determinism"]["repeatable"] is True  # same params twice on the CPU: the same bytes
    assert sections["export"]["onnxruntime_vs_torch_cpu_max_abs"] < 1e-4
    assert sections["export"]["safetensors_bitwise"] is True
    assert "seed=7" in sections["study"] and math.isfinite(sections["study"]["seed=7"]["generated"]["fid"])
    summary = (out / "gpu_check.txt").read_text()
    assert "machine: CPU" in summary and "evaluate (200 samples" in summary
    assert (out / "gpu_per_class.png").stat().st_size > 0


def test_raw_files_are_verified(tmp_path, raw_mnist):
    src = tmp_path / "src"
    src.mkdir()
    for name in MNIST_MD5:
        (src / name).write_bytes((raw_mnist / "MNIST" / "raw" / name).read_bytes())
    (src / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + bytes(12))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte is corrupt"):
        raw_root(src, tmp_path / "work")


def test_graph_unsupported_says_why():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert "CUDA device" in graph_unsupported(cpu, 1)
    assert "DDP" in graph_unsupported(cuda, 2)
    assert "compile" in graph_unsupported(cuda, 1, compiled=True)
    assert "gradient penalty" in graph_unsupported(cuda, 1, draws="the gradient penalty's random interpolates")
    assert "lazy regularization" in graph_unsupported(cuda, 1, lazy=True)
    assert graph_unsupported(cuda, 1) is None


def test_cpu_trainer_stays_eager_and_says_so():
    data = {"images": torch.randint(0, 256, (256, 1, 28, 28), dtype=torch.uint8), "labels": torch.arange(256) % 10}
    trainer = build_trainer(DEFAULTS.gan, DEFAULTS.train, 28, data, torch.device("cpu"))
    assert trainer.graphed is None and "CUDA device" in trainer.eager_why
    assert "CUDA graph" not in trainer.describe()
