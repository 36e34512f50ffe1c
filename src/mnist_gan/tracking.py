"""What the train stage logs: DVCLive curves, metrics and per-epoch grids (and TensorBoard, seed 002's logger).

DVCLive runs with `dvcyaml=False`: dvc.yaml declares the metrics and plots itself (with `cache: false`), so
a run-cache hit cannot leave `dvc exp show` with stale numbers.
"""

from __future__ import annotations

from pathlib import Path

import torch
from dvclive import Live

from mnist_gan.images import image_grid


class RunLog:
    """Rank 0's loggers; `resume` continues the curves of an interrupted run (already trimmed to its checkpoint)."""

    def __init__(self, folder: Path, resume: bool, tensorboard: bool):
        self.live = Live(str(folder), dvcyaml=False, save_dvc_exp=False, resume=resume)
        self.tboard = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tboard = SummaryWriter(str(Path(folder) / "tensorboard"))

    def window(self, step: int, means: dict[str, float]) -> None:
        """Means over the last log_every steps, as train/<stat>."""
        self.live.step = step
        for k, v in means.items():
            self.live.log_metric(f"train/{k}", v)
            if self.tboard is not None:
                self.tboard.add_scalar(f"train/{k}", v, step)

    def epoch(self, epoch: int, means: dict[str, float], grid: torch.Tensor, nrow: int, fid: float | None) -> None:
        """The epoch's mean stats, its FID (quality/fid) and the fixed-noise grid; then the summary file."""
        for k, v in means.items():
            self.live.log_metric(f"epoch_mean/{k}", v)
        if fid is not None:
            self.live.log_metric("quality/fid", fid)
        self.live.log_metric("epochs", epoch, plot=False)
        self.live.log_image(f"fixed_noise/epoch_{epoch:03d}.png", image_grid(grid, nrow=nrow))
        self.live.make_summary()
        if self.tboard is not None:
            self.tboard.add_images("fixed_noise", grid.add(1).div(2), epoch)

    def close(self) -> None:
        self.live.end()
        if self.tboard is not None:
            self.tboard.close()
