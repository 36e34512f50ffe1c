"""Models on the device and across processes: channels-last layouts, DistributedDataParallel under torchrun,
and the end-of-run check that every replica holds the same weights."""

from __future__ import annotations

import torch
from torch import nn

from mnist_gan.gan.models import is_convolutional
from mnist_gan.settings.configs import TrainConfig


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper or torch.compile'd module."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def prepare_models(
    generator: nn.Module, discriminator: nn.Module, cfg: TrainConfig, device: torch.device, world: int = 1
) -> tuple[nn.Module, nn.Module]:
    """Move to the device (NHWC for conv nets when asked) and wrap in DistributedDataParallel under torchrun."""
    fmt = torch.channels_last if is_convolutional(generator) and cfg.channels_last else torch.contiguous_format
    generator, discriminator = generator.to(device, memory_format=fmt), discriminator.to(device, memory_format=fmt)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        generator = DistributedDataParallel(generator, device_ids=ids)
        discriminator = DistributedDataParallel(discriminator, device_ids=ids)
    return generator, discriminator


def replicas_in_sync(model: nn.Module) -> bool:
    """Under DDP: do all ranks hold bit-identical weights? (all_gather of the flat parameters)

    BatchNorm running statistics are not compared: each rank updates them from its own batches, and DDP
    overwrites them with rank 0's at every forward; rank 0's are the ones saved.
    """
    import torch.distributed as dist

    flat = torch.cat([p.detach().float().flatten() for p in unwrap(model).parameters()])
    copies = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(copies, flat)
    return all(torch.equal(copies[0], c) for c in copies[1:])


def check_replicas(*models: nn.Module) -> None:
    """Under DDP, at the end of training: raise unless every rank holds the same weights (rank 0's are saved)."""
    from mnist_gan.errors import PipelineError

    if not all(replicas_in_sync(m) for m in models):
        raise PipelineError("DDP replicas hold different weights; outputs are rank 0's")
