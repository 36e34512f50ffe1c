"""params.yaml, the one home of every hyperparameter's value: loaded and validated once, when a stage starts.

Each key is declared once, as a field of a config in `configs.py` (type, rule, help). A wrong value stops the
stage with one line naming the key, the value and what is allowed, before any output is touched.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from mnist_gan.errors import PipelineError
from mnist_gan.settings.configs import MODELS, Params, schema


class ParamsError(PipelineError, ValueError):
    """params.yaml (or an option standing in for one of its keys) holds a value that is not allowed."""

    exit_code = 2


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `2e-4` as a string; DVC (ruamel, YAML 1.2) and users mean a float. Read it as one."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)

SCHEMA: dict[str, Any] = schema()  # {key: rule}, {section: {key: rule}}: derived from configs.py


def params_path() -> Path:
    """params.yaml of the current directory (DVC runs every stage from the repo root), or $MNIST_GAN_PARAMS."""
    return Path(os.environ.get("MNIST_GAN_PARAMS", "params.yaml"))


def _fmt(v: Any) -> str:
    """A value as one short line, whatever it holds (YAML spellings for true/false/null)."""
    text = {True: "true", False: "false", None: "null"}.get(v, None) if isinstance(v, (bool, type(None))) else None
    text = text or repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _validate(raw: Any, schema: dict, prefix: str, where: str) -> dict:
    if not isinstance(raw, dict):
        raise ParamsError(
            f"{where}: {prefix.rstrip('.') or 'the file'} must be a mapping of keys to values, got {_fmt(raw)}"
        )
    unknown = sorted(set(raw) - set(schema), key=str)
    if unknown:
        raise ParamsError(f"{where}: unknown key {prefix}{unknown[0]} (allowed here: {', '.join(schema)})")
    out = {}
    for key, rule in schema.items():
        name = f"{prefix}{key}"
        if key not in raw:
            raise ParamsError(f"{where}: missing key {name}")
        if isinstance(rule, dict):
            out[key] = _validate(raw[key], rule, f"{name}.", where)
            continue
        try:
            out[key] = rule(raw[key])
        except ValueError as e:
            raise ParamsError(f"{where}: {name} = {_fmt(raw[key])} is not allowed; expected {e}") from None
    return out


def validate(raw: Any, where: str = "params.yaml") -> dict:
    """Check every key of a params mapping; return it with numbers normalised (1 -> 1.0 for floats)."""
    p = _validate(raw, SCHEMA, "", where)
    need = MODELS[p["model"]]  # conv families are built for one size; mlp takes any
    size = p["normalize"]["image_size"]
    if need is not None and size != need:
        raise ParamsError(
            f"{where}: normalize.image_size = {size} does not fit model = {p['model']!r}; expected {need}"
        )
    return p


def check_value(key: str, value: Any) -> Any:
    """Apply the params.yaml rule of `key` ("lr", "sample.n_images") to a value given another way (a CLI option)."""
    rule: Any = SCHEMA
    for part in key.split("."):
        rule = rule[part]
    try:
        return rule(value)
    except ValueError as e:
        raise ParamsError(f"{key} = {_fmt(value)} is not allowed; expected {e}") from None


def load_params(path: str | os.PathLike | None = None) -> Params:
    """Read and validate params.yaml into the stages' configs. Raises ParamsError with a one-line message."""
    path = Path(path) if path is not None else params_path()
    try:
        text = path.read_text()
    except OSError as e:
        raise ParamsError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path} is not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
    return Params.from_values(validate(raw, str(path)))


def with_changes(raw: dict, changes: dict[str, Any] | list[str]) -> dict:
    """A deep copy of a params mapping with dotted keys set ("lr", "normalize.max_train_images"): from a mapping, or
    from `key=value` strings whose values are read as YAML, as `dvc exp run -S` reads them. Not validated (see
    `validate`); a key params.yaml lacks is a ParamsError."""
    import copy

    if isinstance(changes, list):
        pairs = {}
        for item in changes:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ParamsError(f"{item!r} is not key=value")
            pairs[key.strip()] = yaml.safe_load(value)
        changes = pairs
    out = copy.deepcopy(raw)
    for key, value in changes.items():
        *sections, leaf = key.split(".")
        node = out
        for part in sections:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise ParamsError(f"params.yaml has no key {key}")
        node[leaf] = value
    return out
