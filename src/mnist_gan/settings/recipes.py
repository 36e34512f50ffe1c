"""The seed recipes (recipes.yaml beside this file): the five seed scripts this project replaces, as params.yaml
settings, and their params, for the tests and benchmarks that train a seed's networks (docs/recipes.md shows their
`dvc exp run` lines: study/docs.py). The same file names the study's own recipes (`study_recipes`)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mnist_gan.settings.configs import Params
from mnist_gan.settings.params import load_params, parse, with_changes

FILE = Path(__file__).with_name("recipes.yaml")


def recipes() -> dict[str, dict]:
    """{seed id: {"title": ..., "set": {params key: value}}}, each `set` with the shared keys first."""
    data = yaml.safe_load(FILE.read_text())
    return {seed: {**r, "set": {**data["shared"], **r["set"]}} for seed, r in data["recipes"].items()}


def flag(key: str, value) -> str:
    """`key=value` as `dvc exp run -S` takes it (YAML flow for lists and null)."""
    text = json.dumps(value) if isinstance(value, list) else yaml.safe_dump(value, default_flow_style=True)
    return f"{key}={text.strip().removesuffix('...').strip().replace(', ', ',')}"


def overrides(seed: str) -> list[str]:
    """The `-S` values of a recipe (shared keys included), in order."""
    return [flag(k, v) for k, v in recipes()[seed]["set"].items()]


def params(seed: str, base: Path | None = None) -> Params:
    """The params of `base` (default: what `load_params` reads) with the recipe applied, validated."""
    raw = with_changes(load_params(base).as_dict(), recipes()[seed]["set"])
    return parse(raw, f"recipe {seed}")


def study_recipes() -> dict[str, dict]:
    """{name: {"title": ..., "set": {params key: value}}}: the study's named recipes, as changes to params.yaml."""
    return yaml.safe_load(FILE.read_text())["study"]
