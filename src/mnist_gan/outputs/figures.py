"""matplotlib figures: the labelled sample view, training curves read in each loss's own terms, histograms."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt
import torch

from mnist_gan.outputs.curves import READINGS, TRAINING, metric_file, read_tsv
from mnist_gan.storage import write_bytes


def figure_bytes(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def save_figure(fig: plt.Figure, path: Path) -> None:
    write_bytes(path, figure_bytes(fig))


def sample_figure(images: torch.Tensor, title: str, labels: list[str] | None = None) -> plt.Figure:
    """A labelled matplotlib view of up to 64 images (seed 001 shows its samples this way)."""
    n = min(len(images), 64)
    cols = min(8, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.2 + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i, 0].float().cpu().numpy(), cmap="gray", vmin=-1, vmax=1)
            ax.set_title(labels[i] if labels else f"#{i}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def training_curves_figure(live_dir: Path, loss: str) -> plt.Figure:
    """Three panels from the train stage's DVCLive files: the losses, D(x) / D(G(z)) as the objective `loss` reads
    them (`curves.READINGS`: a probability for bce, a raw score with its margins for hinge, ...), and the per-epoch
    FID."""
    reading = READINGS[loss]
    fig, (ax_loss, ax_d, ax_fid) = plt.subplots(1, 3, figsize=(14, 3.6))
    for ax, keys in ((ax_loss, ("train/loss_d", "train/loss_g")), (ax_d, ("train/d_real", "train/d_fake"))):
        for key in keys:
            path = metric_file(live_dir, key)
            if path.is_file():
                ax.plot(*read_tsv(path), label=TRAINING[key].label, linewidth=1)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for value, meaning in reading.guides:
        ax_d.axhline(value, color="k", linewidth=0.7, linestyle=":")
        ax_d.annotate(
            meaning,
            (0.99, value),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="center",
            fontsize=7,
            bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            zorder=5,
        )
    if reading.limits:
        ax_d.set_ylim(*reading.limits)
    ax_loss.set_title(f"losses ({loss})")
    ax_d.set_title(f"D outputs: {reading.label}", fontsize=9)
    ax_loss.legend()
    ax_d.legend(loc="best")
    fid = metric_file(live_dir, "quality/fid")
    steps, values = read_tsv(fid) if fid.is_file() else ([], [])
    if values:
        ax_fid.plot(steps, values, marker="o", linewidth=1)
        ax_fid.set_yscale("log")
        ax_fid.annotate(
            f"{values[-1]:.1f}",
            (steps[-1], values[-1]),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=8,
        )
    else:
        ax_fid.text(0.5, 0.5, "not logged (quality_samples: 0)", ha="center", va="center", transform=ax_fid.transAxes)
    ax_fid.set_title(TRAINING["quality/fid"].label, fontsize=9)
    ax_fid.set_xlabel("step")
    ax_fid.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def histogram_figure(generated: list[float], real: list[float]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 2.8))
    digits = torch.arange(len(generated)).numpy()
    ax.bar(digits - 0.2, real, width=0.4, label="real (test)", color="#999")
    ax.bar(digits + 0.2, generated, width=0.4, label="generated", color="#2a7ab9")
    ax.axhline(1 / len(generated), color="k", linewidth=0.6, linestyle=":")
    ax.set_xticks(digits)
    ax.set_xlabel("digit predicted by the classifier")
    ax.set_ylabel("share of images")
    ax.legend()
    fig.tight_layout()
    return fig
