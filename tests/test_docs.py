"""The README and the docs/ pages: short README, every page linked from it, every relative link and anchor alive."""

import re
import subprocess
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
    assert len(readme.read_text().splitlines()) <= 160
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(readme)}
    for page in PAGES[1:]:
        assert page.resolve() in linked, f"README.md does not link {page.relative_to(ROOT)}"


def test_the_quick_start_commands_are_make_targets_and_ci_runs_the_test_one():
    """The README's quick-start block: `make run`, the activation line a new shell needs, `make test`; the make
    commands are targets of the Makefile, `make run` ends by printing the activation line, .ci/run runs the last."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", readme, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make run", ". .venv/bin/activate", "make test"]
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M))
    assert {c.split()[1] for c in commands if c.startswith("make ")} <= targets
    recipe = subprocess.run(
        ["make", "--no-print-directory", "-n", "run"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert ". .venv/bin/activate" in recipe.strip().splitlines()[-1]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == commands[-1]
