"""Where and how a run executes: the device, its precision, CPU threads, seeds, and the DDP processes."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from mnist_gan.errors import PipelineError


class DeviceError(PipelineError):
    """A device or precision this machine cannot provide."""


DEVICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str = "auto") -> torch.device:
    """ "auto" = cuda, then mps, then cpu; otherwise the named device, which must be present.

    Raises DeviceError (one line) for a name torch does not know or a device this machine lacks."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(
            f"unknown device {name!r}; expected one of {' | '.join(DEVICES)} (cuda:N for a GPU)"
        ) from None
    if device.type not in DEVICES:
        raise DeviceError(f"unsupported device {name!r}; expected one of {' | '.join(DEVICES)}")
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise DeviceError(
            f"no CUDA device {name!r} here ({torch.cuda.device_count()} visible); use --device cpu or auto"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError("no MPS device here; use --device cpu or auto")
    return device


def native_bf16(device: torch.device) -> bool:
    """Does `device` run bf16 matmuls and convolutions natively (not emulated, which is ~10x slower)?
    CUDA: Ampere or newer. CPU: oneDNN's own check (AVX512_BF16 / AMX on x86, bf16 on Arm)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return False


def resolve_precision(requested: str, device: torch.device) -> str:
    """auto -> bf16 where the device runs it natively, fp32 elsewhere; bf16 where it does not is an error."""
    if requested == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if requested == "bf16" and not native_bf16(device):
        raise DeviceError(
            f"precision bf16: this {device.type} has no native bf16 support (it would be emulated, "
            f"about 10x slower); use precision: auto or fp32"
        )
    return requested


def precision_reason(requested: str, resolved: str, device: torch.device) -> str:
    """Why `resolve_precision(requested, device)` gave `resolved`, in words for the user: `fp32: this CPU has no
    native bf16 ...`."""
    if requested != "auto":
        return f"{resolved}: precision: {requested} in params.yaml"
    what = {"cpu": "CPU", "cuda": "GPU"}.get(device.type, device.type)
    if resolved == "bf16":
        how = " (AVX512_BF16 or AMX, as oneDNN reports)" if device.type == "cpu" else " (Ampere or newer)"
        return f"bf16: this {what} runs bf16 natively{how}"
    if device.type == "cpu":
        isa = torch.backends.cpu.get_cpu_capability()
        return (
            f"fp32: this CPU has no native bf16 (oneDNN reports none; {isa} here), and emulated bf16 "
            f"would be about 10x slower"
        )
    return f"fp32: this {what} has no native bf16"


ISA_LIMITS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")  # how a faster CPU stands in for an AVX2-only one


def cpu_class() -> dict:
    """This CPU as every timing names it: model, cores, what torch runs on it (its capability, native bf16) and
    any instruction-set limit in effect (ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 = an AVX2-only CPU)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in info.split("\n\n")[0].splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    limits = {k: os.environ[k] for k in ISA_LIMITS if k in os.environ}
    return {
        "cpu": fields.get("model name", "unknown CPU"),
        "family": fields.get("cpu family"),  # the same model name spans generations: family tells them apart
        "cores": os.cpu_count(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(torch.device("cpu")),
        "avx512": " avx512f" in info,
        "isa_limit": " ".join(f"{k}={v}" for k, v in limits.items()) or None,
    }


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices). No cudnn.benchmark: it picks kernels by timing them."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False


def stage_device(name: str = "auto", threads: int | None = None) -> torch.device:
    """A stage's device (`pick_device`), with one CPU thread per core when it is the CPU (`set_cpu_threads`)."""
    device = pick_device(name)
    if device.type == "cpu":
        set_cpu_threads(threads)
    return device


def set_cpu_threads(threads: int | None) -> int:
    """One intra-op thread per usable core, shared among the processes torchrun starts on this machine
    (oversubscribed threads slow conv down badly); `threads` overrides, and so does OMP_NUM_THREADS when set (a
    scheduler's share of the cores: a sweep trial gets its Ray CPUs that way)."""
    if threads is None and os.environ.get("OMP_NUM_THREADS", "").isdecimal():
        threads = int(os.environ["OMP_NUM_THREADS"])
    if threads is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


def setup_distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device) of this process. Under torchrun (WORLD_SIZE > 1) this joins the process
    group: nccl with one GPU per process on CUDA, gloo on the CPU. A plain run is rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = pick_device(device)
    if world == 1:
        return 0, 1, dev
    import torch.distributed as dist

    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), dev


def teardown_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
