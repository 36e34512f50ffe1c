"""The report as a person sees it: rendered by a real headless Chromium, offline, with every image intact."""

import base64
import io
import re
import shutil
import subprocess

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
    assert len(uris) >= 8  # curves, samples, classes, per-class, nearest, GIF, one grid per epoch
    for kind, payload in uris:
        image = Image.open(io.BytesIO(base64.b64decode(payload)))
        image.load()
        assert image.format.lower() == kind and image.width > 10 and image.height > 10
    assert not re.search(r'(src|href)="(?!data:)', html), "the page links to something outside itself"


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (`make test` installs it)")
def test_chromium_renders_it_offline_and_non_blank(report_html, tmp_path):
    shot, netlog = tmp_path / "report.png", tmp_path / "netlog.json"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={netlog}", "--window-size=1200,2400",
                    f"--screenshot={shot}", report_html.as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = Image.open(shot).convert("L")
    histogram = image.histogram()
    dark = sum(histogram[:128]) / (image.width * image.height)
    assert 0.01 < dark < 0.9, f"{dark:.1%} dark pixels: blank or broken page"
    assert len([c for c in histogram if c]) > 50  # text, plots and digit grids, not a flat colour
    schemes = set(re.findall(r'"url":"([a-z-]+):', netlog.read_text()))
    assert "file" in schemes, "the net log did not record the page load; it proves nothing"
    assert not schemes & {"http", "https", "ws", "wss", "ftp"}, f"the page made network requests: {schemes}"
