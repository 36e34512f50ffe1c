"""What the train stage shows and logs while `Trainer.fit` runs: a progress bar and one line per epoch on the
console, DVCLive curves, metrics and per-epoch grids (and TensorBoard, seed 002's logger).

DVCLive runs with `dvcyaml=False`: dvc.yaml declares the metrics and plots itself (with `cache: false`), so
a run-cache hit cannot leave `dvc exp show` with stale numbers.
"""

from __future__ import annotations

import time
from pathlib import Path

from dvclive import Live
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mnist_gan.gan.trainer import EpochEnd, Hooks, Start
from mnist_gan.outputs.curves import TRAINING
from mnist_gan.outputs.images import image_grid


def trim_history(live_dir: Path, step: int) -> None:
    """Drop DVCLive rows logged after `step` (by a run killed after its last checkpoint), before resuming."""
    for tsv in (Path(live_dir) / "plots" / "metrics").rglob("*.tsv"):
        lines = tsv.read_text().splitlines(keepends=True)
        header, rows = lines[:1], lines[1:]
        col = header[0].rstrip("\n").split("\t").index("step") if header else 0
        kept = [r for r in rows if int(float(r.split("\t")[col])) <= step]
        if len(kept) != len(rows):
            tsv.write_text("".join(header + kept))


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def stats_line(values: dict[str, float]) -> str:
    """`loss_d 0.4449  loss_g 1.4961  ...` with each stat's registry label and format."""
    return "  ".join(f"{TRAINING[k].short} {TRAINING[k].format(v)}" for k, v in values.items())


class RunLog(Hooks):
    """The train stage's `Hooks`: DVCLive (and TensorBoard) files in `folder`, the console for people."""

    def __init__(self, folder: Path, tensorboard: bool, console: Console | None = None):
        self.folder, self.tensorboard = Path(folder), tensorboard
        self.console = console or Console(soft_wrap=True, markup=False, highlight=False)
        self.live = self.tboard = self.bar = None

    def start(self, start: Start) -> None:
        """Continue the curves of a resumed run (trimmed to its checkpoint first), or start them afresh."""
        if start.epoch:
            self.console.print(f"resuming from {start.checkpoint}: {start.epoch} epoch(s), {start.step} steps done")
            trim_history(self.folder, start.step)
        self.console.print(f"train: {start.what}, {start.total - start.step} steps to go")
        if start.why:
            self.console.print(f"precision {start.why}")
        self.start_info, self.timed = start, []  # (time, step) of the first windows: the ETA
        self.live = Live(str(self.folder), dvcyaml=False, save_dvc_exp=False, resume=start.epoch > 0)
        if self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tboard = SummaryWriter(str(self.folder / "tensorboard"))
        stats = TextColumn("{task.fields[stats]}")
        columns = (TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), stats, TimeRemainingColumn())
        self.bar = Progress(*columns, console=self.console, transient=True)
        self.task = self.bar.add_task("train", total=start.total, completed=start.step, stats="")
        self.bar.start()

    def window(self, step: int, means: dict[str, float]) -> None:
        """Means over the last log_every steps, as train/<stat>."""
        self.eta(step)
        shown = "  ".join(f"{TRAINING['train/' + k].short} {v:.3f}" for k, v in means.items())
        self.bar.update(self.task, completed=step, stats=shown)
        self.live.step = step
        for k, v in means.items():
            self.live.log_metric(f"train/{k}", v)
            if self.tboard is not None:
                self.tboard.add_scalar(f"train/{k}", v, step)

    def eta(self, step: int) -> None:
        """Once, at the second window: the steps left at the speed of the steps between the first two windows
        (the first window pays for warm-up), so the user knows the wait before the first epoch ends."""
        self.timed.append((time.perf_counter(), step))
        if len(self.timed) != 2:
            return
        (t0, s0), (t1, s1) = self.timed
        rate = (s1 - s0) / max(t1 - t0, 1e-9)
        left = (self.start_info.total - s1) / rate
        per_s = rate * self.start_info.images_per_step
        self.console.print(
            f"eta: about {duration(left)} of training steps left ({per_s:.0f} img/s over steps "
            f"{s0}-{s1}), plus a few seconds per epoch for its FID, grid and saves"
        )

    def epoch(self, end: EpochEnd) -> None:
        """The epoch's mean stats, its FID (quality/fid) and the fixed-noise grid; then the summary file."""
        for k, v in end.means.items():
            self.live.log_metric(f"epoch_mean/{k}", v)
        if end.fid is not None:
            self.live.log_metric("quality/fid", end.fid)
        self.live.log_metric("epochs", end.epoch, plot=False)
        self.live.log_image(f"fixed_noise/epoch_{end.epoch:03d}.png", image_grid(end.grid, nrow=end.nrow))
        self.live.make_summary()
        if self.tboard is not None:
            self.tboard.add_images("fixed_noise", end.grid.add(1).div(2), end.epoch)
        shown = {f"train/{k}": v for k, v in end.means.items()} | (
            {"quality/fid": end.fid} if end.fid is not None else {}
        )
        self.console.print(f"epoch {end.epoch}/{end.epochs}: {stats_line(shown)}  ({end.images_per_s:.0f} img/s)")

    def end(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop the bar and close the files (also after an error, so the console is left clean)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if self.live is not None:
            self.live.end()
            self.live = None
        if self.tboard is not None:
            self.tboard.close()
            self.tboard = None
