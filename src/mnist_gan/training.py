"""The GAN training step and what the train stage loops over: data on the device, RNG, EMA, checkpoints.

Update order is that of pytorch/examples dcgan/main.py: first D on a real batch and on G(z).detach(), then
G through D(G(z)). The objective comes from `losses.OBJECTIVES` by name; a regularizer (R1, WGAN-GP's
gradient penalty) adds its term to D's loss, and WGAN-GP takes `d_steps` critic updates per G update.

Fast path: the whole uint8 training set lives on the training device, batches are gathered from a seeded
permutation and normalized there, and the step never waits for the host: losses are summed on the device
and read only every `log_every` steps. bf16 autocast where the device runs it natively (`precision`).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import torch
from torch import nn

from mnist_gan.configs import GANConfig, TrainConfig
from mnist_gan.ema import EMA, recalibrate_bn
from mnist_gan.losses import OBJECTIVES, REGULARIZERS, Regularizer, penalty_weights
from mnist_gan.models import asks_digits, has_batch_stats, is_convolutional, random_labels
from mnist_gan.parallel import unwrap
from mnist_gan.pixels import to_float
from mnist_gan.storage import PipelineError

STATS = ("loss_d", "loss_g", "d_real", "d_fake")  # d_real / d_fake: D's mean score (the loss's own reading)


class Diverged(PipelineError):
    """A loss became NaN or infinite."""


def train_step(generator: nn.Module, discriminator: nn.Module, opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer, real: torch.Tensor, z: torch.Tensor, cfg: TrainConfig,
               y: torch.Tensor | None = None, autocast=contextlib.nullcontext, joint_d: bool = False,
               rng: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """One G update after cfg.d_steps D updates; returns detached stats (stats of the last D update).

    real: (d_steps, B, C, H, W) in [-1, 1]; z: (d_steps, B, *latent); y: labels (d_steps, B) or None.
    joint_d: score real and fake in one D pass. Same maths when D has no batch statistics (no BatchNorm),
    half the per-call overhead, which is what bounds small MLPs.
    """
    objective = OBJECTIVES[cfg.loss]
    labels = [None] * len(real) if y is None else list(y)
    # (1) Update D: e.g. maximize log D(x) + log(1 - D(G(z))) for bce
    for x, noise, lab in zip(real, z, labels):
        opt_d.zero_grad(set_to_none=True)
        with autocast():
            fake = generator(noise, lab)
            if joint_d:
                both = None if lab is None else torch.cat([lab, lab])
                logits_real, logits_fake = discriminator(torch.cat([x, fake.detach()]), both).float().chunk(2)
            else:
                logits_real = discriminator(x, lab).float()
                logits_fake = discriminator(fake.detach(), lab).float()
            loss_d = objective.d_loss(logits_real, logits_fake)
            for weight, regularizer in active_regularizers(cfg):
                loss_d = loss_d + regularizer.scale * weight * regularizer.penalty(discriminator, x, fake, lab, rng)
        loss_d.backward()
        opt_d.step()

    # (2) Update G: e.g. maximize log D(G(z)) for bce, on the last D update's fakes
    opt_g.zero_grad(set_to_none=True)
    with autocast():
        loss_g = objective.g_loss(discriminator(fake, lab).float())
    loss_g.backward()
    opt_g.step()

    return {
        "loss_d": loss_d.detach().float(),
        "loss_g": loss_g.detach().float(),
        "d_real": objective.score(logits_real.detach()).mean(),
        "d_fake": objective.score(logits_fake.detach()).mean(),
    }


def active_regularizers(cfg: TrainConfig) -> list[tuple[float, Regularizer]]:
    """(weight, regularizer) of every penalty whose weight in `cfg` is > 0, in REGULARIZERS order."""
    return [(getattr(cfg, r.weight), r) for r in REGULARIZERS.values() if getattr(cfg, r.weight) > 0]


NUM_CLASSES = 10  # MNIST digits: what `conditional: true` conditions on


def gan_config(gan: GANConfig, train: TrainConfig, image_size: int,
               class_prior: list[float] | None = None) -> GANConfig:
    """The networks' settings completed with their derived fields: `image_size` (normalize.image_size), the
    classes (10 digits when conditional; one per cluster for a self-conditioned model, whose cluster shares are
    `class_prior`), and D's BatchNorm, kept (the seeds') unless something needs per-sample outputs: spectral norm
    (SN-GAN's D has none) or any penalty on D's input gradients (WGAN-GP's, R1)."""
    penalties = any(v > 0 for v in penalty_weights(train).values())
    return replace(gan, image_size=image_size, d_batchnorm=not (gan.spectral_norm or penalties),
                   num_classes=NUM_CLASSES if train.conditional else len(class_prior or ()),
                   class_prior=None if train.conditional else class_prior)


def train_config(train: TrainConfig, precision: str, **overrides) -> TrainConfig:
    """The trainer's config: `precision` resolved for the device (runtime.resolve_precision), the penalty weights
    resolved (losses.penalty_weights), and CLI options given in `overrides` (checked by their settings' rules)."""
    return replace(train, **{**penalty_weights(train), **overrides, "precision": precision})


def make_optimizers(generator: nn.Module, discriminator: nn.Module, cfg: TrainConfig):
    betas = (cfg.beta1, cfg.beta2)
    # fused: one kernel for the whole update instead of several per parameter (the MLP GAN is overhead-bound;
    # +17% img/s measured here); elementwise, so still deterministic. foreach where fused is unsupported.
    device = next(generator.parameters()).device.type
    kind = {"fused": True} if device in ("cpu", "cuda") else {"foreach": True}
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=betas, **kind)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d or cfg.lr, betas=betas, **kind)
    return opt_g, opt_d


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


