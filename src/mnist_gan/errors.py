"""The one base of every error a user can fix (a bad file, a missing input, a device this machine lacks).

A stage or a command turns a `PipelineError` into one line on stderr and its `exit_code` (`mnist_gan.stage.run`,
`mnist_gan.cli`): 1 for a problem with files or the machine, 2 for a value the user gave (params, options: the
subclasses `settings.params.ParamsError`, `sweep.grid.SweepError`, `serving.server.ServeError`,
`outputs.compare.NothingToCompare` say so). Imports nothing, so every module can raise it, torch-free ones too.
"""


class PipelineError(Exception):
    """A problem the user can fix (bad file, missing input, ...): shown as one line, exit code `exit_code`."""

    exit_code = 1
