"""The README and the docs/ pages: short README, every page linked from it, every relative link and anchor alive."""

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def links(page: Path) -> list[str]:
    """Every link and image target of a Markdown page, parsed as GitHub does (CommonMark + tables)."""
    found = []
    for token in MarkdownIt("commonmark").enable("table").parse(page.read_text()):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(child.attrGet("href"))
            elif child.type == "image":
                found.append(child.attrGet("src"))
    return found


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lowercased, punctuation but hyphens dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_exists(page):
    for target in links(page):
        if re.match(r"^[a-z]+:", target):  # https:, mailto: ... (no network here)
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(file), f"{page.name}: no heading #{anchor} in {file.name}"


def test_the_readme_is_short_and_links_every_docs_page():
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= 250
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(readme)}
    for page in PAGES[1:]:
        assert page.resolve() in linked, f"README.md does not link {page.relative_to(ROOT)}"


def test_the_readme_names_the_two_commands_ci_runs():
    text = (ROOT / "README.md").read_text()
    assert "make run" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_a_study_row_reads_as_the_changes_that_make_it_from_the_default():
    """The generated tables name each row by its `-S` changes to the committed params (seed and run-only keys apart,
    in params.yaml's order; a setting newer than the row reads as it was then) and put it in the right table."""
    import yaml

    from benchmarks.docs import BEFORE, EARLIER_OPTIMIZER, difference, earlier, shown

    default = yaml.safe_load((ROOT / "params.yaml").read_text())
    row = {**default, "seed": 7, "precision": "fp32", "epochs": 6, "lr": default["lr"] / 2}
    assert shown(difference(row)) == f"`lr={default['lr'] / 2}` `epochs=6`"
    assert shown(difference({**default, "seed": 1})) == "the default"
    old = {k: v for k, v in {**default, **EARLIER_OPTIMIZER}.items() if k not in BEFORE}  # a row from before them
    assert earlier(old) and not earlier(default)
    assert "lr_schedule" not in difference(old, {**default, **EARLIER_OPTIMIZER, "d_mbstd": False})
