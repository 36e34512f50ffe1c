"""The figures of README.md and docs/, generated from the committed files that hold them, for cogapp.

A page holds a marked section, e.g. in docs/recipes.md:

    <!-- [[[cog import benchmarks.docs as d; d.recipes() ]]] -->
    ...generated...
    <!-- [[[end]]] -->

`make docs` regenerates every such section (`cog -r`); `make lint` fails when one is stale (`cog --check`). The
sources: results/*/metrics.json (the committed `dvc repro`), docs/pareto.jsonl and docs/pareto_speed.jsonl
(`python -m benchmarks.pareto run|speed`), docs/timings.jsonl (`python -m benchmarks.timings record`),
recipes/seeds.yaml. A figure appears on one page; other pages link to it.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def out(text: str) -> None:
    """Write into the section cog is generating (outside cog: print)."""
    try:
        import cog

        cog.out(text if text.endswith("\n") else text + "\n")
    except (ImportError, AttributeError):
        print(text)


def rows(name: str) -> list[dict]:
    path = ROOT / "docs" / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    padded = [[*map(str, r), *[""] * (len(head) - len(r))] for r in body]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in padded])


def recipes() -> None:
    """docs/recipes.md: the five `dvc exp run` lines (recipes/seeds.yaml)."""
    from benchmarks.recipes import shell_lines

    out("```bash\n" + "\n".join(wrap(line) for line in shell_lines()) + "\n```")


def wrap(line: str, width: int = 116) -> str:
    """A shell line broken with `\\` before an `-S` where it passes `width`; its `# comment` stays on the last."""
    command, _, comment = line.partition("   # ")
    parts, current = [], ""
    for word in command.split(" -S "):
        piece = word if not current else f" -S {word}"
        if current and len(current) + len(piece) > width:
            parts.append(current + " \\")
            current = "  -S " + word
        else:
            current += piece
    parts.append(current + (f"   # {comment}" if comment else ""))
    return "\n".join(parts)


# -- the quality study (docs/pareto.md) and the default's figures (README) ---------------------------------------
BEFORE = {  # the value a study row implies for a setting added after it ran
    "lr_schedule": "constant",
    "lr_warmup": 0.0,
    "ema_kimg": None,
    "r2_gamma": 0.0,
    "reg_every": 1,
    "d_mbstd": False,
    "g_upsample": "transposed",
    "g_self_modulation": False,
}
QUIET = {"log_every", "tensorboard", "precision", "channels_last", "compile", "quality_samples", "ema_bn_batches"}


def committed() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text())


def top_level(params: dict) -> dict:
    return {**BEFORE, **{k: v for k, v in params.items() if not isinstance(v, dict)}}


def difference(params: dict, base: dict | None = None, ignore: tuple = ("seed",)) -> dict:
    """The top-level settings in which a row's params differ from `base` (the committed params.yaml)."""
    base = base or committed()
    mine, theirs = top_level(params), top_level(base)
    order = [*base, *(k for k in mine if k not in base)]  # params.yaml's order
    return {k: mine.get(k) for k in order if k not in (*ignore, *QUIET) and theirs.get(k) != mine.get(k)}


def shown(changes: dict, none: str = "the default") -> str:
    if not changes:
        return none
    return " ".join(f"`{k}={json.dumps(v) if not isinstance(v, str) else v}`" for k, v in changes.items())


def percent(value) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def default_runs(conditional: bool) -> list[dict]:
    """Study rows that trained the committed params (any seed; `conditional` flipped for the unconditional mode)."""
    base = {**committed(), "conditional": conditional}
    return [r for r in rows("pareto.jsonl") if not difference(r["params"], base)]


# The optimizer of the defaults before the recipe study: the width and EMA sweeps ran with it
EARLIER_OPTIMIZER = {"beta1": 0.5, "beta2": 0.999, "lr": 0.0002, "lr_d_ratio": 2.0, "lr_schedule": "constant"}


def earlier(params: dict) -> bool:
    p = top_level(params)
    return all(p.get(k) == v for k, v in EARLIER_OPTIMIZER.items()) and not p.get("d_mbstd")


def study(conditional: bool, widths: bool = False) -> None:
    """docs/pareto.md: the quality rows of one mode (docs/pareto.jsonl) with their cost (docs/pareto_speed.jsonl):
    the recipe study's, each as its `-S` changes to the committed default, or (`widths`) the width and EMA sweeps
    that ran with the earlier optimizer, as changes to the default with that optimizer."""
    from benchmarks.pareto import SPEED, TABLE, quiet_times, study_table
    from benchmarks.pareto import rows as read

    base = {**committed(), **EARLIER_OPTIMIZER, "d_mbstd": False} if widths else None
    mine = [r for r in read(TABLE) if earlier(r["params"]) == widths]
    out(study_table(mine, quiet_times(SPEED), conditional, base))


def cpu_words(r: dict) -> str:
    """A timing row's CPU class in words: cores, model, family, what torch ran on it."""
    family = f" family {r['family']}" if r.get("family") else ""
    limit = r.get("isa_limit")
    if limit and limit != "native":
        return f"{r['cores']}-core {r['cpu']}{family} under the AVX2 limit (stands for an AVX2-only CPU)"
    bf16 = ", native bf16" if r.get("native_bf16") else ""
    return f"{r['cores']}-core {r['cpu']}{family}, {r['capability']}{bf16}"


def metric_cells(g: dict, conditional: bool = True) -> list[str]:
    def number(key: str, fmt: str) -> str:
        return "" if g.get(key) is None else format(g[key], fmt)

    cells = [number("fid", ".2f"), number("precision", ".3f"), number("recall", ".3f")]
    if conditional:
        cells += [percent(g.get("label_accuracy")), number("per_digit_fid_max", ".1f")]
    return cells


