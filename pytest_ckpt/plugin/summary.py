"""The end-of-session summary: notes, and the factory x format results matrix."""

from __future__ import annotations

import os
from typing import Any

from pytest_ckpt.plugin.session import CkptSession


def matrix(records: Any, factories: Any=()) -> str:
    """A Markdown grid: one row per factory, one column per format, verdict words in the cells.

    Rows follow ``factories`` (the configured order), then the rest by name:
    xdist reports items in whatever order the workers finish them.
    """
    from pytest_ckpt.framework.formats import format_names

    rows: dict[tuple[str, str], dict[str, str]] = {}
    for r in records:
        rows.setdefault((r.kind, r.factory), {})[r.format] = r.verdict
    seen = {r.format for r in records}
    # Columns in the one order formats have everywhere, whatever order xdist reported them in.
    formats = [f for f in format_names() if f in seen] + sorted(seen - set(format_names()))
    lines = ["| check | factory | " + " | ".join(formats) + " |",
             "|---|---|" + "---|" * len(formats)]
    rank = {name: i for i, name in enumerate(factories)}
    for (kind, factory), cells in sorted(rows.items(), key=lambda row: (
            row[0][0], rank.get(row[0][1], len(rank)), row[0][1])):
        lines.append(f"| {kind} | `{factory}` | " + " | ".join(cells.get(f, "") for f in formats) + " |")
    return "\n".join(lines)


def write_summary(terminalreporter: Any, state: CkptSession) -> None:
    if state.records:
        table = matrix(state.records, state.settings.models)
        terminalreporter.write_sep("=", "pytest-ckpt results")
        terminalreporter.write_line(table)
        target = state.settings.report
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        for path, mode, text in ((target, "w", "# pytest-ckpt results\n\n" + table + "\n"),
                                 (summary, "a", "## pytest-ckpt results\n\n" + table + "\n\n")):
            if not path:
                continue
            if os.path.exists(path) and not os.path.isfile(path):  # a pipe would block the session's end
                terminalreporter.write_line(f"pytest-ckpt: not writing the results matrix to {path}: "
                                            "not a regular file", red=True)
                continue
            try:
                with open(path, mode) as f:
                    f.write(text)
            except OSError as exc:  # the run's verdicts stand; only this copy is lost
                terminalreporter.write_line(f"pytest-ckpt: could not write the results matrix to "
                                            f"{path}: {exc.strerror or exc}", red=True)
    if state.notes:
        terminalreporter.write_sep("-", "pytest-ckpt notes")
        for note in state.notes:
            terminalreporter.write_line(note)
