"""Comparing what a model loaded with what was saved, variable by variable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pytest_ckpt.tree import VariableEntry

SWAPPED = "swapped"
NOT_LOADED = "not_loaded"
CHANGED = "changed"


@dataclass(frozen=True)
class VariableOutcome:
    """A variable that did not survive, and what it holds instead."""

    key: str
    display: str
    shape: tuple[int, ...]
    dtype: str
    verdict: str
    # For SWAPPED: the variable whose saved value this one received.
    source_key: str | None = None
    source_display: str | None = None


def _read(variable) -> np.ndarray:
    return np.asarray(variable.numpy())


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


def compare(
    saved: list[VariableEntry],
    loaded: list[VariableEntry],
    sentinels: list,
) -> list[VariableOutcome]:
    """Every variable of ``loaded`` against its namesake in ``saved``.

    ``saved`` and ``loaded`` come from two models of one factory and have
    the same keys in the same order (the engine checks that once).
    ``sentinels[i]`` is the scalar the i-th loaded variable held before the
    load.  Values are read one variable at a time so that memory stays flat.
    """
    failures: list[tuple[int, np.ndarray]] = []
    for i, (s, l) in enumerate(zip(saved, loaded)):
        got = _read(l.variable)
        if not _same(got, _read(s.variable)):
            failures.append((i, got))
    if not failures:
        return []

    outcomes = []
    for i, got in failures:
        entry = saved[i]  # keys agree; the saver's names match the masks
        if got.size and np.all(got == sentinels[i]):
            outcomes.append(_outcome(entry, NOT_LOADED))
            continue
        source = _find_source(got, saved, skip=i)
        if source is not None:
            outcomes.append(_outcome(entry, SWAPPED, source))
        else:
            outcomes.append(_outcome(entry, CHANGED))
    return outcomes


def _find_source(got: np.ndarray, saved: list[VariableEntry], skip: int) -> VariableEntry | None:
    for j, candidate in enumerate(saved):
        if j == skip or candidate.shape != got.shape:
            continue
        if _same(got, _read(candidate.variable)):
            return candidate
    return None


def _outcome(entry: VariableEntry, verdict: str, source: VariableEntry | None = None):
    return VariableOutcome(
        key=entry.key,
        display=entry.display,
        shape=entry.shape,
        dtype=entry.dtype,
        verdict=verdict,
        source_key=source.key if source else None,
        source_display=source.display if source else None,
    )