def bold(cell: str) -> str:
    return f"**{cell}**" if cell else ""


def mean(values: list) -> float | None:
    """The mean, or None when a run lacks the value (rows older than the metric)."""
    return None if any(v is None for v in values) else sum(values) / len(values)


def results() -> None:
    """README: the committed `dvc repro` (results/evaluate/metrics.json), the study's runs of the same params at
    other seeds and without labels (docs/pareto.jsonl), their means, and the real-data floor."""
    committed_run = json.loads((ROOT / "results" / "evaluate" / "metrics.json").read_text())
    seed = committed()["seed"]
    body = [[f"the default, `dvc repro` (seed {seed})", *metric_cells(committed_run["generated"])]]
    conditional = [committed_run["generated"]] + [
        r["generated"] for r in default_runs(True) if r["params"]["seed"] != seed
    ]
    for r in default_runs(True):
        if r["params"]["seed"] != seed:
            body.append([f"the same, `-S seed={r['params']['seed']}`", *metric_cells(r["generated"])])
    keys = ("fid", "precision", "recall", "label_accuracy", "per_digit_fid_max")
    if len(conditional) > 1:
        means = {k: mean([g.get(k) for g in conditional]) for k in keys}
        body.append([f"mean of these {len(conditional)} seeds", *map(bold, metric_cells(means))])
    body.append(["real training images (the floor)", *metric_cells(committed_run["real_floor"])])
    unconditional = default_runs(False)
    for r in unconditional:
        body.append([f"`-S conditional=false -S seed={r['params']['seed']}`", *metric_cells(r["generated"], False)])
    if len(unconditional) > 1:
        means = {k: mean([r["generated"].get(k) for r in unconditional]) for k in keys[:3]}
        body.append([f"mean of these {len(unconditional)} seeds", *map(bold, metric_cells(means, False))])
    out(table(["run", "FID", "precision", "recall", "label accuracy", "worst digit FID"], body))


def default_speeds() -> list[dict]:
    """`pareto speed` rows of the committed default (any precision or instruction-set limit), latest per class."""
    latest = {}
    for r in rows("pareto_speed.jsonl"):
        if not difference(r["params"]):
            latest[(r["cpu"], r.get("family"), r["precision"], r["isa_limit"])] = r
    return list(latest.values())


def train_times() -> None:
    """README: the default's train stage per CPU class (`pareto speed`) and whole commands (`benchmarks.timings`)."""
    body = []
    for r in sorted(default_speeds(), key=lambda r: (r["isa_limit"] != "native", r["precision"] != "bf16")):
        minutes = (r["startup_s"] + r["epoch_wall_s"] * committed()["epochs"]) / 60
        how = f"`pareto speed --precision {r['precision']}" + (" --isa avx2`" if r["isa_limit"] != "native" else "`")
        body.append([cpu_words(r), r["precision"], f"{minutes:.1f} min ({r['img_s']:,.0f} img/s)", how, r["date"]])
    out(table(["CPU class", "precision", "train stage, 10 epochs", "measured with", "date"], body))


def suites(names: tuple[str, ...] = ("make run", "make test", "make test-fast")) -> None:
    """Whole-command wall times (docs/timings.jsonl, `python -m benchmarks.timings record`), latest per class."""
    latest = {}
    for r in rows("timings.jsonl"):
        if r["name"] in names:
            latest[(r["name"], cpu_words(r))] = r
    body = []
    for r in sorted(latest.values(), key=lambda r: (names.index(r["name"]), r["date"])):
        wall = f"{r['wall_s'] // 60:.0f} min {r['wall_s'] % 60:02.0f} s"
        body.append([f"`{r['name']}`", cpu_words(r), wall, r["note"], r["commit"]])
    out(table(["command", "CPU class", "wall time", "what it includes", "at commit"], body))


def default_seeds(conditional: bool) -> list[dict]:
    """The generated metrics of every run of the committed params in one mode: the committed `dvc repro` first
    (conditional), then the study's runs at other seeds."""
    seed = committed()["seed"]
    runs = [r for r in default_runs(conditional) if not (conditional and r["params"]["seed"] == seed)]
    first = [json.loads((ROOT / "results" / "evaluate" / "metrics.json").read_text())["generated"]]
    return (first if conditional else []) + [r["generated"] for r in runs]


TARGETS = [  # (mode, metric, what is asked of the mean, or of every seed with "each")
    (True, "fid", "mean", "<=", 6.0),
    (True, "fid", "each", "<=", 6.5),
    (True, "precision", "mean", ">=", 0.82),
    (True, "recall", "mean", ">=", 0.82),
    (True, "label_accuracy", "mean", ">=", 0.992),
    (True, "per_digit_fid_max", "mean", "<=", 25.0),
    (False, "fid", "mean", "<=", 10.0),
    (False, "precision", "mean", ">=", 0.80),
]


def targets() -> None:
    """docs/pareto.md: the committed default's runs against the quality targets it was chosen for."""
    body = []
    for conditional, key, how, op, wanted in TARGETS:
        values = [g.get(key) for g in default_seeds(conditional)]
        if not values or any(v is None for v in values):
            continue
        seen = mean(values) if how == "mean" else (max(values) if op == "<=" else min(values))
        met = seen <= wanted if op == "<=" else seen >= wanted
        fmt = percent if key == "label_accuracy" else (lambda v: f"{v:.3f}" if v < 1 else f"{v:.2f}")
        mode = "conditional" if conditional else "`conditional=false`"
        what = f"{key}, {'mean' if how == 'mean' else 'worst'} of {len(values)} seeds"
        body.append([mode, what, f"{op} {fmt(wanted)}", fmt(seen), "met" if met else "**missed**"])
    out(table(["mode", "metric", "target", "measured", ""], body))
