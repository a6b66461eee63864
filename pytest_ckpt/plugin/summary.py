"""The end-of-session summary: notes, and the factory x format results matrix."""

from __future__ import annotations

import os
from typing import Any

from pytest_ckpt.plugin.session import CkptSession
from pytest_ckpt.report.matrix import Cell, Results
from pytest_ckpt.report.matrix import matrix as grid


def matrix(records: Any, factories: Any = (), formats: Any = ()) -> str:
    """The results matrix of this run: built-in formats in their one order, then users' as asked for."""
    from pytest_ckpt.framework.formats import format_names

    return grid(records, list(factories), list(dict.fromkeys([*format_names(), *formats])))


def results(state: CkptSession) -> Results:
    """This run's cells and every setting that changes a verdict, for ``pytest-ckpt report``."""
    from importlib.metadata import PackageNotFoundError, version

    import pytest_ckpt
    from pytest_ckpt.framework.detection import configured_backend

    s = state.settings
    try:
        keras_version = version("keras")
    except PackageNotFoundError:
        keras_version = None
    settings = {"formats": s.formats, "examples": s.examples, "masks": str(s.masks),
                "isolation": s.isolation.value, "models": s.models,
                "migrations": [" -> ".join(m) for m in s.migrations], "roundtrip": s.roundtrip,
                "resume": s.resume, "backend": configured_backend(), "keras": keras_version}
    return Results(pytest_ckpt.__version__, settings, list(s.models),
                   [Cell(str(r.kind), r.factory, r.format, r.verdict) for r in state.records])


def write_summary(terminalreporter: Any, state: CkptSession) -> None:
    if state.records:
        table = matrix(state.records, state.settings.models, state.settings.formats)
        terminalreporter.write_sep("=", "pytest-ckpt results")
        terminalreporter.write_line(table)
        target = state.settings.report
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        as_json = bool(target) and str(target).endswith(".json")
        report_text = results(state).dumps() if as_json else "# pytest-ckpt results\n\n" + table + "\n"
        for path, mode, text in ((target, "w", report_text),
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
