"""What every stage script shares: params loading, option checks and the one-line error policy (console.py: a user
mistake ends a stage with one line on stderr and a non-zero exit code, never a traceback)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from mnist_gan import console
from mnist_gan.console import fail, setting_option  # noqa: F401 (the stages' option for a setting)
from mnist_gan.errors import PipelineError
from mnist_gan.runtime import DeviceError, pick_device
from mnist_gan.settings.configs import Params
from mnist_gan.settings.params import ParamsError, load_params


def params_or_exit() -> Params:
    """params.yaml, validated into configs; called at import so option defaults show the values in effect
    (--help). A stage reads only the configs its dvc.yaml `params:` list names (tests/test_pipeline.py checks)."""
    try:
        return load_params()
    except ParamsError as e:
        fail(str(e), code=e.exit_code)


def parsed(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A Typer option callback from a parser that raises ValueError: the error is a usage error (exit 2)."""

    def callback(value: Any) -> Any:
        try:
            return parse(value)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None

    return callback


def checked_device(value: str) -> str:
    """Option callback for --device: a name torch does not know is a usage error (exit 2); a known device
    this machine lacks ("no CUDA device here") is a one-line error when the stage picks it (exit 1)."""
    try:
        pick_device(value)
    except DeviceError as e:
        if "unknown" in str(e) or "unsupported" in str(e):
            raise typer.BadParameter(str(e)) from None
    return value


DeviceOption = Annotated[
    str, typer.Option(help="auto (cuda, mps, cpu) | cpu | cuda | mps; not a DVC param.", callback=checked_device)
]  # every stage's --device: a runtime knob, so switching GPUs never invalidates DVC's cache


def require(path: Path, stage: str) -> Path:
    """`path`, an earlier stage's output, or a one-line error saying which stage writes it."""
    if not Path(path).exists():
        raise PipelineError(f"{path} does not exist; run the {stage} stage first (dvc repro)")
    return path


INTERRUPTED = "interrupted (Ctrl-C); every file written so far is complete (writes are atomic)"


def run(app: typer.Typer) -> None:
    """Run a stage's Typer app, turning expected failures into one line and an exit code."""
    console.run(app, on_interrupt=INTERRUPTED)
