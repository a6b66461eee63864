"""The results matrix: one row per check and factory, one column per format.

Each run (or each shard of a CI run) can write its cells as JSON; any
number of such files merge into the matrix of the whole set, refusing files
written by another version of pytest-ckpt or with other settings, and naming
the cells that two files both hold or that none holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pytest_ckpt.errors import CkptError

SCHEMA = "pytest-ckpt results v1"


class MergeError(CkptError):
    """Result files that cannot be merged into one matrix; names the files."""


@dataclass(frozen=True)
class Cell:
    """One generated item's verdict."""

    kind: str  # "roundtrip", "migration", "resume"
    factory: str
    format: str
    verdict: str  # "pass", "FAIL: swapped", "skip", ...


@dataclass
class Results:
    """What one run (or one shard) writes: its cells, and what decides them."""

    version: str
    settings: dict[str, Any]  # every setting that changes a verdict: formats, examples, masks...
    factories: list[str]
    cells: list[Cell] = field(default_factory=list)

    def dumps(self) -> str:
        return json.dumps({"schema": SCHEMA, "version": self.version, "settings": self.settings,
                           "factories": self.factories, "cells": [asdict(c) for c in self.cells]},
                          indent=1, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> Results:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("schema") != SCHEMA:
                raise ValueError(f"not a {SCHEMA} file")
            cells = [Cell(**{k: str(c[k]) for k in ("kind", "factory", "format", "verdict")})
                     for c in data["cells"]]
            return cls(str(data["version"]), dict(data["settings"]), [str(f) for f in data["factories"]], cells)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MergeError(f"{path}: not a pytest-ckpt results file ({type(exc).__name__}: {exc})") from None


def matrix(records: Iterable[Any], factories: Sequence[str] = (), formats_order: Sequence[str] = ()) -> str:
    """A Markdown grid of verdict words.

    Rows follow ``factories`` (the configured order), then the rest by name:
    xdist and shards report items in whatever order they finish them.
    Columns follow ``formats_order``, then the rest by name.
    """
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for r in records:
        rows.setdefault((r.kind, r.factory), {})[r.format] = r.verdict
    seen = {f for cells in rows.values() for f in cells}
    formats = [f for f in formats_order if f in seen] + sorted(seen - set(formats_order))
    lines = ["| check | factory | " + " | ".join(formats) + " |", "|---|---|" + "---|" * len(formats)]
    rank = {name: i for i, name in enumerate(factories)}
    for (kind, factory), cells in sorted(rows.items(), key=lambda row: (
            row[0][0], rank.get(row[0][1], len(rank)), row[0][1])):
        lines.append(f"| {kind} | `{factory}` | " + " | ".join(cells.get(f, "") for f in formats) + " |")
    return "\n".join(lines)


def merge(files: Sequence[str | Path], formats_order: Sequence[str] = ()) -> tuple[str, list[str]]:
    """The matrix of all ``files``, and the problems found: cells two files hold, and
    cells of the grid no file holds.  Files of other versions or settings are refused."""
    if not files:
        raise MergeError("no results files given")
    loaded = [(str(f), Results.load(f)) for f in files]
    first_name, first = loaded[0]
    for name, results in loaded[1:]:
        if results.version != first.version:
            raise MergeError(f"{name} was written by pytest-ckpt {results.version} and {first_name} by "
                             f"{first.version}: merge results of one version")
        changed = sorted(k for k in set(results.settings) | set(first.settings)
                         if results.settings.get(k) != first.settings.get(k))
        if changed:
            raise MergeError(f"{name} and {first_name} were run with different settings ({', '.join(changed)}): "
                             "a merged matrix would mix two experiments")
    owner: dict[tuple[str, str, str], str] = {}
    problems: list[str] = []
    cells: list[Cell] = []
    for name, results in loaded:
        for cell in results.cells:
            key = (cell.kind, cell.factory, cell.format)
            if key in owner:
                problems.append(f"duplicated: {cell.kind} {cell.factory} [{cell.format}] is in {owner[key]} and {name}")
                continue
            owner[key] = name
            cells.append(cell)
    problems += _missing(cells, first)
    return matrix(cells, first.factories, formats_order), problems


def _missing(cells: list[Cell], results: Results) -> list[str]:
    """Grid cells no file holds: every kind and format seen, for every configured factory."""
    kinds = sorted({c.kind for c in cells})
    formats = sorted({c.format for c in cells})
    have = {(c.kind, c.factory, c.format) for c in cells}
    factories = list(dict.fromkeys([*results.factories, *(c.factory for c in cells)]))
    rows = [(kind, factory) for kind in kinds for factory in factories
            if any((kind, factory, f) in have for f in formats) or factory in results.factories]
    return [f"missing: {kind} {factory} [{fmt}]" for kind, factory in rows for fmt in formats
            if (kind, factory, fmt) not in have and any((kind, x, fmt) in have for x in factories)]
