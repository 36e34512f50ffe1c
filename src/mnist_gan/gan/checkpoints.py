"""Resumable training: a run's identity, and restoring the trainer from an unfinished checkpoint of it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import mnist_gan
from mnist_gan.errors import PipelineError
from mnist_gan.storage import load_torch

if TYPE_CHECKING:
    from mnist_gan.gan.trainer import Trainer


def fingerprint(settings: dict, data_digest: str) -> str:
    """Identity of a training run: resume only from a checkpoint with the same settings, data and code (every
    module of the package, subpackages included)."""
    code = hashlib.sha256()
    for path in sorted(Path(mnist_gan.__file__).parent.rglob("*.py")):
        code.update(path.relative_to(Path(mnist_gan.__file__).parent).as_posix().encode())
        code.update(path.read_bytes())
    blob = json.dumps({"settings": settings, "data": data_digest, "code": code.hexdigest()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def load_checkpoint(path: Path, run_id: str, trainer: Trainer, total_steps: int) -> tuple[int, int]:
    """Restore `trainer` from `path` if it is an unfinished state of this run; return (epochs, steps) done.

    A checkpoint of other params, data or code is ignored (training starts over); so is an unreadable one,
    and a finished one: DVC reruns a finished stage only when something it depends on changed.
    """
    if not Path(path).is_file():
        return 0, 0
    try:
        state = load_torch(path, "checkpoint")
    except PipelineError:
        return 0, 0
    if state.get("run_id") != run_id or int(state["step"]) >= total_steps:
        return 0, 0
    trainer.load_state_dict(state)
    return int(state["epoch"]), int(state["step"])
