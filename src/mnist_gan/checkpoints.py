"""Resumable training: a run's identity, restoring an unfinished checkpoint, trimming curves logged past it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import mnist_gan
from mnist_gan.storage import PipelineError, load_torch

if TYPE_CHECKING:
    from mnist_gan.training import Trainer


def fingerprint(settings: dict, data_digest: str, script: Path | None = None) -> str:
    """Identity of a training run: resume only from a checkpoint with the same params, data and code
    (the library and the stage `script`)."""
    code = hashlib.sha256()
    for path in sorted(Path(mnist_gan.__file__).parent.glob("*.py")) + ([Path(script)] if script else []):
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


def trim_history(live_dir: Path, step: int) -> None:
    """Drop DVCLive rows logged after `step` (by a run killed after its last checkpoint), before resuming."""
    for tsv in (Path(live_dir) / "plots" / "metrics").rglob("*.tsv"):
        lines = tsv.read_text().splitlines(keepends=True)
        header, rows = lines[:1], lines[1:]
        col = header[0].rstrip("\n").split("\t").index("step") if header else 0
        kept = [r for r in rows if int(float(r.split("\t")[col])) <= step]
        if len(kept) != len(rows):
            tsv.write_text("".join(header + kept))
