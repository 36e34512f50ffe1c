"""The report as a person sees it: rendered by a real headless Chromium, offline, with every image intact."""

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report_html(small_repo):
    repo, _ = small_repo
    return repo / "reports" / "report.html"


def test_every_embedded_image_decodes(report_html):
    html = report_html.read_text()
    uris = re.findall(r'src="data:image/(png|gif);base64,([^"]+)"', html)
    epochs = json.loads((report_html.parents[1] / "results" / "train" / "metrics.json").read_text())["epochs"]
    assert len(uris) == 6 + epochs  # curves, samples, classes, per-class, nearest, GIF + one grid per epoch
    for kind, payload in uris:
        image = Image.open(io.BytesIO(base64.b64decode(payload)))
        image.load()
        assert image.format.lower() == kind and image.width > 10 and image.height > 10
    assert not re.search(r'(src|href)="(?!data:)', html), "the page links to something outside itself"


def render(page: Path, tmp_path: Path) -> tuple[Image.Image, list[str]]:
    """Screenshot `page` in headless Chromium; return it and the URLs the page itself requested.

    Chromium's own background traffic (update checks, ...) carries the initiator 'not an origin'; requests a
    page makes carry the page's origin ('null' for file://).
    """
    shot, netlog = tmp_path / f"{page.stem}.png", tmp_path / f"{page.stem}.netlog.json"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={netlog}", "--window-size=1200,2400",
                    f"--screenshot={shot}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requested = [e["params"]["url"] for e in log["events"] if e["type"] == start_job
                 and "url" in e.get("params", {}) and e["params"].get("initiator") != "not an origin"]
    return Image.open(shot).convert("L"), requested


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
