"""params.yaml, the one home of every hyperparameter's value: read and validated once, when a stage starts.

Each key is declared once, as a field of a config in `configs.py`; pydantic checks its value. A wrong one stops
the stage with one line naming the key, the value and what is allowed, before any output is touched.
"""

from __future__ import annotations

import copy
import os
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import TypeAdapter, ValidationError, create_model

from mnist_gan.errors import PipelineError
from mnist_gan.settings.configs import CONFIGS, MODELS, STRICT, TOP, Params, declared, fields_of


class ParamsError(PipelineError, ValueError):
    """params.yaml (or an option standing in for one of its keys) holds a value that is not allowed."""

    exit_code = 2


FIELDS = declared()  # {"lr": FieldInfo, "sample.seed": FieldInfo, ...}
SECTIONS = [g for g in CONFIGS if g not in TOP]


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `2e-4` as a string; DVC and users mean a float, as YAML 1.2's core schema says (ruamel.yaml,
    DVC's parser, reads `.2e0` as a string too: tests/test_faults.py checks both spellings)."""


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


def read_yaml(text: str) -> Any:
    """params.yaml or a `-S` value, with YAML 1.2's float spellings (`2e-4`, `.2e0`)."""
    return yaml.load(text, Loader=_Loader)


def params_path() -> Path:
    """params.yaml of the current directory (DVC runs every stage from the repo root), or $MNIST_GAN_PARAMS."""
    return Path(os.environ.get("MNIST_GAN_PARAMS", "params.yaml"))


def shown(v: Any) -> str:
    """A value as one short line, whatever it holds (YAML spellings for true/false/null)."""
    text = {True: "true", False: "false", None: "null"}[v] if isinstance(v, (bool, type(None))) else repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


WORDS = {
    "integer": ("an integer", "integers"),
    "number": ("a finite number", "finite numbers"),
    "string": ("a string", "strings"),
}
BOUNDS = {"exclusiveMinimum": ">", "minimum": ">=", "exclusiveMaximum": "<", "maximum": "<="}


def allowed(key: str) -> str:
    """What a value of the params.yaml key `key` must be, in words: its declared `allowed`, else read from the JSON
    schema pydantic makes of the field (every type and bound it checks, said the way it checks them)."""
    schema = adapter(key).json_schema()
    return schema.get("allowed") or _words(schema)


def _words(s: dict, plural: bool = False) -> str:
    if "anyOf" in s:
        return " or ".join(
            "null" if a.get("type") == "null" else _words(a)
            for a in sorted(s["anyOf"], key=lambda a: a.get("type") != "null")
        )
    if "enum" in s:
        return "one of " + " | ".join(map(str, s["enum"]))
    if s["type"] == "boolean":
        return "true or false"
    if s["type"] == "array":
        return f"a list of {s['minItems']} to {s['maxItems']} {_words(s['items'], plural=True)}, e.g. [256, 256]"
    bounds = " and ".join(f"{op} {s[k]}" for k, op in BOUNDS.items() if k in s)
    return f"{WORDS[s['type']][plural]} {bounds}".strip()


@cache
def adapter(key: str) -> TypeAdapter:
    field = FIELDS[key]
    return TypeAdapter(Annotated[field.annotation, field], config=STRICT)


def check_value(key: str, value: Any, where: str = "") -> Any:
    """`value` as the params.yaml key `key` ("lr", "sample.n_images") accepts it (an int may become a float), or a
    ParamsError naming the key, the value and what is allowed (a stage option standing in for a key, too)."""
    try:
        return adapter(key).validate_python(value)
    except ValidationError:
        raise ParamsError(f"{where}{not_allowed(key, value)}") from None


def not_allowed(key: str, value: Any) -> str:
    return f"{key} = {shown(value)} is not allowed; expected {allowed(key)}"


