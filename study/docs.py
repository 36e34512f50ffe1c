"""The figures of README.md and docs/, generated from the committed files that hold them, for cogapp.

A page holds a marked section, e.g. in docs/recipes.md:

    <!-- [[[cog import study.docs as d; d.recipes() ]]] -->
    ...generated...
    <!-- [[[end]]] -->

`make docs` regenerates every such section (`cog -r`); `make lint` fails when one is stale (`cog --check`). The
sources: results/*/metrics.json (the committed `dvc repro`), docs/pareto.jsonl and docs/pareto_speed.jsonl
(`python -m study.pareto run|speed`), docs/timings.jsonl (`python -m benchmarks.timings record`), the settings'
declarations and the seed recipes (src/mnist_gan/settings/), the study's targets (study/targets.yaml). A figure
appears on one page; other pages link to it.
"""

from __future__ import annotations

import json
import operator
from pathlib import Path

import yaml

from mnist_gan.evaluation.registry import METRICS, METRICS_FILE, summary
from mnist_gan.outputs.markdown import markdown_table as table
from mnist_gan.settings.recipes import FILE as RECIPES_FILE
from mnist_gan.settings.recipes import flag, study_recipes
from study.rows import (
    QUALITY,
    ROOT,
    SPEED,
    SPEEDS,
    TIMINGS,
    committed,
    cpu_words,
    difference,
    mean,
    network,
    number,
    percent,
    quiet_times,
    read,
    shown,
    top_level,
    train_minutes,
)

DECISIONS = yaml.safe_load((Path(__file__).with_name("targets.yaml")).read_text())
EARLIER_OPTIMIZER = DECISIONS["earlier_optimizer"]


def out(text: str) -> None:
    """Write into the section cog is generating (outside cog: print)."""
    try:
        import cog

        cog.out(text if text.endswith("\n") else text + "\n")
    except (ImportError, AttributeError):
        print(text)


def recipes() -> None:
    """docs/recipes.md: the five `dvc exp run` lines (src/mnist_gan/settings/recipes.yaml)."""
    out("```bash\n" + "\n".join(wrap(line) for line in shell_lines()) + "\n```")


def shell_lines() -> list[str]:
    """docs/recipes.md's block: `SEEDS="..."` (the shared flags), then one `dvc exp run $SEEDS ...` per seed."""
    data = yaml.safe_load(RECIPES_FILE.read_text())
    lines = ['SEEDS="' + " ".join(f"-S {flag(k, v)}" for k, v in data["shared"].items()) + '"']
    for seed, recipe in data["recipes"].items():
        own = [flag(k, v) for k, v in recipe["set"].items()]  # the seed's own keys, after the shared ones
        quoted = [f"'{f}'" if "[" in f else f for f in own]
        lines.append(f"dvc exp run $SEEDS {' '.join(f'-S {f}' for f in quoted)}   # seed {seed}: {recipe['title']}")
    return lines


def study_line(name: str) -> str:
    """A study recipe's `dvc exp run` line."""
    return "dvc exp run " + " ".join(f"-S {flag(k, v)}" for k, v in study_recipes()[name]["set"].items())


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
def earlier(params: dict) -> bool:
    """A row that ran with the optimizer of the defaults before the recipe study (the width and EMA sweeps)."""
    p = top_level(params)
    return all(p.get(k) == v for k, v in EARLIER_OPTIMIZER.items())


def metric_cells(g: dict, conditional: bool = True, fast: bool = False) -> list[str]:
    """A row's metrics as table cells: the two-sample reading with its standard error, or (`fast`) the retired
    6-epoch reading of a row scored before the test trained to convergence (a ranking, not comparable)."""
    c2st = METRICS["two_sample_accuracy"]
    if fast:
        cells = [number(g.get("two_sample_fast"), ".3f")]
    else:
        cells = [c2st.reading(g) if g.get(c2st.key) is not None else ""]
    cells += [number(g.get("fid"), ".2f")]
    cells += [number(g.get("precision"), ".3f"), number(g.get("recall"), ".3f")]
    if conditional:
        cells += [percent(g.get("label_accuracy")), number(g.get("per_digit_fid_max"), ".1f")]
    return cells


SCALARS = ("two_sample_accuracy", "fid", "precision", "recall", "label_accuracy", "per_digit_fid_max")
METRIC_HEAD = ["two-sample acc.", "FID", "precision", "recall"]
FAST_HEAD = "two-sample acc., 6-epoch test"  # the test's reading before it trained to convergence
CONDITIONAL_HEAD = ["label accuracy", "worst digit FID"]


