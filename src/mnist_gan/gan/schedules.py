"""The learning rate over a run, by name (`lr_schedule` in params.yaml), with an optional linear warm-up.

Each schedule maps the run's progress t in [0, 1] (after the warm-up) to a factor of both learning rates; the
trainer sets them from the step number alone, so a resumed run follows exactly the schedule of an uninterrupted
one. `linear` and `cosine` decay to 0 at the last step (the way supervised training anneals; for GANs the EMA
generator already averages late weights, which the study in docs/pareto.md weighs).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from mnist_gan.settings.configs import SCHEDULES as NAMES

SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant": lambda t: 1.0,
    "linear": lambda t: 1.0 - t,
    "cosine": lambda t: 0.5 * (1.0 + math.cos(math.pi * t)),
}
assert tuple(SCHEDULES) == NAMES, "configs.SCHEDULES names the schedules params.yaml accepts"


def lr_factor(schedule: str, warmup_steps: int, step: int, total: int) -> float:
    """The factor of the base learning rates at `step` (0-based) of `total`: (step + 1) / warmup_steps during the
    warm-up, then the schedule of the rest of the run."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total - warmup_steps)
    return SCHEDULES[schedule](min(1.0, max(0.0, t)))


def is_constant(schedule: str, warmup_steps: int) -> bool:
    return schedule == "constant" and warmup_steps == 0