@cache
def _layout() -> TypeAdapter:
    """params.yaml's layout as one pydantic model: the top-level settings, then a model per section; strict, every
    key required, no other key allowed."""

    def model(name: str, fields: dict, **sections: Any) -> type:
        return create_model(name, __config__=STRICT, **{k: (f.annotation, f) for k, f in fields.items()}, **sections)

    top = {k: f for g in TOP for k, f in fields_of(CONFIGS[g]).items()}
    return TypeAdapter(model("params", top, **{s: (model(s, fields_of(CONFIGS[s])), ...) for s in SECTIONS}))


def _refusal(error: dict, raw: Any) -> str:
    """pydantic's first error as one line: the key, its value as written, what the key accepts."""
    loc = [str(part) for part in error["loc"]]
    key = next((k for n in range(len(loc), 0, -1) if (k := ".".join(loc[:n])) in FIELDS), ".".join(loc))
    if error["type"] == "missing":
        return f"missing key {key}"
    if error["type"] == "extra_forbidden":
        here = [k for k in [*FIELDS, *SECTIONS] if k.rpartition(".")[0] == key.rpartition(".")[0]]
        return f"unknown key {key} (allowed here: {', '.join(k.rpartition('.')[2] for k in here)})"
    value = raw
    for part in key.split(".") if key else []:
        value = value[part]
    if key not in FIELDS:
        return f"{key or 'the file'} must be a mapping of keys to values, got {shown(value)}"
    return not_allowed(key, value)


def validate(raw: Any, where: str = "params.yaml") -> dict:
    """Check every key of a params mapping (params.yaml's layout); return it with numbers normalised (1 -> 1.0
    for floats)."""
    try:
        p = _layout().validate_python(raw).model_dump()
    except ValidationError as e:
        first = min(e.errors(), key=lambda error: error["type"] != "extra_forbidden")  # a misspelt key: its name
        raise ParamsError(f"{where}: {_refusal(first, raw)}") from None
    need, size = MODELS[p["model"]], p["normalize"]["image_size"]  # conv families are built for one size
    if need is not None and size != need:
        raise ParamsError(
            f"{where}: normalize.image_size = {size} does not fit model = {p['model']!r}; expected {need}"
        )
    if p["ac_weight"] > 0 and not (p["conditional"] or p["clusters"]):
        raise ParamsError(
            f"{where}: ac_weight = {shown(p['ac_weight'])} needs labels for D's classifier; expected conditional = true"
            " or clusters > 0, or ac_weight = 0"
        )
    return p


def parse(raw: Any, where: str = "params.yaml") -> Params:
    """A params mapping, validated, as the `Params` every stage reads: the only way one is built."""
    p = validate(raw, where)
    parts = {g: CONFIGS[g](**{k: p[k] for k in fields_of(CONFIGS[g])}) for g in TOP}
    return Params(**parts, **{s: CONFIGS[s](**p[s]) for s in SECTIONS})


def updated(p: Params, **changes: Any) -> Params:
    """`p` with some settings changed by params.yaml key (`updated(p, lr=1e-3, **{"sample.seed": 3})`), validated
    as params.yaml is."""
    return parse(with_changes(p.as_dict(), changes), "changed params")


def load_params(path: str | os.PathLike | None = None) -> Params:
    """Read and validate params.yaml into the stages' configs. Raises ParamsError with a one-line message."""
    path = Path(path) if path is not None else params_path()
    try:
        text = path.read_text()
    except OSError as e:
        raise ParamsError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        raw = read_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at_line = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path} is not valid YAML{at_line}: {getattr(e, 'problem', None) or e}") from None
    return parse(raw, str(path))


def assignment(item: str) -> tuple[str, str]:
    """`-S key=value` as (key, the value's text); anything else is a ParamsError."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ParamsError(f"{item!r} is not key=value")
    return key.strip(), value


def with_changes(raw: dict, changes: dict[str, Any] | list[str]) -> dict:
    """A deep copy of a params mapping with dotted keys set ("lr", "normalize.max_train_images"): from a mapping, or
    from `key=value` strings whose values are read as YAML, as `dvc exp run -S` reads them. Not validated: `parse`
    the result; a key params.yaml lacks is a ParamsError."""
    if isinstance(changes, list):
        changes = {key: read_yaml(value) for key, value in map(assignment, changes)}
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
