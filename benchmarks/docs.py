"""The figures of README.md and docs/, generated from the committed files that hold them, for cogapp.

A page holds a marked section, e.g. in docs/recipes.md:

    <!-- [[[cog import benchmarks.docs as d; d.recipes() ]]] -->
    ...generated...
    <!-- [[[end]]] -->

`make docs` regenerates every such section (`cog -r`); `make lint` fails when one is stale (`cog --check`). The
sources: results/*/metrics.json (the committed `dvc repro`), docs/pareto.jsonl and docs/pareto_speed.jsonl
(`python -m benchmarks.pareto run|speed`), docs/timings.jsonl (`python -m benchmarks.timings record`),
recipes/seeds.yaml. A figure appears on one page; other pages link to it.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def out(text: str) -> None:
    """Write into the section cog is generating (outside cog: print)."""
    try:
        import cog

        cog.out(text if text.endswith("\n") else text + "\n")
    except (ImportError, AttributeError):
        print(text)


def rows(name: str) -> list[dict]:
    path = ROOT / "docs" / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in body])


def recipes() -> None:
    """docs/recipes.md: the five `dvc exp run` lines (recipes/seeds.yaml)."""
    from benchmarks.recipes import shell_lines

    out("```bash\n" + "\n".join(wrap(line) for line in shell_lines()) + "\n```")


def wrap(line: str, width: int = 116) -> str:
    """A shell line broken with `\\` before an `-S` where it passes `width`; its `# comment` stays on the last."""
    command, _, comment = line.partition("   # ")
    parts, current = [], ""
    for word in command.split(" -S "):
        piece = word if not current else f" -S {word}"
        if current and len(current) + len(piece) > width:
            parts.append(current + " \\")
            current = "  -S " + word
        else:
            current += piece
    parts.append(current + (f"   # {comment}" if comment else ""))
    return "\n".join(parts)
