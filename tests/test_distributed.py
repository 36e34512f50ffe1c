"""Several processes through torchrun (DistributedDataParallel over gloo on the CPU)."""

import sys

import pytest
import torch

from tests.conftest import ROOT, run


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path, tiny_data):
    out = tmp_path / "models"
    log = run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "stages.train",
            str(tiny_data),
            str(out),
            "--results",
            str(tmp_path / "results"),
            "--checkpoint",
            str(out / "checkpoint.pt"),
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--device",
            "cpu",
        ],
        ROOT,
    ).output
    assert "ddp: 2 processes, replicas identical" in log  # all_gather of both models' full state
    assert log.count("epoch 2/2:") == 1, log  # only rank 0 logs
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "discriminator.pt", "generator.pt"]
    assert sorted(p.name for p in (tmp_path / "results" / "plots" / "images" / "fixed_noise").iterdir()) == [
        "epoch_001.png",
        "epoch_002.png",
    ]
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and state["step"] == 2 * (256 // (32 * 2))  # each rank saw half of each epoch
    rows = (tmp_path / "results" / "plots" / "metrics" / "train" / "loss_d.tsv").read_text().splitlines()
    assert len(rows) == 1 + 2  # header + one logged point per epoch (4 steps < log_every), written once
