"""Pictures and pages: image grids, matplotlib figures, the fixed-noise GIF and the self-contained report.

The HTML report embeds every image as a data: URI and loads nothing from the network (DVC's own
`dvc plots show` page pulls vega from a CDN, which is blank offline).
"""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from mnist_gan.storage import atomic_path, write_bytes  # noqa: E402


def image_grid(images: torch.Tensor, nrow: int = 8) -> Image.Image:
    """(N, C, H, W) floats in [-1, 1] -> one PIL image with a 2-pixel border between tiles."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, normalize=True, value_range=(-1, 1))
    return Image.fromarray(grid.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy())


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(image: Image.Image, path: Path) -> None:
    write_bytes(path, png_bytes(image))


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


def read_tsv(path: Path) -> tuple[list[float], list[float]]:
    """(steps, values) of one DVCLive metric file (columns: timestamp, step, <name>)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        return [], []
    name = [k for k in rows[0] if k not in ("timestamp", "step")][0]
    return [float(r["step"]) for r in rows], [float(r[name]) for r in rows]


def curves_figure(live_dir: Path) -> plt.Figure:
    """Loss of D and G, and D(x) / D(G(z)), against the training step, from the train stage's DVCLive files."""
    metrics = Path(live_dir) / "plots" / "metrics" / "train"
    fig, (ax_loss, ax_prob) = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, keys in ((ax_loss, {"loss_d": "loss D", "loss_g": "loss G"}),
                     (ax_prob, {"d_real": "D(x)", "d_fake": "D(G(z))"})):
        for key, label in keys.items():
            path = metrics / f"{key}.tsv"
            if path.is_file():
                ax.plot(*read_tsv(path), label=label, linewidth=1)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_title("losses")
    ax_prob.set_title("discriminator outputs (probabilities)")
    ax_prob.set_ylim(0, 1)
    fig.tight_layout()
    return fig


def epoch_grids(live_dir: Path) -> list[Path]:
    """The fixed-noise grid of every epoch, in order."""
    return sorted((Path(live_dir) / "plots" / "images" / "fixed_noise").glob("epoch_*.png"))


def gif_bytes(frames: list[Path], ms_per_frame: int = 500) -> bytes:
    """The fixed-noise grids as a looping animated GIF (upscaled 3x so digits are readable)."""
    images = [Image.open(p).convert("L") for p in frames]
    images = [im.resize((im.width * 3, im.height * 3), Image.Resampling.NEAREST) for im in images]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return buffer.getvalue()


class Page:
    """A report written twice from one list of blocks: Markdown (images beside it) and self-contained HTML."""

    def __init__(self, title: str):
        self.title = title
        self.md: list[str] = [f"# {title}\n"]
        self.html: list[str] = [f"<h1>{html.escape(title)}</h1>"]
        self.assets: dict[str, bytes] = {}

    def heading(self, text: str) -> None:
        self.md.append(f"\n## {text}\n")
        self.html.append(f"<h2>{html.escape(text)}</h2>")

    def paragraph(self, text: str) -> None:
        self.md.append(f"{text}\n")
        self.html.append(f"<p>{html.escape(text)}</p>")

    def table(self, header: list[str], rows: list[list[object]]) -> None:
        header = [str(h) for h in header]
        cells = [[_cell(c) for c in row] for row in rows]

        def md_row(values: list[str]) -> str:  # a literal | would end the cell: escape it (GFM tables)
            return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |\n"

        # the blank line ends the table: without it a following image is parsed as one more row
        self.md.append(md_row(header) + "|" + "---|" * len(header) + "\n" + "".join(map(md_row, cells)) + "\n")
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in cells)
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def image(self, name: str, data: bytes, caption: str, zoom: int | None = None) -> None:
        """Embed image bytes (PNG or GIF); `name` is the file written beside report.md. `zoom` shows pixel
        images at an integer multiple of their size (with `image-rendering: pixelated`: sharp, not blurred)."""
        self.assets[name] = data
        mime = "image/gif" if name.endswith(".gif") else "image/png"
        uri = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        size = ""
        if zoom:
            width, height = Image.open(io.BytesIO(data)).size
            size = f' width="{width * zoom}" height="{height * zoom}"'
        self.md.append(f"![{caption}](assets/{name})\n\n*{caption}*\n")
        self.html.append(f'<figure><img src="{uri}" alt="{html.escape(caption)}"{size}>'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def write(self, out_dir: Path, stem: str = "report") -> None:
        """out_dir/{stem}.html (self-contained), out_dir/{stem}.md and the images it links, in out_dir/assets
        (out_dir/{stem}_assets for any other stem, so two pages can share a folder)."""
        out_dir = Path(out_dir)
        assets = "assets" if stem == "report" else f"{stem}_assets"
        for name, data in self.assets.items():
            write_bytes(out_dir / assets / name, data)
        with atomic_path(out_dir / f"{stem}.md") as tmp:
            tmp.write_text("".join(self.md).replace("](assets/", f"]({assets}/"))
        with atomic_path(out_dir / f"{stem}.html") as tmp:
            tmp.write_text(_HTML.format(title=html.escape(self.title), body="\n".join(self.html)))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; display: block; max-width: 100%; overflow-x: auto; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; font-variant-numeric: tabular-nums; }}
th:first-child, td:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }}
figcaption {{ font-size: 0.85em; color: #555; }}
img {{ image-rendering: pixelated; max-width: 100%; }}
</style></head>
<body>
{body}
</body></html>
"""


def class_grid(samples: torch.Tensor, probs: torch.Tensor, per_class: int = 10) -> Image.Image:
    """One row per digit 0-9: the samples the classifier is surest belong to it (blank where there are none)."""
    rows = []
    labels, confidence = probs.argmax(1), probs.max(1).values
    for digit in range(probs.shape[1]):
        members = (labels == digit).nonzero().flatten()
        best = members[confidence[members].argsort(descending=True)][:per_class]
        row = torch.full((per_class, *samples.shape[1:]), -1.0)
        row[: len(best)] = samples[best]
        rows.append(row)
    return image_grid(torch.cat(rows), nrow=per_class)


def labelled_grid(samples: torch.Tensor, labels: torch.Tensor, per_class: int = 10) -> Image.Image:
    """One row per digit 0-9: the first `per_class` samples that were asked for that digit."""
    rows = [samples[(labels == d).nonzero().flatten()[:per_class]] for d in range(int(labels.max()) + 1)]
    return image_grid(torch.cat(rows), nrow=per_class)


def pairs_grid(samples: torch.Tensor, neighbours: torch.Tensor) -> Image.Image:
    """Top row: samples; bottom row: the training image nearest to each."""
    return image_grid(torch.cat([samples, neighbours]), nrow=len(samples))


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
