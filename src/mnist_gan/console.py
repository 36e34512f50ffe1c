"""The one-line error policy of every command line: the stage scripts (`stage.run`) and `mnist-gan` (cli.py).

A user mistake (bad params.yaml, a missing input, a corrupt file, a full disk, a bad option) ends the command with
one line on stderr and a non-zero exit code (2 for params and options, 1 for the rest), never a traceback.
Torch-free and DVC-free: the digit server's slim install runs `mnist-gan serve` through it.
"""

from __future__ import annotations

import signal
import sys

import typer

from mnist_gan.errors import PipelineError


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def checked(key: str):
    """A Typer option callback applying params.yaml's rule for `key`, so an option standing in for a setting obeys
    it too (imports the settings' reader only when called: the slim install never does)."""

    def callback(value):
        from mnist_gan.settings.params import ParamsError, check_value

        if value is None:
            return value
        try:
            return check_value(key, value)
        except ParamsError as e:
            raise typer.BadParameter(str(e)) from None

    return callback


def setting_option(key: str):
    """A Typer option standing in for the params.yaml key `key`: the setting's own help line and rule."""
    from mnist_gan.settings.configs import help_of

    return typer.Option(help=help_of(key), callback=checked(key))


def interrupted(signum: int = signal.SIGINT) -> str:
    return f"interrupted ({'Ctrl-C' if signum == signal.SIGINT else signal.Signals(signum).name})"


def run(app: typer.Typer, args: list[str] | None = None, on_interrupt: str | None = None, **click) -> None:
    """Run a Typer app (`args`, default sys.argv), turning expected failures into one line and an exit code;
    `on_interrupt` is the line for Ctrl-C (default: `interrupted (Ctrl-C)`); `click`: e.g. prog_name."""
    try:
        # Not standalone, so our exceptions reach us. Typer then returns (rather than raises) an exit code:
        # typer.Exit(n) raised by a command gives n, Ctrl-C gives 130; a command's own return value is None.
        code = app(args=args, standalone_mode=False, **click)
    except KeyboardInterrupt:
        fail(on_interrupt or interrupted(), code=130)
    except PipelineError as e:  # ParamsError among them: exit code 2
        fail(str(e), code=e.exit_code)
    except OSError as e:
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        fail(f"cannot read or write{where}: {e.strerror or e}")
    except Exception as e:
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # a usage error (click's, or Typer's own copy of it)
            e.show()
            raise SystemExit(e.exit_code) from None
        if type(e).__name__ == "Abort":
            fail("aborted", code=1)
        raise
    if code == 130:
        fail(on_interrupt or interrupted(), code=130)
    sys.exit(code if isinstance(code, int) else 0)
