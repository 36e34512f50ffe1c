"""The trials of a sweep: `-S` overrides expanded the way `dvc exp run --queue -S` expands them, then checked.

DVC parses `-S key=v1,v2` with Hydra's override grammar (`dvc.utils.cli_parse.to_path_overrides`, then
`dvc.utils.hydra.get_hydra_sweeps`: a cartesian product, the first key outermost). Those are DVC internals, so
`tests/test_sweep.py` pins their behaviour; everything else here is public API of this project: each trial's
params.yaml is written with DVC's own `apply_overrides` and validated by `settings.params.load_params`, so a bad
key or value is refused in one line before any trial starts.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mnist_gan.errors import PipelineError
from mnist_gan.settings.params import FIELDS, ParamsError, assignment, load_params


class SweepError(PipelineError):
    """A sweep that cannot start: a bad override, a dirty work tree, a remote or a cluster out of reach."""

    exit_code = 2


@dataclass(frozen=True)
class Trial:
    index: int  # 1-based, as DVC numbers the experiments of a queued sweep
    name: str  # the experiment's name: <sweep>-<index>
    overrides: tuple[str, ...]  # `key=value` strings, each given to `dvc exp run -S` as is

    @property
    def label(self) -> str:
        return " ".join(self.overrides)


def expand(settings: list[str], sweep: str) -> list[Trial]:
    """The grid of `-S` settings (comma lists make a sweep; several keys make their product), named `sweep-k`."""
    from dvc.utils.cli_parse import to_path_overrides
    from dvc.utils.hydra import get_hydra_sweeps

    if not settings:
        raise SweepError("no -S overrides: a sweep needs at least one, e.g. -S lr=0.0001,0.0002")
    for item in settings:
        try:
            key, _ = assignment(item)
        except ParamsError as e:
            raise SweepError(f"-S {e}") from None
        if ":" in key:
            raise SweepError(f"-S {item!r}: a sweep sets params.yaml keys only, not other files")
    paths = to_path_overrides(settings)
    try:
        grids = get_hydra_sweeps(paths)
    except Exception as e:  # Hydra's grammar errors name no common base class
        raise SweepError(f"cannot parse the overrides {' '.join(settings)}: {str(e).splitlines()[0]}") from None
    return [Trial(k, f"{sweep}-{k}", tuple(grid["params.yaml"])) for k, grid in enumerate(grids, 1)]


def known_key(key: str) -> bool:
    return key.lstrip("+~") in FIELDS


def check(trials: list[Trial], params: Path) -> None:
    """Refuse the sweep (one line) if any trial's params.yaml, `params` with its overrides, breaks a rule."""
    from dvc.utils.hydra import apply_overrides

    with tempfile.TemporaryDirectory(prefix="mnist-gan-sweep-") as scratch:
        for trial in trials:
            for item in trial.overrides:
                key, _ = assignment(item)
                if not known_key(key):
                    raise SweepError(f"trial {trial.index} ({trial.label}): params.yaml has no key {key.lstrip('+~')}")
            copy = Path(scratch) / "params.yaml"
            shutil.copyfile(params, copy)
            try:
                apply_overrides(copy, list(trial.overrides))
                load_params(copy)
            except ParamsError as e:
                problem = str(e).replace(str(copy), "params.yaml")
                raise SweepError(f"trial {trial.index} ({trial.label}): {problem}") from None
            except Exception as e:  # DVC's InvalidArgumentError for a value Hydra cannot apply
                raise SweepError(f"trial {trial.index} ({trial.label}): {str(e).splitlines()[0]}") from None
