"""The training loop: `Trainer.fit` runs the epochs, and after each one scores, shows and saves the generator.

Fast path: the whole uint8 training set lives on the training device, batches are gathered from a seeded
permutation and normalized there, and the step never waits for the host: losses are summed on the device and
read only every `log_every` steps. Batches and noise are reseeded at every epoch from (seed, epoch, rank), so a
run resumed from its checkpoint draws exactly what an uninterrupted one would, and ends with the same bytes.

After every epoch (rank 0): the best generator (the EMA one, its BatchNorm statistics recomputed), its FID if a
probe is given, its fixed-noise grid, then `generator.pt`, `discriminator.pt` and the resumable checkpoint, each
written atomically. A caller hears about it through `Hooks` (the train stage's are `outputs.tracking.RunLog`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from mnist_gan.data.pixels import to_float
from mnist_gan.errors import PipelineError
from mnist_gan.gan.checkpoints import fingerprint, settings_digest, unfinished_state
from mnist_gan.gan.ema import EMA, recalibrate_bn
from mnist_gan.gan.graphs import GraphedStep
from mnist_gan.gan.models import (
    asks_digits,
    conditioning,
    is_convolutional,
    random_labels,
    weights_file,
)
from mnist_gan.gan.parallel import check_replicas, unwrap
from mnist_gan.gan.schedules import is_constant, lr_factor
from mnist_gan.gan.step import STATS, Models, make_optimizers, plan_for, train_step
from mnist_gan.settings.configs import GANConfig, TrainConfig
from mnist_gan.storage import save_torch


class Diverged(PipelineError):
    """A loss became NaN or infinite."""


@dataclass(frozen=True)
class RunFiles:
    """Where `fit` writes: generator.pt and discriminator.pt in `folder` (DVC outputs), the resumable checkpoint
    (not one), and the settings recorded inside generator.pt with their digest (a pulled generator says how it
    was trained)."""

    folder: Path
    checkpoint: Path
    record: dict

    @property
    def generator(self) -> Path:
        return self.folder / "generator.pt"

    @property
    def discriminator(self) -> Path:
        return self.folder / "discriminator.pt"


@dataclass(frozen=True)
class Start:
    what: str  # "dcgan conditional, loss hinge, bf16 on cpu"
    epoch: int  # epochs done before this run (> 0: resumed from `checkpoint`)
    step: int
    total: int  # steps of the whole run
    checkpoint: Path
    why: str = ""  # why this precision: "bf16: this CPU runs bf16 natively ..." (runtime.precision_reason)
    images_per_step: int = 0  # batch_size x d_steps x processes


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    step: int
    means: dict[str, float]  # the epoch's mean train stats (STATS)
    fid: float | None  # the probe's FID of the best generator, None without a probe
    grid: torch.Tensor  # the best generator on the fixed inputs (fixed_inputs), float on the CPU
    nrow: int  # images per grid row: 8 (one digit per row when conditional) or 4
    images_per_s: float


class Hooks:
    """What a caller of `Trainer.fit` hears (rank 0 only); override the methods you need."""

    def start(self, start: Start) -> None:
        """Before the first epoch of this run (after any resume)."""

    def window(self, step: int, means: dict[str, float]) -> None:
        """Every log_every steps: the window's mean stats."""

    def epoch(self, end: EpochEnd) -> None:
        """After each epoch, before its files are written (so a kill in between retrains that epoch)."""

    def end(self) -> None:
        """After the last epoch, or when training stops with an error."""


def fixed_noise(latent_shape: tuple[int, ...], n: int, seed: int) -> torch.Tensor:
    """The same z on every device and every epoch (drawn on the CPU), for the per-epoch grids."""
    return torch.randn(n, *latent_shape, generator=torch.Generator().manual_seed(seed))


