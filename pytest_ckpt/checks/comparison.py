"""What a variable that did not survive holds instead: the verdicts.

One classification serves round trips, migrations, optimizer state and
goldens.  It compares digests (SHA-256 of dtype, shape and bytes), never
values: the loading side may be another process, which reports what each
variable holds as a digest, and the checking side knows the digest of every
value it saved and of every pre-load value.
"""

from __future__ import annotations

import enum
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np


class Verdict(enum.StrEnum):
    """What a variable holds after the load, when it is not its saved value."""

    SWAPPED = "swapped"  # another variable's saved value
    NOT_LOADED = "not_loaded"  # its pre-load value: the load never wrote it
    CHANGED = "changed"  # anything else
    OUTPUTS_DIFFER = "outputs_differ"  # every variable survived, the outputs did not


class VariableKind(enum.StrEnum):
    MODEL = "model"
    OPTIMIZER = "optimizer"


SWAPPED, NOT_LOADED, CHANGED, OUTPUTS_DIFFER = (Verdict.SWAPPED, Verdict.NOT_LOADED, Verdict.CHANGED,
                                                Verdict.OUTPUTS_DIFFER)
# A variable that did not exist when the load ran (an optimizer built afterwards, as the
# first training step builds it): if it does not hold its saved value, the load never wrote it.
CREATED_AFTER = "created-after-load"


def fingerprint(array: Any) -> str:
    """SHA-256 of dtype, shape and bytes (the golden manifests' checksum)."""
    array = np.ascontiguousarray(array)
    h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    h.update(array.tobytes() if array.dtype.hasobject else array.view(np.uint8))
    return h.hexdigest()


@dataclass(frozen=True)
class VariableOutcome:
    """A variable that did not survive, and what it holds instead."""

    key: str
    display: str
    shape: tuple[int, ...]
    dtype: str
    verdict: Verdict
    # For SWAPPED: the variable whose expected value this one received, when
    # exactly one variable has that value (otherwise None, with the count).
    source_key: str | None = None
    source_display: str | None = None
    candidates: int = 0
    # Optimizer variables are reported apart.
    kind: VariableKind = VariableKind.MODEL

    def __post_init__(self) -> None:
        # Plain strings ("optimizer") are accepted and kept as the enums they name.
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        object.__setattr__(self, "kind", VariableKind(self.kind))


class ExpectedValues:
    """Digests of every expected value, to name the source of a swap."""

    def __init__(self, entries: Iterable[tuple[str, str, str]]) -> None:
        """``entries``: (key, display, digest) for every expected variable."""
        self._by_digest: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for key, display, digest in entries:
            self._by_digest[digest].append((key, display))

    def sources(self, digest: str, skip: str) -> list[tuple[str, str]]:
        return [s for s in self._by_digest.get(digest, []) if s[0] != skip]


def classify(*, key: str, display: str, shape: tuple[int, ...], dtype: str, got: str,
             preload: str | None, expected: ExpectedValues,
             kind: VariableKind = VariableKind.MODEL) -> VariableOutcome:
    """The verdict for one variable that does not hold its expected value.

    ``got`` is the digest of what it holds; ``preload`` the digest of what it
    held right before the load (so "never loaded" is decided by what was
    actually there), :data:`CREATED_AFTER` for a variable created after the
    load, or None when nothing is known (a model ``load_model`` built anew).
    """
    base: dict[str, Any] = dict(key=key, display=display, shape=tuple(shape), dtype=dtype, kind=kind)
    if preload is not None and got == preload and int(np.prod(shape)):
        return VariableOutcome(verdict=Verdict.NOT_LOADED, **base)  # type: ignore[arg-type]
    sources = expected.sources(got, skip=key)
    if len(sources) == 1:
        return VariableOutcome(verdict=Verdict.SWAPPED, source_key=sources[0][0],  # type: ignore[arg-type]
                               source_display=sources[0][1], candidates=1, **base)
    if sources:
        return VariableOutcome(verdict=Verdict.SWAPPED, candidates=len(sources), **base)  # type: ignore[arg-type]
    if preload == CREATED_AFTER:
        return VariableOutcome(verdict=Verdict.NOT_LOADED, **base)  # type: ignore[arg-type]
    return VariableOutcome(verdict=Verdict.CHANGED, **base)  # type: ignore[arg-type]
