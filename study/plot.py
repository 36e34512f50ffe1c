"""docs/pareto.png: each setting's two-sample accuracy and FID against the train stage's time in bf16 (its network's
quiet `speed` timing; settings whose network was never timed are left out), both modes. A setting is one point, the
mean of its runs (seeds, CPU classes), with a bar from its lowest to its highest run: a setting's runs span as much
as settings differ, so the Pareto front of each mode is drawn through the means, and the budget curve (the default's
settings at several epoch counts) joins them. Labelled: the default and the points on a front."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from study.docs import two_sample_reading
from study.rows import cpu_words, difference, mean, quiet_times, read, train_minutes

PANELS = (
    ("two_sample_accuracy", "two-sample accuracy (0.5 = indistinguishable)"),
    ("fid", "FID (classifier features)"),
)

FID_TICKS = (5, 6, 7, 8, 10, 12, 15, 20)


def timed_on(speed_table: Path) -> str:
    """The CPU class of the native bf16 `speed` rows, in words, for the axis label."""
    native = [r for r in read(speed_table) if r["isa_limit"] == "native" and r["precision"] == "bf16"]
    return cpu_words(native[-1]) if native else "no timed CPU"


@dataclass
class Setting:
    """A setting's runs in one panel: the train minutes they share, their readings, the shortest run name."""

    minutes: float
    values: list[float]
    name: str
    budget: bool  # the committed settings but for `epochs`, scored today: a point of the budget curve
    default: bool  # the committed settings

    @property
    def y(self) -> float:
        return mean(self.values)

    @property
    def label(self) -> str:
        return self.name if len(self.values) == 1 else f"{self.name} (n={len(self.values)})"


def settings(rows: list[dict], times: dict, key: str, conditional: bool) -> list[Setting]:
    """The rows of one mode that read `key` and whose network was timed, one `Setting` per `-S` change from the
    default (seeds and CPU classes pooled); runs scored before the two-sample test trained to convergence stay
    apart from today's, an earlier evaluation."""
    runs: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["params"]["conditional"] == conditional and r["generated"].get(key) is not None:
            today = two_sample_reading(r["generated"]) == "patient"
            runs[json.dumps([difference(r["params"]), today])].append(r)
    out = []
    for (changes, today), group in ((json.loads(k), v) for k, v in runs.items()):
        minutes = train_minutes(group[0], times)
        if minutes is not None:
            name = min((r["name"] for r in group), key=len)
            budget = today and not set(changes) - {"epochs", "conditional"}
            default = budget and "epochs" not in changes
            out.append(Setting(minutes, [r["generated"][key] for r in group], name, budget, default))
    return sorted(out, key=lambda s: (s.minutes, s.y))


def front(points: list[Setting]) -> list[Setting]:
    """The settings no cheaper one beats on the mean (points sorted by minutes)."""
    out: list[Setting] = []
    for s in points:
        if not out or s.y < out[-1].y:
            out.append(s)
    return out


def draw(rows: list[dict], speed_table: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = quiet_times(speed_table)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        for conditional, color in ((True, "tab:blue"), (False, "tab:orange")):
            points = settings(rows, times, key, conditional)
            best = front(points)
            for s in points:
                ax.vlines(s.minutes, min(s.values), max(s.values), color=color, linewidth=1.5, alpha=0.5)
                ax.scatter(s.minutes, s.y, s=18, color=color)
            labelled = best + [s for s in points if s.default and s not in best]
            for i, s in enumerate(labelled):  # above and below in turn: a front's neighbours sit close together
                below, aside = i % 2 and i < len(best), s not in best  # the default off its front: up, with a line
                ax.annotate(
                    s.label,
                    (s.minutes, s.y),
                    xytext=(30, 30) if aside else (4, -10 if below else 4),
                    textcoords="offset points",
                    fontsize=7,
                    arrowprops={"arrowstyle": "-", "linewidth": 0.4} if aside else None,
                )
            mode = "conditional" if conditional else "-S conditional=false"
            if best:
                xy = [(s.minutes, s.y) for s in best]
                ax.step(*zip(*xy, strict=True), where="post", color=color, linewidth=0.8, label=f"{mode}: front")
            curve = [(s.minutes, s.y) for s in points if s.budget]
            if len(curve) > 1:
                ax.plot(*zip(*curve, strict=True), color=color, linestyle=":", label=f"{mode}: epochs only")
        ax.legend(fontsize=8)
        ax.set_xlabel(f"train stage, minutes (bf16 on {timed_on(speed_table)})", fontsize=8)
        ax.set_ylabel(f"{label}, lower is better")
        ax.grid(alpha=0.3, which="both")
    axes[1].set_yscale("log")  # the FIDs that matter sit within a few units of each other, a few far above them
    axes[1].set_yticks(FID_TICKS, [str(t) for t in FID_TICKS])
    axes[1].minorticks_off()
    axes[0].set_title("two-sample accuracy against train time")
    axes[1].set_title("FID against train time")
    fig.suptitle(
        "a point: the mean of a setting's runs (n: how many); its bar: the lowest to the highest run", fontsize=9
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
