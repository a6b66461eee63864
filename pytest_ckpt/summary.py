"""The end-of-session summary: notes, and the factory x format results matrix."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_ckpt.session import CkptSession


def matrix(records) -> str:
    """A Markdown grid: one row per factory, one column per format, verdict words in the cells."""
    from pytest_ckpt.formats import format_names

    rows: dict[tuple[str, str], dict[str, str]] = {}
    for r in records:
        rows.setdefault((r.kind, r.factory), {})[r.format] = r.verdict
    seen = {r.format for r in records}
    # Columns in the one order formats have everywhere, whatever order xdist reported them in.
    formats = [f for f in format_names() if f in seen] + sorted(seen - set(format_names()))
    lines = ["| check | factory | " + " | ".join(formats) + " |",
             "|---|---|" + "---|" * len(formats)]
    for (kind, factory), cells in rows.items():
        lines.append(f"| {kind} | `{factory}` | " + " | ".join(cells.get(f, "") for f in formats) + " |")
    return "\n".join(lines)


def write_summary(terminalreporter, state: CkptSession) -> None:
    if state.records:
        table = matrix(state.records)
        terminalreporter.write_sep("=", "pytest-ckpt results")
        terminalreporter.write_line(table)
        target = state.settings.report
        if target:
            Path(target).write_text("# pytest-ckpt results\n\n" + table + "\n")
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a") as f:
                f.write("## pytest-ckpt results\n\n" + table + "\n\n")
    if state.notes:
        terminalreporter.write_sep("-", "pytest-ckpt notes")
        for note in state.notes:
            terminalreporter.write_line(note)
