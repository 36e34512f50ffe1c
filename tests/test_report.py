"""The report as a person sees it: rendered by a real headless Chromium, offline, with every image intact."""

import base64
import io
import json
import re

import pytest
from PIL import Image

from tests.conftest import CHROMIUM, images_outside_tables, render, tables


@pytest.fixture(scope="module")
def report_html(small_repo):
    repo, _ = small_repo
    return repo / "reports" / "report.html"


def test_every_embedded_image_decodes(report_html):
    html = report_html.read_text()
    uris = re.findall(r'src="data:image/(png|gif);base64,([^"]+)"', html)
    epochs = json.loads((report_html.parents[1] / "results" / "train" / "metrics.json").read_text())["epochs"]
    # curves, samples, interpolation, classes, per-class, least real, nearest, GIF + one grid per epoch
    assert len(uris) == 8 + epochs
    for kind, payload in uris:
        image = Image.open(io.BytesIO(base64.b64decode(payload)))
        image.load()
        assert image.format.lower() == kind and image.width > 10 and image.height > 10
    assert not re.search(r'(src|href)="(?!data:)', html), "the page links to something outside itself"


def test_title_names_model_conditioning_loss_and_epochs(report_html):
    import yaml

    params = yaml.safe_load((report_html.parents[1] / "params.yaml").read_text())
    title = re.search(r"<h1>(.*?)</h1>", report_html.read_text()).group(1)
    assert params["model"] in title and f"{params['loss']} loss" in title and f"{params['epochs']} epoch" in title
    assert ("conditional on the digit" if params["conditional"] else "unconditional") in title


def test_the_page_code_is_no_dependency_of_training():
    """Editing the page (its CSS, its layout) reruns the report stage only: train never imports it."""
    from tests.test_pipeline import dvc_yaml

    stages = dvc_yaml()["stages"]
    for name, stage in stages.items():
        if name != "report":
            assert "src/mnist_gan/outputs/page.py" not in stage["deps"] and "stages/report.py" not in stage["deps"], (
                name
            )
    assert "src/mnist_gan/outputs/page.py" in stages["report"]["deps"]


def test_markdown_twin_parses_as_github_renders_it(report_html):
    """CommonMark + tables (markdown-it-py, as GitHub): every row has its header's cell count (a `|` inside a
    cell is escaped), and no image is swallowed into a table (a blank line ends each table)."""
    md = (report_html.parent / "report.md").read_text()
    found = tables(md)
    conditional = "label accuracy" in md
    assert len(found) == 3 + 2 * conditional  # metrics, (per-digit FID and two-sample accuracy,) training, params
    for rows in found:
        assert all(len(r) == len(rows[0]) for r in rows), rows
    metrics = {r[0]: r for r in found[0][1:]}
    assert "KL(class histogram || uniform)" in metrics  # the pipes stayed inside their cell
    assert images_outside_tables(md)
    for name in re.findall(r"\]\((assets/[^)]+)\)", md):
        assert (report_html.parent / name).is_file(), name


def test_pixel_images_are_shown_at_an_integer_zoom(report_html):
    """The animation is shown sharp: pixelated rendering, an integer multiple of the epoch grids' size, and
    narrow enough for the page (1100 px) that the browser never rescales it."""
    html = report_html.read_text()
    assert "image-rendering: pixelated" in html
    gif = re.search(r'<img src="data:image/gif;base64,([^"]+)"[^>]* width="(\d+)" height="(\d+)"', html)
    shown = int(gif.group(2)), int(gif.group(3))
    assert shown == Image.open(io.BytesIO(base64.b64decode(gif.group(1)))).size
    grid = Image.open(next((report_html.parents[1] / "results/train/plots/images/fixed_noise").glob("*.png"))).size
    assert shown[0] % grid[0] == 0 and shown[1] % grid[1] == 0 and shown[0] <= 1100


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (`make test` installs it)")
def test_chromium_renders_it_offline_and_non_blank(report_html, tmp_path):
    control = tmp_path / "control.html"  # proves the request check sees what a page loads from outside
    control.write_text('<p>x</p><img src="http://127.0.0.1:9/x.png"><script src="https://cdn.invalid/v.js"></script>')
    assert len(render(control, tmp_path / "c")[1]) == 2

    image, requested = render(report_html, tmp_path / "r")
    assert requested == [], f"the report made network requests: {requested}"
    histogram = image.histogram()
    dark = sum(histogram[:128]) / (image.width * image.height)
    assert 0.01 < dark < 0.9, f"{dark:.1%} dark pixels: blank or broken page"
    assert len([c for c in histogram if c]) > 50  # text, plots and digit grids, not a flat colour
