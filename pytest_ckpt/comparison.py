"""What a variable that did not survive holds instead: the verdict words.

One classification serves round trips, migrations, optimizer state and
goldens: each compares what a variable holds after the load with what was
expected, with what it held before the load, and with every expected value
(by fingerprint, so nothing is re-read).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

SWAPPED = "swapped"
NOT_LOADED = "not_loaded"
CHANGED = "changed"
OUTPUTS_DIFFER = "outputs_differ"
VERDICTS = (SWAPPED, NOT_LOADED, CHANGED)


def fingerprint(array: np.ndarray) -> str:
    """SHA-256 of dtype, shape and bytes (the golden manifests' checksum)."""
    array = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    h.update(array.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class VariableOutcome:
    """A variable that did not survive, and what it holds instead."""

    key: str
    display: str
    shape: tuple[int, ...]
    dtype: str
    verdict: str
    # For SWAPPED: the variable whose expected value this one received, when
    # exactly one variable has that value (otherwise None, with the count).
    source_key: str | None = None
    source_display: str | None = None
    candidates: int = 0
    # "model" or "optimizer": optimizer slots are reported apart.
    kind: str = "model"


class ExpectedValues:
    """Fingerprints of every expected value, to name the source of a swap."""

    def __init__(self, entries):
        """``entries``: (key, display, fingerprint) for every expected variable."""
        self._by_print: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for key, display, digest in entries:
            self._by_print[digest].append((key, display))

    def sources(self, got: np.ndarray, skip: str) -> list[tuple[str, str]]:
        return [s for s in self._by_print.get(fingerprint(got), []) if s[0] != skip]


def classify(*, key: str, display: str, got: np.ndarray, preload: np.ndarray | str | None,
             expected: ExpectedValues, kind: str = "model") -> VariableOutcome:
    """The verdict for one variable that does not hold its expected value.

    ``preload`` is what the variable held right before the load (an array or
    its fingerprint), so "never loaded" is decided by what actually was
    there, never by a formula that could collide with a saved value.
    """
    base = dict(key=key, display=display, shape=tuple(got.shape), dtype=str(got.dtype), kind=kind)
    if preload is not None and got.size:
        before = preload if isinstance(preload, str) else fingerprint(preload)
        if fingerprint(got) == before:
            return VariableOutcome(verdict=NOT_LOADED, **base)
    sources = expected.sources(got, skip=key)
    if len(sources) == 1:
        return VariableOutcome(verdict=SWAPPED, source_key=sources[0][0],
                               source_display=sources[0][1], candidates=1, **base)
    if sources:
        return VariableOutcome(verdict=SWAPPED, candidates=len(sources), **base)
    return VariableOutcome(verdict=CHANGED, **base)
