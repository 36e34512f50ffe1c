"""docs/pareto.png: each quality row's two-sample accuracy and FID against the train stage's time in bf16 (its
network's quiet `speed` timing; rows whose network was never timed are left out), both modes, the Pareto front of
each drawn, and the budget curve (the default's settings at several epoch counts) joined."""

from __future__ import annotations

from pathlib import Path

from study.rows import cpu_words, difference, quiet_times, read, train_minutes

PANELS = (
    ("two_sample_accuracy", "two-sample accuracy (0.5 = indistinguishable)"),
    ("fid", "FID (classifier features)"),
)


def timed_on(speed_table: Path) -> str:
    """The CPU class of the native bf16 `speed` rows, in words, for the axis label."""
    native = [r for r in read(speed_table) if r["isa_limit"] == "native" and r["precision"] == "bf16"]
    return cpu_words(native[-1]) if native else "no timed CPU"


def budget(rows: list[dict], conditional: bool) -> list[dict]:
    """Rows of the committed settings but for `epochs` (and the seed), in one mode: the budget curve."""
    return [
        r
        for r in rows
        if set(difference(r["params"], None, ("seed", "epochs", "conditional"))) == set()
        and r["params"]["conditional"] == conditional
        and r["params"]["seed"] == 42
    ]


def draw(rows: list[dict], speed_table: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = quiet_times(speed_table)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        for conditional, color in ((True, "tab:blue"), (False, "tab:orange")):
            points = [
                (train_minutes(r, times), r["generated"].get(key), r)
                for r in rows
                if r["params"]["conditional"] == conditional
            ]
            points = [(x, y, r) for x, y, r in points if x is not None and y is not None]
            for x, y, r in points:
                ax.scatter(x, y, s=18, color=color)
                ax.annotate(r["name"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
            front, best = [], float("inf")
            for x, y, _ in sorted(points, key=lambda p: p[0]):
                if y < best:
                    best = y
                    front.append((x, y))
            mode = "conditional" if conditional else "-S conditional=false"
            if front:
                ax.step(*zip(*front, strict=True), where="post", color=color, linewidth=0.8, label=f"{mode}: front")
            curve = sorted((x, y) for x, y, r in points if r in budget(rows, conditional))
            if len(curve) > 1:
                ax.plot(*zip(*curve, strict=True), color=color, linestyle=":", label=f"{mode}: epochs only")
        ax.legend(fontsize=8)
        ax.set_xlabel(f"train stage, minutes (bf16 on {timed_on(speed_table)})", fontsize=8)
        ax.set_ylabel(f"{label}, lower is better")
        ax.grid(alpha=0.3)
    axes[0].set_title("two-sample accuracy against train time")
    axes[1].set_title("FID against train time")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
