"""What every stage script shares: params loading, option checks and the one-line error policy.

A user mistake (bad params.yaml, missing input, corrupt file, full disk) ends a stage with one line on
stderr and a non-zero exit code (2 for params and options, 1 for the rest), never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import typer

from mnist_gan.params import ParamsError, check_value, load_params
from mnist_gan.storage import PipelineError


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def params_or_exit() -> dict:
    """params.yaml, validated; called at import so option defaults show the values in effect (--help)."""
    try:
        return load_params()
    except ParamsError as e:
        fail(str(e), code=2)


def checked(key: str) -> Callable[[Any], Any]:
    """A Typer option callback applying params.yaml's rule for `key`, so CLI overrides obey it too."""

    def callback(value: Any) -> Any:
        if value is None:
            return value
        try:
            return check_value(key, value)
        except ParamsError as e:
            raise typer.BadParameter(str(e)) from None

    return callback


def run(app: typer.Typer) -> None:
    """Run a stage's Typer app, turning expected failures into one line and an exit code."""
    try:
        app(standalone_mode=False)
    except typer.Exit as e:
        raise SystemExit(e.exit_code) from None
    except typer.Abort:
        fail("aborted", code=130)
    except KeyboardInterrupt:
        fail("interrupted (Ctrl-C)", code=130)
    except ParamsError as e:
        fail(str(e), code=2)
    except PipelineError as e:
        fail(str(e))
    except OSError as e:
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        fail(f"cannot read or write{where}: {e.strerror or e}")
    except Exception as e:
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # a usage error (click's, or Typer's own copy of it)
            e.show()
            raise SystemExit(e.exit_code) from None
        raise
    sys.exit(0)
