"""The one base of every error a user can fix (a bad file, a missing input, a device this machine lacks).

A stage turns a `PipelineError` into one line on stderr and exit code 1 (`mnist_gan.stage.run`); params get their
own `settings.params.ParamsError` (exit code 2). Torch-free, so every module can raise it.
"""


class PipelineError(Exception):
    """A problem the user can fix (bad file, missing input, ...): shown as one line, exit code 1."""
