"""The comparison page over a real `dvc exp run` and its baseline in a tiny repo: rows, differing params, grids, bad
input."""

import base64
import io
import re

import pytest
import yaml
from PIL import Image

from tests.conftest import CHROMIUM, PY, committed_copy, console_script, images_outside_tables, render, run, tables


@pytest.fixture(scope="module")
def swept(experiments):
    """The tiny repo (one epoch on 512 images): branch `main` (lr 2e-4) and its experiment `slow` (lr 1e-4)."""
    return experiments[0]


def compare(repo, *args, check=True):
    """`mnist-gan compare ...` as a process in `repo`."""
    done = run(PY + ["mnist_gan.cli", "compare", *args], repo, check=False)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def compare_in_process(capsys, monkeypatch, repo, *args) -> tuple[int, str]:
    """(exit code, stderr) of `mnist-gan compare ...` in `repo`, in this process (the page tests above start one)."""
    monkeypatch.chdir(repo)
    return console_script(capsys, "compare", *args)


@pytest.mark.slow
def test_page_has_a_row_per_revision_with_the_differing_param(swept):
    compare(swept, "main", "slow", "--out", "reports/compare.html")
    html = (swept / "reports/compare.html").read_text()
    md = (swept / "reports/compare.md").read_text()
    assert "http://" not in html and "https://" not in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 3  # two grids and the curves
    header, *rows = tables(md)[0]
    assert header[:3] == ["revision", "C2ST", "FID"] and header[-1] == "lr"  # the one param that differs
    assert sorted(r[0] for r in rows) == ["main", "slow"]
    default_lr = yaml.safe_load(run(["git", "show", "main:params.yaml"], swept).stdout)["lr"]
    assert {r[0]: r[-1] for r in rows} == {"slow": "0.0001", "main": str(default_lr)}
    fids = [float(r[header.index("FID")].strip("*")) for r in rows]
    assert fids == sorted(fids)  # sorted by FID, best first
    assert rows[0][header.index("FID")].startswith("**")  # and marked best
    # the page itself, as Chromium shows it: bold HTML, never Markdown asterisks
    assert "**" not in html
    assert re.search(r"<td>main|<td>slow", html) and html.count("<strong>") >= 1
    best_row = re.search(rf"<tr><td>{rows[0][0]}</td>(.*?)</tr>", html).group(1)
    cells = re.findall(r"<td>(.*?)</td>", best_row)  # after its name: the metrics in the header's order
    assert re.fullmatch(r"<strong>[0-9.e+]+</strong>", cells[header.index("FID") - 1]), best_row  # its FID, bold
    assert re.fullmatch(
        r"[0-9.]+ \+- [0-9.]+", cells[header.index("C2ST") - 1].replace("<strong>", "").replace("</strong>", "")
    ), best_row  # the two-sample reading with its standard error
    assert all(len(r) == len(header) for r in rows)
    assert images_outside_tables(md)
    assert (swept / "reports/compare_assets/grid_slow.png").is_file()
    # no revisions named: every experiment of HEAD
    compare(swept, "--out", "reports/experiments.html")
    assert [r[0] for r in tables((swept / "reports/experiments.md").read_text())[0][1:]] == ["slow"]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (`make test` installs it)")
def test_chromium_renders_the_page_offline_with_every_image(swept, tmp_path):
    compare(swept, "main", "slow", "--out", "reports/compare.html")
    page = swept / "reports/compare.html"
    for payload in re.findall(r'src="data:image/png;base64,([^"]+)"', page.read_text()):
        Image.open(io.BytesIO(base64.b64decode(payload))).load()
    image, requested = render(page, tmp_path)
    assert requested == [], f"the page made network requests: {requested}"
    assert len([c for c in image.histogram() if c]) > 50  # a table, digit grids and plots, not a blank page


@pytest.mark.slow
def test_unknown_revision_is_named_and_the_rest_is_written(swept, capsys, monkeypatch):
    code, stderr = compare_in_process(capsys, monkeypatch, swept, "slow", "no-such-exp", "--out", "reports/two.html")
    assert code == 0 and "no-such-exp: unknown revision" in stderr
    assert (swept / "reports/two.html").is_file()
    assert [r[0] for r in tables((swept / "reports/two.md").read_text())[0][1:]] == ["slow"]


@pytest.mark.slow
def test_outputs_not_in_the_cache_are_named_with_the_fix(swept, tmp_path, capsys, monkeypatch):
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(swept), str(clone)], tmp_path)
    run(["git", "fetch", "-q", "origin", "refs/exps/*:refs/exps/*"], clone)  # the exp commits, not the cache
    code, stderr = compare_in_process(capsys, monkeypatch, clone, "slow", "--out", "reports/c.html")
    assert code == 0, stderr
    assert "slow: results/sample/grid.png is not in the local cache; fetch it with `dvc exp pull origin slow" in stderr
    assert "slow" in (clone / "reports/c.md").read_text()


@pytest.mark.slow
def test_nothing_to_compare_is_exit_2(tmp_path, small_repo, capsys, monkeypatch):
    repo = committed_copy(small_repo[0], tmp_path / "r", "a commit with no experiments")
    code, stderr = compare_in_process(capsys, monkeypatch, repo, "--out", "x.html")
    assert code == 2 and stderr.startswith("error: no revisions to compare"), stderr
    assert not (repo / "x.html").exists()
