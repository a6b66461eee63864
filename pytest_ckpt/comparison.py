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


def classify(
    saved: list[VariableEntry],
    loaded: list[VariableEntry],
    sentinels: list,
    survived: list[bool],
) -> list[VariableOutcome]:
    """What each variable that did not survive holds instead.

    ``saved`` and ``loaded`` come from two models of one factory and have
    the same keys in the same order (the engine checks that once);
    ``survived[i]`` says whether the i-th variable came back exactly and
    ``sentinels[i]`` is the scalar it held before the load.  Values are read
    one variable at a time, and only for failures, so memory stays flat.
    """
    outcomes = []
    for i in (i for i, ok in enumerate(survived) if not ok):
        got = _read(loaded[i].variable)
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
