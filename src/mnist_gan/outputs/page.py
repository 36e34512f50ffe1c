"""The self-contained report page: one list of blocks written as Markdown (images beside it) and as HTML
that embeds every image as a data: URI and loads nothing from the network (DVC's own `dvc plots show` page
pulls vega from a CDN, which is blank offline).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import yaml
from PIL import Image

from mnist_gan.outputs.markdown import markdown_table
from mnist_gan.storage import atomic_path, write_bytes


class Bold(str):
    """A table cell to show in bold: `**v**` in the Markdown, `<strong>v</strong>` in the HTML."""


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

        # the blank line ends the table: without it a following image is parsed as one more row
        self.md.append(markdown_table(header, cells) + "\n\n")
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in r) + "</tr>" for r in cells)
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
        self.html.append(
            f'<figure><img src="{uri}" alt="{html.escape(caption)}"{size}>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

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


def yaml_cell(value: object) -> str:
    """A param's value as params.yaml spells it, on one line: `[256, 256]`, `true`, `null`, `0.0002`."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _cell(value: object) -> str:
    if isinstance(value, Bold):
        return Bold(f"**{value}**")
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _html_cell(cell: str) -> str:
    if isinstance(cell, Bold):
        return f"<strong>{html.escape(cell[2:-2])}</strong>"
    return html.escape(cell)


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
