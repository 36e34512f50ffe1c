"""The study's row model: the tables (docs/pareto.jsonl: a trained setting's quality; docs/pareto_speed.jsonl: a
network's timing; docs/timings.jsonl: whole commands), what a row's setting is (its `-S` changes from params.yaml),
which rows share a network and so a timing, and the words and numbers every page shows them with."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mnist_gan.settings.configs import declared, facts

ROOT = Path(__file__).resolve().parents[1]
QUALITY = ROOT / "docs" / "pareto.jsonl"
SPEED = ROOT / "docs" / "pareto_speed.jsonl"
TIMINGS = ROOT / "docs" / "timings.jsonl"
# The evaluate stage's metrics a quality row keeps, generated and real floor. Rows scored before the two-sample test
# trained to convergence hold that test's 6-epoch reading as `two_sample_fast` (and `per_digit_two_sample_fast_max`)
SHOWN = (
    "two_sample_accuracy",
    "two_sample_se",
    "two_sample_epochs",
    "per_digit_two_sample_max",
    "fid",
    "precision",
    "recall",
    "label_accuracy",
    "per_digit_fid_max",
    "classifier_score",
    "classes_covered",
    "closer_than_test_1pct",
)
# What the study reads of each setting's declaration (configs.setting): the value a row implies for a setting
# added after it ran, the bookkeeping that changes no result, what an epoch's time depends on (params.yaml's order)
TOP_LEVEL = {k: facts(f) for k, f in declared().items() if "." not in k}
BEFORE = {k: fact["before"] for k, fact in TOP_LEVEL.items() if "before" in fact}
QUIET = {k for k, fact in TOP_LEVEL.items() if fact["quiet"]}
COST_KEYS = tuple(k for k, fact in TOP_LEVEL.items() if fact["cost"])
SPEEDS = (("bf16", "native"), ("fp32", "native"), ("fp32", "avx2"))  # the timed columns: (precision, isa limit)


def read(table: Path) -> list[dict]:
    return [json.loads(line) for line in table.read_text().splitlines() if line.strip()] if table.exists() else []


def append(row: dict, table: Path) -> None:
    table.parent.mkdir(parents=True, exist_ok=True)
    with open(table, "a") as f:
        f.write(json.dumps(row) + "\n")


def committed() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def top_level(params: dict) -> dict:
    return {**BEFORE, **{k: v for k, v in params.items() if not isinstance(v, dict)}}


def difference(params: dict, base: dict | None = None, ignore: tuple = ("seed",)) -> dict:
    """The top-level settings in which a row's params differ from `base` (default: the committed params.yaml)."""
    base = base or committed()
    mine, theirs = top_level(params), top_level(base)
    order = [*base, *(k for k in mine if k not in base)]  # params.yaml's order
    return {k: mine.get(k) for k in order if k not in (*ignore, *QUIET) and theirs.get(k) != mine.get(k)}


def shown(changes: dict, none: str = "the default") -> str:
    """`-S` changes as the tables show them: `key=value` ..."""
    if not changes:
        return none
    return " ".join(f"`{k}={json.dumps(v) if not isinstance(v, str) else v}`" for k, v in changes.items())


def network(params: dict) -> tuple:
    """Rows that share these settings share their `speed` figures (a different seed, learning rate, EMA or epoch
    count costs the same per epoch)."""
    p = top_level(params)
    return tuple(json.dumps(p.get(k)) for k in COST_KEYS)


def quiet_times(speed_table: Path = SPEED) -> dict[tuple, tuple[float, float]]:
    """{(network, precision, isa): (start-up s, one-epoch s)} from `speed` runs (alone on the machine; the latest
    run of a network wins)."""
    return {
        (network(r["params"]), r["precision"], r["isa_limit"]): (r["startup_s"], r["epoch_wall_s"])
        for r in read(speed_table)
    }


def train_minutes(r: dict, times: dict, precision: str = "bf16", isa: str = "native") -> float | None:
    """The train stage's time for a whole run: start-up + epochs x the quiet one-epoch time (None: not measured)."""
    measured = times.get((network(r["params"]), precision, isa))
    return None if measured is None else (measured[0] + measured[1] * r["params"]["epochs"]) / 60


def number(value, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def percent(value) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def cpu_words(r: dict) -> str:
    """A timing row's CPU class in words: cores, model, family, what torch ran on it."""
    family = f" family {r['family']}" if r.get("family") else ""
    limit = r.get("isa_limit")
    if limit and limit != "native":
        return f"{r['cores']}-core {r['cpu']}{family} under the AVX2 limit (stands for an AVX2-only CPU)"
    bf16 = ", native bf16" if r.get("native_bf16") else ""
    return f"{r['cores']}-core {r['cpu']}{family}, {r['capability']}{bf16}"


def mean(values: list) -> float | None:
    """The mean, or None when a run lacks the value (rows older than the metric)."""
    return None if not values or any(v is None for v in values) else sum(values) / len(values)