def fixed_inputs(latent_shape: tuple[int, ...], cfg: GANConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The per-epoch grid's (z, y): 16 noise vectors (with cluster ids drawn from their shares when
    self-conditioned), or for a conditional G one row per digit 0-9 of the same 8 noise vectors (so a column
    shows one style across digits)."""
    if not asks_digits(cfg):
        return fixed_noise(latent_shape, 16, seed), random_labels(cfg, 16, torch.Generator().manual_seed(seed + 1))
    z = fixed_noise(latent_shape, 8, seed).repeat(cfg.num_classes, *[1] * len(latent_shape))
    return z, torch.arange(cfg.num_classes).repeat_interleave(8)


def ema_decay(cfg: TrainConfig, world: int = 1) -> float:
    """The EMA's decay per step: `ema_decay`, or from `ema_kimg` (a half-life in images, StyleGAN2-ADA's rule),
    0.5 ** (images per G step / half-life). 0 = no EMA."""
    if cfg.ema_kimg is None:
        return cfg.ema_decay
    return 0.5 ** (cfg.batch_size * world / (cfg.ema_kimg * 1000))


class Trainer:
    """Models, optimizers, data and RNG of one process: `fit` trains the run, `run_epoch` one pass over its shard."""

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        images_u8: torch.Tensor,
        cfg: TrainConfig,
        device: torch.device,
        rank: int = 0,
        world: int = 1,
        labels: torch.Tensor | None = None,
        cuda_graph: bool = True,
        compile_mode: str | None = None,
        precision_why: str = "",
    ):
        """`compile_mode`: torch.compile G and D in this mode ("default", "reduce-overhead", ...); None = the
        `compile` setting's (its default mode, or none). `precision_why`: why `cfg.precision` (shown at the start;
        `runtime.precision_reason`). `build.build_trainer` is the way in: it seeds and derives every argument."""
        self.plan = plan_for(cfg, discriminator, device)  # objective, penalties, joint D pass, precision: once
        # the whole step replayed as one CUDA graph where the run allows it (gan/graphs.py)
        compile_mode = compile_mode or ("default" if cfg.compile else None)
        why = self.plan.graph_blocker(device, world, compiled=compile_mode is not None)
        self.eager_why = why if cuda_graph else "the eager step was asked for"  # None: replayed as a graph
        self.opt_g, self.opt_d = make_optimizers(generator, discriminator, cfg, capturable=self.eager_why is None)
        decay = ema_decay(cfg, world)
        self.ema = EMA(unwrap(generator), decay, cfg.ema_rampup) if decay > 0 else None
        if compile_mode is not None:
            mode = None if compile_mode == "default" else compile_mode
            generator, discriminator = torch.compile(generator, mode=mode), torch.compile(discriminator, mode=mode)
        # torch.compile's own CUDA graphs may overwrite a step's outputs at the next: each step says it begins
        self.marks_steps = compile_mode == "reduce-overhead"
        self.generator, self.discriminator = generator, discriminator  # possibly DDP-wrapped
        self.images, self.cfg, self.device, self.rank, self.world = images_u8, cfg, device, rank, world
        self.labels = labels.to(device) if labels is not None and self.g.cfg.num_classes else None
        self.latent_shape = self.g.latent_shape
        self.conv = cfg.channels_last and is_convolutional(self.g)
        self.perm_rng = torch.Generator()  # reseeded at every epoch (batches)
        self.noise_rng = torch.Generator(device=device)
        self.images_per_step = cfg.batch_size * cfg.d_steps * world  # D sees this many real images per G step
        self.steps_per_epoch = images_u8.shape[0] // self.images_per_step  # drop the ragged tail
        if self.steps_per_epoch < 1:
            raise PipelineError(
                f"batch_size {cfg.batch_size} x {world} process(es) x d_steps {cfg.d_steps} "
                f"exceeds the {images_u8.shape[0]} training images"
            )
        self.total_steps = cfg.epochs * self.steps_per_epoch  # what the learning-rate schedule spans
        self.warmup_steps = round(cfg.lr_warmup * self.steps_per_epoch)
        self.precision_why = precision_why
        self.graphed = GraphedStep(self.step) if self.eager_why is None else None

    @property
    def g(self) -> nn.Module:
        return unwrap(self.generator)

    @property
    def d(self) -> nn.Module:
        return unwrap(self.discriminator)

    def fit(self, files: RunFiles, max_steps: int | None = None, probe=None, hooks: Hooks | None = None) -> None:
        """Train `cfg.epochs` epochs (at most `max_steps` steps), resuming from `files.checkpoint` when it holds
        an unfinished state of this very run; after each epoch score (`probe.fid(generator)`, e.g.
        `evaluation.probe.QualityProbe`), show (`hooks`) and save. Raises `Diverged` on a NaN loss."""
        cfg, hooks = self.cfg, hooks or Hooks()
        total = min(cfg.epochs * self.steps_per_epoch, max_steps or 10**12)
        settings = {**asdict(cfg), **asdict(self.g.cfg), "world": self.world, "max_steps": max_steps}
        run_id = fingerprint(settings, self.data_digest())
        epoch, step, state = 0, 0, unfinished_state(files.checkpoint, run_id, total)
        if state is not None:  # resume after its last complete epoch
            self.load_state_dict(state)
            epoch, step = int(state["epoch"]), int(state["step"])
        lead = self.rank == 0
        if lead:
            hooks.start(
                Start(self.describe(), epoch, step, total, files.checkpoint, self.precision_why, self.images_per_step)
            )
        try:
            while epoch < cfg.epochs and step < total:
                epoch += 1
                started, first = time.perf_counter(), step
                means = self.run_epoch(epoch, step, max_steps, on_log=hooks.window if lead else None)
                step = min(step + self.steps_per_epoch, total)
                speed = (step - first) * self.images_per_step / (time.perf_counter() - started)
                if lead:
                    self.end_epoch(files, hooks, epoch, step, means, speed, run_id, probe)
            if self.world > 1:
                check_replicas(self.generator, self.discriminator)
        finally:
            if lead:
                hooks.end()

    def end_epoch(
        self, files: RunFiles, hooks: Hooks, epoch: int, step: int, means: dict, speed: float, run_id: str, probe
    ) -> None:
        """Rank 0 after an epoch: score, show, then save; G goes back to training mode."""
        best = self.sampling_generator()  # the EMA generator with BN statistics recomputed, when EMA is on
        fid = probe.fid(best) if probe is not None else None
        grid = self.sample(best, *fixed_inputs(self.latent_shape, self.g.cfg, self.cfg.seed))
        nrow = 8 if asks_digits(self.g.cfg) else 4
        hooks.epoch(EpochEnd(epoch, self.cfg.epochs, step, means, fid, grid, nrow, speed))
        self.save(files, best, epoch, step, run_id)
        self.g.train()

    def save(self, files: RunFiles, best: nn.Module, epoch: int, step: int, run_id: str) -> None:
        """generator.pt (the best generator, with the recorded settings), discriminator.pt, the checkpoint."""
        record = {"ema": self.ema is not None, "params": files.record, "params_digest": settings_digest(files.record)}
        save_torch({**weights_file(best), **record}, files.generator)
        save_torch(weights_file(self.d), files.discriminator)
        save_torch({**self.state_dict(), "epoch": epoch, "step": step, "run_id": run_id}, files.checkpoint)

    def describe(self) -> str:
        """One line: family, conditioning, loss, precision and device."""
        how = ", the step replayed as a CUDA graph" if self.graphed is not None else ""
        what = f"{self.g.cfg.model} {conditioning(self.g.cfg)}, loss {self.cfg.loss}"
        return f"{what}, {self.cfg.precision} on {self.device.type}{how}"

    def data_digest(self) -> str:
        """sha256 of the training images and labels: a checkpoint of other data is never resumed."""
        h = hashlib.sha256(self.images.cpu().numpy().tobytes())
        if self.labels is not None:
            h.update(self.labels.cpu().numpy().tobytes())
        return h.hexdigest()

    def batches(self, epoch: int) -> torch.Tensor:
        """Index tensors (d_steps, B) on the device for this rank's share of one epoch (the same permutation
        on every rank; rank r takes the r-th batch of each group of `world`)."""
        n, b, k = self.images.shape[0], self.cfg.batch_size, self.cfg.d_steps
        self.perm_rng.manual_seed(self.cfg.seed * 1_000_003 + epoch)
        self.noise_rng.manual_seed((self.cfg.seed * 1_000_003 + epoch) * 4096 + self.rank + 1)
        perm = torch.randperm(n, generator=self.perm_rng)
        perm = perm[: self.steps_per_epoch * k * b * self.world].view(self.steps_per_epoch, k, self.world, b)
        return perm[:, :, self.rank].to(self.device, non_blocking=True)

    def run_epoch(self, epoch: int, first_step: int, max_steps: int | None = None, on_log=None) -> dict[str, float]:
        """Train one epoch; return its mean stats. Calls on_log(step, window_means) every log_every steps."""
        cfg, dev = self.cfg, self.device
        window = torch.zeros(len(STATS), device=dev)  # summed on the device: no per-step host sync
        total = torch.zeros(len(STATS), device=dev)
        first_bad = torch.full((), -1, dtype=torch.long, device=dev)
        step_t = torch.full((), first_step, dtype=torch.long, device=dev)
        in_window, done = 0, 0
        for idx in self.batches(epoch):
            z = torch.randn(*idx.shape, *self.latent_shape, device=dev, generator=self.noise_rng)
            number = first_step + done  # this step's place in the whole run (0-based)
            if not is_constant(cfg.lr_schedule, self.warmup_steps):
                self.set_lr(lr_factor(cfg.lr_schedule, self.warmup_steps, number, self.total_steps))
            stats = self.graphed(idx, z) if self.graphed is not None else self.step(idx, z, number=number)
            if self.ema is not None:
                self.ema.update(self.g, first_step + done)
            step_t += 1
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(stats[:2]).all(), step_t, first_bad)
            window += stats
            in_window += 1
            done += 1
            last = done == self.steps_per_epoch or (max_steps is not None and first_step + done >= max_steps)
            if in_window == cfg.log_every or last:
                bad = int(first_bad)  # the one host sync of the window
                if bad >= 0:
                    raise Diverged(
                        f"loss became NaN or infinite at epoch {epoch}, step {bad}; "
                        f"kept the checkpoint of the last complete epoch (try a lower lr)"
                    )
                total += window
                if on_log is not None:
                    on_log(first_step + done, dict(zip(STATS, (window / in_window).tolist(), strict=True)))
                window.zero_()
                in_window = 0
            if last:
                break
        return dict(zip(STATS, (total / done).tolist(), strict=True))

    def step(
        self,
        idx: torch.Tensor,
        z: torch.Tensor,
        in_graph: bool = False,
        number: int = 0,
        regularize: bool | None = None,
    ) -> torch.Tensor:
        """One `train_step` on the training images at `idx` (d_steps, B) with noise `z`: the stats (STATS) stacked.
        `in_graph`: autocast without its weight cache, as a CUDA graph capture needs (same values). `number`: the
        step's place in the run, which decides whether a lazy penalty applies (every `reg_every`-th step);
        `regularize` overrides that (False: the objective's step alone, e.g. to count its FLOPs)."""
        real = to_float(self.images[idx])  # (d_steps, B, C, H, W)
        if self.conv:
            real = real.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(real.shape)
        y = None if self.labels is None else self.labels[idx]
        models = Models(self.generator, self.discriminator, self.opt_g, self.opt_d)
        regularize = number % self.cfg.reg_every == 0 if regularize is None else regularize
        if self.marks_steps:
            torch.compiler.cudagraph_mark_step_begin()
        stats = train_step(models, real, z, y, self.plan, regularize, self.noise_rng, cache=not in_graph)
        return torch.stack(list(stats.values()))

    def set_lr(self, factor: float) -> None:
        """Both optimizers' learning rates at `factor` x their settings (lr, lr x lr_d_ratio); in place where a CUDA
        graph reads them as tensors."""
        for opt, base in ((self.opt_g, self.cfg.lr), (self.opt_d, self.cfg.lr * self.cfg.lr_d_ratio)):
            for group in opt.param_groups:
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(base * factor)
                else:
                    group["lr"] = base * factor

    def sampling_generator(self) -> nn.Module:
        """The generator that samples best, ready to sample: the EMA generator with its BatchNorm statistics
        recomputed when EMA is on, else G itself. Eval mode; call `self.g.train()` before training on."""
        if self.ema is None:
            return self.g.eval()
        recalibrate_bn(self.ema.model, self.cfg.ema_bn_batches, self.cfg.batch_size, self.cfg.seed)
        return self.ema.model

    @torch.no_grad()
    def sample(self, generator: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """generator(z, y) (e.g. sampling_generator()) under the training precision, as float on the CPU."""
        with self.plan.autocast():
            return generator(z.to(self.device), None if y is None else y.to(self.device)).float().cpu()

    # -- checkpoints: everything needed to continue bit for bit -----------------------------------------
    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state()}  # batches and noise are reseeded per epoch (batches())
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        state = {
            "generator": self.g.state_dict(),
            "discriminator": self.d.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": rng,
        }
        if self.ema is not None:
            state["ema"] = self.ema.model.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.g.load_state_dict(state["generator"])
        self.d.load_state_dict(state["discriminator"])
        for opt, key in ((self.opt_g, "opt_g"), (self.opt_d, "opt_d")):
            opt.load_state_dict(state[key])
            for group in opt.param_groups:  # a checkpoint from another device or step mode: this run's own
                group["capturable"] = self.graphed is not None
                if self.graphed is not None and not isinstance(group["lr"], torch.Tensor):
                    group["lr"] = torch.tensor(group["lr"], device=self.device)
        if self.ema is not None:
            self.ema.model.load_state_dict(state["ema"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
