"""Compare experiments side by side: params that differ, key metrics, sample grids and training curves.

Each revision (an experiment name, branch, tag, commit, or `workspace`) is read through DVC's own file system
(`dvc.fs.DVCFileSystem(rev=...)`): git-tracked files (params.yaml, metrics, DVCLive curves) from git, DVC
outputs (the sample grid) from the local cache. Nothing is checked out into the workspace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt

from mnist_gan import vcs
from mnist_gan.errors import PipelineError
from mnist_gan.evaluation.registry import METRICS, METRICS_FILE
from mnist_gan.outputs.curves import TRAINING, parse_tsv
from mnist_gan.outputs.figures import figure_bytes
from mnist_gan.outputs.page import Bold, Page, yaml_cell
from mnist_gan.settings.params import read_yaml

GRID = "results/sample/grid.png"
CURVES = ("train/loss_d", "train/loss_g", "quality/fid")  # curves.TRAINING keys: one panel each


@dataclass
class Revision:
    name: str  # as the user (or dvc exp show) names it
    rev: str  # what DVC's file system opens: a commit, or "workspace"
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)  # TRAINING key -> (steps, values)
    grid: bytes | None = None
    problem: str | None = None  # why some of it could not be read, with the command that fixes it


def experiments_of_head(repo: Path) -> list[tuple[str, str]]:
    """(name, commit) of every experiment derived from HEAD, as `dvc exp show` lists them."""
    import dvc.api

    rows = dvc.api.exp_show(repo=str(repo))
    return [(r["Experiment"], r["rev"]) for r in rows if r.get("Experiment") and r.get("rev")]


def resolve(repo: Path, names: list[str], known: dict[str, str]) -> tuple[list[Revision], list[str]]:
    """Revisions for `names`: experiments of HEAD, then any local experiment (of any commit), then anything
    git resolves (branch, tag, commit); and the names nothing resolves."""
    found, unknown = [], []
    experiments = {**{name: sha for name, (_, sha) in vcs.experiments(repo).items()}, **known}
    for name in names:
        if name == "workspace":
            found.append(Revision(name, "workspace"))
            continue
        sha = experiments.get(name) or vcs.commit_of(repo, name)
        if sha is None:
            unknown.append(name)
        else:
            found.append(Revision(name, sha))
    return found, unknown


def load(repo: Path, revision: Revision, experiment: bool = True) -> Revision:
    """Fill `revision` from its files; what cannot be read is said in `problem`, the rest still loads."""
    from dvc.fs import DVCFileSystem

    fs = DVCFileSystem(repo=str(repo), rev=None if revision.rev == "workspace" else revision.rev)
    revision.params = read_yaml(fs.read_text("params.yaml")) if fs.exists("params.yaml") else {}
    if fs.exists(METRICS_FILE):
        revision.metrics = json.loads(fs.read_text(METRICS_FILE))
    for key in CURVES:
        path = f"results/train/plots/metrics/{key}.tsv"
        if fs.exists(path):
            revision.curves[key] = parse_tsv(fs.read_text(path))
    try:
        revision.grid = fs.read_bytes(GRID)
    except Exception:  # not in the local cache (never pulled), or never produced
        fix = (
            "dvc pull"
            if revision.rev == "workspace"
            else f"dvc exp pull origin {revision.name}"
            if experiment
            else "dvc fetch --all-commits"
        )
        revision.problem = f"{revision.name}: {GRID} is not in the local cache; fetch it with `{fix}`"
    return revision


def differing_params(revisions: list[Revision]) -> list[str]:
    """Dotted param keys whose values are not the same in every revision."""
    flat = [_flatten(r.params) for r in revisions]
    keys = sorted({k for f in flat for k in f})
    return [k for k in keys if len({json.dumps(f.get(k)) for f in flat}) > 1]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def overlaid_curves_figure(revisions: list[Revision]) -> plt.Figure:
    """One panel per curve, one colour per revision."""
    keys = [k for k in CURVES if any(k in r.curves for r in revisions)]
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(5 * max(1, len(keys)), 3.4), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, key in zip(axes[0], keys, strict=False):
        for i, r in enumerate(revisions):
            if key in r.curves:
                ax.plot(
                    *r.curves[key],
                    label=r.name,
                    color=colours(i % 10),
                    linewidth=1,
                    marker="o" if TRAINING[key].better else None,
                )  # per-epoch quality: points
        ax.set_title(TRAINING[key].label, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if TRAINING[key].better:
            ax.set_yscale("log")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def build_page(revisions: list[Revision], problems: list[str]) -> Page:
    """The comparison page: table sorted by FID (best value per column marked), grids, curves."""

    def fid_of(r: Revision) -> float:
        return r.metrics.get("generated", {}).get("fid", float("inf"))

    revisions = sorted(revisions, key=fid_of)
    page = Page(f"mnist-gan: {len(revisions)} revision(s) compared")
    for line in problems:
        page.paragraph(f"Not shown: {line}")
    diff = differing_params(revisions)
    shown = [
        k for k, m in METRICS.items() if m.headline and any(k in r.metrics.get("generated", {}) for r in revisions)
    ]
    best = {}
    for k in shown:
        values = [r.metrics["generated"][k] for r in revisions if k in r.metrics.get("generated", {})]
        best[k] = METRICS[k].best(values)

    def metric_cell(gen: dict, key: str) -> str:  # in the metric's own format, bold where best
        if key not in gen:
            return ""
        text = METRICS[key].reading(gen)  # with its standard error, where the run holds one
        return Bold(text) if gen[key] == best[key] else text

    rows = []
    for r in revisions:
        flat, gen = _flatten(r.params), r.metrics.get("generated", {})
        params = ["" if flat.get(k) is None else yaml_cell(flat[k]) for k in diff]
        rows.append([r.name, *(metric_cell(gen, k) for k in shown), *params])
    page.heading("Runs (sorted by FID, best value per column in bold)")
    page.paragraph(
        "Params shown: those that differ between the revisions"
        + (f" ({', '.join(diff)})." if diff else " (none differ).")
    )
    page.table(["revision", *[METRICS[k].short for k in shown], *diff], rows)
    page.heading("Samples (same scale)")
    for r in revisions:
        if r.grid is not None:
            page.image(f"grid_{_slug(r.name)}.png", r.grid, r.name, zoom=1)  # same scale, several per row
    if any(r.curves for r in revisions):
        page.heading("Training curves")
        page.image("curves.png", figure_bytes(overlaid_curves_figure(revisions)), "One colour per revision")
    return page


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class NothingToCompare(PipelineError, ValueError):
    """No revision named (or found) can be shown."""

    exit_code = 2


def write_comparison(repo: Path, names: list[str], out: Path) -> tuple[int, list[str]]:
    """Load the revisions `names` (none: every experiment of HEAD) and write `out` and its Markdown twin;
    return how many are shown and one line per problem (a revision unknown, or shown in part)."""
    known = dict(experiments_of_head(repo))
    found, unknown = resolve(repo, names or list(known), known)
    problems = [
        f"{name}: unknown revision (not an experiment of HEAD, a branch, a tag or a commit; "
        f"`dvc exp pull origin {name}` if it is someone else's experiment)"
        for name in unknown
    ]
    if not found:
        raise NothingToCompare(
            "no revisions to compare"
            + (f": {problems[0]}" if problems else " (no experiments of HEAD; run `dvc exp run` or name revisions)")
        )
    experiments = {**known, **vcs.experiments(repo)}
    loaded = [load(repo, r, experiment=r.name in experiments) for r in found]
    problems += [r.problem for r in loaded if r.problem]
    build_page(loaded, problems).write(out.parent, stem=out.stem)
    return len(loaded), problems
