"""Resumable training: a run's identity, and restoring the trainer from an unfinished checkpoint of it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import mnist_gan
from mnist_gan.errors import PipelineError
from mnist_gan.storage import load_torch

PACKAGE = Path(mnist_gan.__file__).parent


def settings_digest(values: dict) -> str:
    """A short stable fingerprint of a run's settings (sha256 of their canonical JSON, 16 hex digits): generator.pt
    records it beside the settings, so a pulled generator says how it was trained."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def fingerprint(settings: dict, data_digest: str, package: Path = PACKAGE) -> str:
    """Identity of a training run: resume only from a checkpoint with the same settings, data and code (every
    module of the package, subpackages included, by path and content)."""
    code = hashlib.sha256()
    for path in sorted(Path(package).rglob("*.py")):
        code.update(path.relative_to(package).as_posix().encode())
        code.update(path.read_bytes())
    blob = json.dumps({"settings": settings, "data": data_digest, "code": code.hexdigest()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def unfinished_state(path: Path, run_id: str, total_steps: int) -> dict | None:
    """The checkpoint at `path` if it is an unfinished state of the run `run_id` (a `Trainer.state_dict` with
    its epoch and step), else None.

    A checkpoint of other params, data or code is ignored (training starts over); so is an unreadable one,
    and a finished one: DVC reruns a finished stage only when something it depends on changed.
    """
    if not Path(path).is_file():
        return None
    try:
        state = load_torch(path, "checkpoint")
    except PipelineError:
        return None
    if state.get("run_id") != run_id or int(state["step"]) >= total_steps:
        return None
    return state