def study_table(rows: list[dict], times: dict, conditional: bool, base: dict | None = None, fast: bool = False) -> str:
    """The quality rows of one mode as Markdown, cheapest first (then best FID): the setting as its `-S` changes
    from `base` (default: params.yaml), its counted cost, its train minutes where its network was timed, and the
    evaluate stage's metrics."""
    body = []
    mine = [r for r in rows if r["params"]["conditional"] == conditional]
    for r in sorted(mine, key=lambda r: (r["train_flops"], r["generated"]["fid"])):
        minutes = [train_minutes(r, times, *k) for k in SPEEDS]
        body.append(
            [
                r["name"],
                shown(difference(r["params"], base), "the default" if base is None else "that default"),
                r["params"]["seed"],
                cpu_short(r),
                f"{r['flops_per_image'] / 1e6:.0f}",
                *(number(m, ".1f") for m in minutes),
                *metric_cells(r["generated"], conditional, fast),
            ]
        )
    changes = "`-S` from the default" if base is None else "`-S` from that"
    head = [
        "row",
        changes,
        "seed",
        "trained on",
        "MFLOP/img",
        "train min, bf16",
        "fp32",
        "fp32, AVX2 limit",
        FAST_HEAD if fast else METRIC_HEAD[0],
        *METRIC_HEAD[1:],
        *(CONDITIONAL_HEAD if conditional else []),
    ]
    return table(head, body)


def cpu_short(r: dict) -> str:
    """The CPU class a quality row trained on, in a table cell: "Intel Xeon fam 6", "AMD EPYC fam 26"."""
    name = " ".join(r["cpu"].replace("(R)", "").replace("Processor", "").split())
    return name + (f" fam {r['family']}" if r.get("family") else "")


def study(conditional: bool, widths: bool = False, two_sample: str | None = "patient") -> None:
    """docs/pareto.md: the quality rows of one mode with their cost, each as its `-S` changes to the committed
    default: those scored by the two-sample test trained to convergence (`two_sample="patient"`), by the earlier
    6-epoch test ("fast"), or by neither (None); or (`widths`) the width and EMA sweeps that ran with the earlier
    optimizer, as changes to the default with that optimizer."""
    base = {**committed(), **EARLIER_OPTIMIZER} if widths else None
    mine = [r for r in read(QUALITY) if earlier(r["params"]) == widths]
    if not widths:
        mine = [r for r in mine if two_sample_reading(r["generated"]) == two_sample]
    out(study_table(mine, quiet_times(SPEED), conditional, base, fast=two_sample == "fast"))


def two_sample_reading(g: dict) -> str | None:
    """Which two-sample test scored a row: "patient" (trained to convergence), "fast" (the earlier 6-epoch test)
    or None."""
    if g.get("two_sample_se") is not None:
        return "patient"
    return "fast" if g.get("two_sample_fast") is not None else None


def repro(part: str) -> dict:
    """The committed `dvc repro`'s evaluate metrics: `generated` or `real_floor` (results/evaluate/metrics.json)."""
    return json.loads((ROOT / METRICS_FILE).read_text())[part]


def default_runs(conditional: bool) -> list[tuple[int, dict, dict | None]]:
    """(seed, generated metrics, study row) of every run of the committed params in one mode: the committed `dvc
    repro` first (conditional; no row; its seed's study row, if any, is left out), then the study's runs at other
    seeds scored by today's evaluation (the latest row of each seed)."""
    base, seed = {**committed(), "conditional": conditional}, committed()["seed"]
    latest = {  # a rerun replaces; rows scored before the two-sample test trained to convergence are not today's
        r["params"]["seed"]: r
        for r in read(QUALITY)
        if not difference(r["params"], base) and r["generated"].get("two_sample_se") is not None
    }
    runs = [(r["params"]["seed"], r["generated"], r) for r in latest.values()]
    if not conditional:
        return runs
    return [(seed, repro("generated"), None), *(run for run in runs if run[0] != seed)]


