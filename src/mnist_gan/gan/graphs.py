"""The whole training step as one CUDA graph: captured once, then replayed at every step (CUDA only).

On a GPU this project's networks are far too small to keep it busy: a step of the default is a few hundred
kernels of a few microseconds each, so the time goes to launching them from Python, not to the arithmetic. A CUDA
graph (`torch.cuda.graph`, PyTorch's "whole-network capture") records every kernel of one step, forward,
backward and both optimizer updates, and replays them with one launch. Same kernels on the same inputs: the
maths of the eager step, which the GPU check compares byte for byte (benchmarks/gpu_check.py).

What a replay needs: inputs in fixed buffers (the batch's indices and its noise are copied in before each
replay; the images are gathered and normalized inside the graph), optimizers built `capturable` (their step
counters on the device), autocast without its weight cache, and a few eager steps on a side stream before the
capture (they warm cuBLAS and the allocator up; they are real steps of the run, so nothing is skipped).
`graph_unsupported` names what keeps a run eager.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

WARMUP_STEPS = 3  # eager steps on a side stream before the capture (PyTorch's whole-network capture recipe)


def graph_unsupported(
    device: torch.device, world: int, *, compiled: bool = False, draws: str | None = None, lazy: bool = False
) -> str | None:
    """Why a run cannot replay its step as a CUDA graph, or None when it can (`step.StepPlan.graph_blocker` asks
    with what its step does)."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device (this run is on {device.type})"
    if world > 1:
        return "DDP's gradient all-reduce runs eagerly (one graph per process is not captured here)"
    if compiled:
        return "compile: true (torch.compile handles its own graphs)"
    if draws:
        return f"the step draws random numbers from a generator a graph does not own ({draws})"
    if lazy:
        return "lazy regularization (reg_every > 1) alternates two different steps"
    return None


class GraphedStep:
    """`step(idx, z) -> stats` with the same result as the eager `step`, replayed from a CUDA graph.

    `step(idx, z, in_graph=True)` must read only `idx` and `z` and tensors that live as long as the trainer (the
    resident images and labels, the models, the optimizers); it returns a tensor of the step's stats. The returned
    stats live in the graph's memory and are overwritten by the next replay: read them before calling again.
    """

    def __init__(self, step: Callable[..., torch.Tensor], warmup: int = WARMUP_STEPS):
        self.step, self.warmup, self.done = step, warmup, 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.idx = self.z = self.stats = None

    def __call__(self, idx: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.done < self.warmup:  # a real step, eager, on a side stream
            self.done += 1
            side, main = torch.cuda.Stream(idx.device), torch.cuda.current_stream(idx.device)
            side.wait_stream(main)
            with torch.cuda.stream(side):
                stats = self.step(idx, z, in_graph=True)
            main.wait_stream(side)
            stats.record_stream(main)
            return stats
        if self.graph is None:
            self.capture(idx, z)
        self.idx.copy_(idx)
        self.z.copy_(z)
        self.graph.replay()
        return self.stats

    def capture(self, idx: torch.Tensor, z: torch.Tensor) -> None:
        """Record one step on buffers shaped like `idx` and `z` (nothing runs while capturing)."""
        self.idx, self.z = idx.clone(), z.clone()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.stats = self.step(self.idx, self.z, in_graph=True)