def autocast_for(precision: str, device: torch.device):
    """A context manager factory: bf16 autocast on `device`, or nothing for fp32."""
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


class Trainer:
    """Models, optimizers, data and RNG of one process; `run_epoch` trains one pass over its shard."""

    def __init__(self, generator, discriminator, images_u8: torch.Tensor, cfg: TrainConfig,
                 device: torch.device, rank: int = 0, world: int = 1, labels: torch.Tensor | None = None):
        self.opt_g, self.opt_d = make_optimizers(generator, discriminator, cfg)
        self.ema = EMA(unwrap(generator), cfg.ema_decay, cfg.ema_rampup) if cfg.ema_decay > 0 else None
        if cfg.compile:
            generator, discriminator = torch.compile(generator), torch.compile(discriminator)
        self.generator, self.discriminator = generator, discriminator  # possibly DDP-wrapped
        self.images, self.cfg, self.device, self.rank, self.world = images_u8, cfg, device, rank, world
        self.labels = labels.to(device) if labels is not None and self.g.cfg.num_classes else None
        self.latent_shape = self.g.latent_shape
        # one D pass over real + fake: same maths without batch statistics; a penalty needs its own pass
        self.joint_d = not has_batch_stats(discriminator) and not active_regularizers(cfg)
        self.conv = cfg.channels_last and is_convolutional(self.g)
        # Reseeded at every epoch from (seed, epoch[, rank]): batches and noise are a pure function of where
        # training is, so a resumed run (any number of processes) draws exactly what an uninterrupted one would.
        self.perm_rng = torch.Generator()
        self.noise_rng = torch.Generator(device=device)
        per_step = cfg.batch_size * world * cfg.d_steps
        self.steps_per_epoch = images_u8.shape[0] // per_step  # drop the ragged tail
        if self.steps_per_epoch < 1:
            raise PipelineError(f"batch_size {cfg.batch_size} x {world} process(es) x d_steps {cfg.d_steps} "
                                f"exceeds the {images_u8.shape[0]} training images")
        self.autocast = autocast_for(cfg.precision, device)

    def batches(self, epoch: int):
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
            real = to_float(self.images[idx])  # (d_steps, B, C, H, W)
            if self.conv:
                real = real.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(real.shape)
            y = None if self.labels is None else self.labels[idx]
            z = torch.randn(*idx.shape, *self.latent_shape, device=dev, generator=self.noise_rng)
            stats = torch.stack(list(train_step(self.generator, self.discriminator, self.opt_g, self.opt_d,
                                                  real, z, cfg, y, self.autocast, self.joint_d,
                                                  self.noise_rng).values()))
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
                    raise Diverged(f"loss became NaN or infinite at epoch {epoch}, step {bad}; "
                                   f"kept the checkpoint of the last complete epoch (try a lower lr)")
                total += window
                if on_log is not None:
                    on_log(first_step + done, dict(zip(STATS, (window / in_window).tolist())))
                window.zero_()
                in_window = 0
            if last:
                break
        return dict(zip(STATS, (total / done).tolist()))

    @property
    def g(self) -> nn.Module:
        return unwrap(self.generator)

    @property
    def d(self) -> nn.Module:
        return unwrap(self.discriminator)

    def best_generator(self) -> nn.Module:
        """The generator that samples best, ready to sample: the EMA generator with its BatchNorm statistics
        recomputed when EMA is on, else G itself. Eval mode; call `self.g.train()` before training on."""
        if self.ema is None:
            return self.g.eval()
        recalibrate_bn(self.ema.model, self.cfg.ema_bn_batches, self.cfg.batch_size, self.cfg.seed)
        return self.ema.model

    @torch.no_grad()
    def sample(self, generator: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """generator(z, y) (e.g. best_generator()) under the training precision, as float on the CPU."""
        with self.autocast():
            return generator(z.to(self.device), None if y is None else y.to(self.device)).float().cpu()

    # -- checkpoints: everything needed to continue bit for bit -----------------------------------------
    def state_dict(self) -> dict:
        rng = {"torch": torch.get_rng_state()}  # batches and noise are reseeded per epoch (see __init__)
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        state = {"generator": self.g.state_dict(), "discriminator": self.d.state_dict(),
                 "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "rng": rng}
        if self.ema is not None:
            state["ema"] = self.ema.model.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.g.load_state_dict(state["generator"])
        self.d.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.ema is not None:
            self.ema.model.load_state_dict(state["ema"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