def results() -> None:
    """README: the committed `dvc repro` (results/evaluate/metrics.json), the study's runs of the same params at
    other seeds and without labels (docs/pareto.jsonl), their means, and the real-data floor."""
    floor = repro("real_floor")
    body = []
    for conditional in (True, False):
        runs = default_runs(conditional)
        for i, (seed, g, row) in enumerate(runs):
            if conditional:
                what = f"the default, `dvc repro` (seed {seed})" if i == 0 else f"the same, `-S seed={seed}`"
            else:
                what = f"`-S conditional=false -S seed={seed}`"
            where = f" ({cpu_short(row)})" if row and row.get("cpu") else ""  # a study row: the CPU it trained on
            body.append([what + where, *metric_cells(g, conditional)])
        if len(runs) > 1:
            means = {k: mean([g.get(k) for _, g, _ in runs]) for k in SCALARS}
            cells = [f"**{c}**" if c else "" for c in metric_cells(means, conditional)]
            body.append([f"mean of these {len(runs)} seeds", *cells])
        if conditional:
            body.append(["real training images (the floor)", *metric_cells(floor)])
    out(table(["run", *METRIC_HEAD, *CONDITIONAL_HEAD], body))


def named_recipes(block: bool = True, pareto: str = "pareto.md") -> None:
    """docs/recipes.md and README (`block=False`: a bullet each; `pareto`: the link to docs/pareto.md from the
    page): each of the study's named recipes (settings/recipes.yaml `study:`) as its `dvc exp run` line, with the
    mean of its runs (docs/pareto.jsonl: one per seed, scored by today's evaluation) and the train stage's wall time
    on the CPU class they ran on."""
    blocks = []
    for name, recipe in study_recipes().items():
        runs = [
            r
            for r in read(QUALITY)
            if difference(r["params"]) == recipe["set"] and r["generated"].get("two_sample_se") is not None
        ]
        if block:
            line = f"```bash\n{study_line(name)}   # {name}: {recipe['title']}\n```"
        else:
            line = f"- `{study_line(name)}` ({name}, {recipe['title']})"
        if not runs:
            blocks.append(line)
            continue
        keys = ("two_sample_accuracy", "fid", "precision", "recall", "label_accuracy")
        means = {k: mean([r["generated"].get(k) for r in runs]) for k in keys}
        walls = sorted(r["train_wall_s"] / 60 for r in runs)
        rows = ", ".join(f"`{r['name']}` (seed {r['params']['seed']})" for r in runs)
        what = f"the mean of its {len(runs)} seeds" if len(runs) > 1 else "its one seed"
        took = f"{walls[0]:.0f}" + ("" if round(walls[0]) == round(walls[-1]) else f"-{walls[-1]:.0f}")
        measured = (
            f"{summary(means, keys=keys)}; the train stage took {took} min on a {cpu_words(runs[0])} ({rows} in "
            f"[docs/pareto.md]({pareto}))."
        )
        blocks.append(f"{line}\n\n{what.capitalize()}: {measured}" if block else f"{line}: {what}: {measured}")
    out(("\n\n" if block else "\n").join(blocks))


def legend() -> None:
    """README: what each column of `results()` measures and which way is better (the metric registry's words)."""
    heads = dict(zip(SCALARS, [*METRIC_HEAD, *CONDITIONAL_HEAD], strict=True))
    out("\n".join(f"- **{heads[k]}**: {METRICS[k].label}; {METRICS[k].better} is better" for k in SCALARS))


def default_speeds() -> list[dict]:
    """`pareto speed` rows of the committed default's network (any precision or instruction-set limit; a speed row's
    epoch count is not the run's), latest per class."""
    latest, mine = {}, network(committed())
    for r in read(SPEED):
        if network(r["params"]) == mine:
            latest[(r["cpu"], r.get("family"), r["precision"], r["isa_limit"])] = r
    return list(latest.values())


def train_times() -> None:
    """README: the default's train stage per CPU class (`pareto speed`)."""
    body = []
    epochs = committed()["epochs"]
    for r in sorted(default_speeds(), key=lambda r: (r["isa_limit"] != "native", r["precision"] != "bf16")):
        minutes = (r["startup_s"] + r["epoch_wall_s"] * epochs) / 60
        how = f"`pareto speed --precision {r['precision']}" + (" --isa avx2`" if r["isa_limit"] != "native" else "`")
        body.append([cpu_words(r), r["precision"], f"{minutes:.1f} min ({r['img_s']:,.0f} img/s)", how, r["date"]])
    out(table(["CPU class", "precision", f"train stage, {epochs} epochs", "measured with", "date"], body))


def suites(names: tuple[str, ...] = ("make run", "make test", "make test-fast")) -> None:
    """Whole-command wall times (docs/timings.jsonl, `python -m benchmarks.timings record`), latest per class."""
    latest = {}
    for r in read(TIMINGS):
        if r["name"] in names:
            latest[(r["name"], cpu_words(r))] = r
    body = []
    for r in sorted(latest.values(), key=lambda r: (names.index(r["name"]), r["date"])):
        wall = f"{r['wall_s'] // 60:.0f} min {r['wall_s'] % 60:02.0f} s"
        body.append([f"`{r['name']}`", cpu_words(r), wall, r["note"], r["commit"]])
    out(table(["command", "CPU class", "wall time", "what it includes", "at commit"], body))


