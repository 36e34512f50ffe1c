"""The one Markdown table writer: the report (outputs/page.py), the model card and the docs write their tables with
it. A module of its own, so that a change to the report page's style reruns the report alone, not the export."""

from __future__ import annotations


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GFM table (no trailing newline): a literal | in a cell is escaped (it would end the cell), a short row is
    padded with empty cells."""

    def row(values: list) -> str:
        values = [*map(str, values), *[""] * (len(header) - len(values))]
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    return "\n".join([row(header), "|" + "---|" * len(header), *map(row, rows)])
