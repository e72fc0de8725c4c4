"""Tables of ``docs/serving.md`` as rows of cells, so tests can run what the docs promise."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def _cell(text: str) -> str:
    """A cell without its code-span backticks (single or double)."""
    text = text.strip()
    if text.startswith("`` ") and text.endswith(" ``"):
        return text[3:-3]
    if text.startswith("`") and text.endswith("`") and text.count("`") == 2:
        return text[1:-1]
    return text


def doc_table(header: str) -> list[list[str]]:
    """Body rows of the table whose header row starts with ``| {header} |``.

    Raises:
        LookupError: no such table in the docs.
    """
    lines = DOC.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"| {header} |")), None)
    if start is None:
        raise LookupError(f"{DOC}: no table whose header starts with {header!r}")
    rows = []
    for line in lines[start + 2:]:  # skip the header and the |---| line
        if not line.startswith("|"):
            break
        rows.append([_cell(c) for c in line.strip().strip("|").split(" | ")])
    return rows