OPS = {"<=": operator.le, ">=": operator.ge}


def verdict(target: dict, values: list[float]) -> tuple[float, bool] | None:
    """(the value read, met?) of one target on the seeds' `values`: their mean, or with `of: each` the worst one;
    None when a seed lacks the metric."""
    if not values or any(v is None for v in values):
        return None
    lower_is_better = target["op"] == "<="
    seen = mean(values) if target["of"] == "mean" else (max(values) if lower_is_better else min(values))
    return seen, OPS[target["op"]](seen, target["value"])


def targets() -> None:
    """docs/pareto.md: the committed default's runs against the targets of study/targets.yaml."""
    body = []
    for t in DECISIONS["targets"]:
        runs = default_runs(t["conditional"])
        read_off = verdict(t, [g.get(t["metric"]) for _, g, _ in runs])
        if read_off is None:
            continue
        seen, met = read_off
        fmt = percent if t["metric"] == "label_accuracy" else (lambda v: f"{v:.3f}" if v < 1 else f"{v:.2f}")
        mode = "conditional" if t["conditional"] else "`conditional=false`"
        what = f"{t['metric']}, {'mean' if t['of'] == 'mean' else 'worst'} of {len(runs)} seed(s)"
        body.append([mode, what, f"{t['op']} {fmt(t['value'])}", fmt(seen), "met" if met else "**missed**"])
    out(table(["mode", "metric", "target", "measured", ""], body))


# -- the settings (docs/settings.md, params.yaml's comments) -------------------------------------------------------
def settings_table() -> None:
    """docs/settings.md: every params.yaml key with its committed value, what it accepts and its help (the
    declarations in settings/configs.py)."""
    from mnist_gan.settings.params import FIELDS, allowed

    flat = {}
    for key, value in committed().items():
        flat.update({f"{key}.{k}": v for k, v in value.items()} if isinstance(value, dict) else {key: value})
    body = []
    for key in flat:  # params.yaml's order
        body.append([f"`{key}`", f"`{json.dumps(flat[key])}`", allowed(key), FIELDS[key].description])
    out(table(["key", "value in params.yaml", "accepts", "what it does"], body))


def params_comments(text: str) -> str:
    """params.yaml with each key's comment set to its declared help (wrapped at 120 columns, continuation lines
    under the first): `make docs` writes it, tests/test_params.py checks that the committed file is so."""
    import re
    import textwrap

    from mnist_gan.settings.params import FIELDS

    out, section, old_continuation = [], None, False
    for line in text.split("\n"):
        if old_continuation and re.match(r"^\s+#\s{2,}", line):
            continue
        old_continuation = False
        m = re.match(r"^(\s*)([A-Za-z_0-9]+):(\s*)(.*?)(\s*#.*)?$", line)
        if not m:
            out.append(line)
            continue
        indent, key, _, value, _ = m.groups()
        if not indent:
            section = key if value == "" else None
        name = key if not indent else f"{section}.{key}"
        if name not in FIELDS:
            out.append(line)
            continue
        head = f"{indent}{key}: {value}"
        col = max(25, len(head) + 1)  # where the comment's `#` stands
        first = head.ljust(col - 1) + " # "
        parts = textwrap.wrap(FIELDS[name].description, 120 - len(first))
        out.append(first + parts[0])
        for rest in textwrap.wrap(" ".join(parts[1:]), 120 - col - 5):
            out.append(" " * col + "#   " + rest)
        old_continuation = True
    return "\n".join(out)


def example(name: str, changes: str) -> None:
    """README: what a documented experiment (`-S` `changes`) gave when the study ran it (row `name`), beside the
    committed default's run."""
    row = next((r for r in read(QUALITY) if r["name"] == name), None)
    if row is None:
        return
    g, default = row["generated"], repro("generated")
    c2st = all(m.get("two_sample_accuracy") is not None for m in (g, default))  # both read by today's test
    words = lambda m: summary(m, keys=("two_sample_accuracy",) * c2st + ("fid", "label_accuracy"))  # noqa: E731
    out(
        f"`dvc exp run {changes}` (D's rate follows: `lr_d_ratio` x `lr`) trained here to {words(g)}, against the "
        f"default's {words(default)} (seed {row['params']['seed']}; [docs/pareto.md](docs/pareto.md) row `{name}`)."
    )
