"""Variables no checkpoint format saves, by design: listed here with the reason.

A model's ``variables`` include state that is not a weight.  Keras saves
``model.weights`` (and the optimizer's variables); these others are left
out of every exact comparison, and every report names them, so nothing is
skipped silently.
"""

from __future__ import annotations

from typing import Any

from pytest_ckpt.framework.tree import LayerTree

SEED_GENERATOR = ("random-number generator state (Dropout, noise and random augmentation layers): "
                  "no checkpoint format saves it, so a loaded model draws its own random numbers")
METRIC = "metric state: accumulated during evaluation and reset before the next; not saved"
OTHER = "in model.variables but not in model.weights, which is what Keras saves"


def reason(variable: Any) -> str:
    path = str(getattr(variable, "path", "") or getattr(variable, "name", ""))
    if "seed_generator" in path:
        return SEED_GENERATOR
    if any(word in path for word in ("metric", "/total", "/count")):
        return METRIC
    return OTHER


def unsaved(tree: LayerTree) -> list[tuple[str, str]]:
    """(variable path, reason) for each variable of the model that no format saves."""
    model = tree.model
    weights = {id(w) for w in model.weights}
    found = []
    for v in getattr(model, "variables", []):
        if id(v) not in weights:
            found.append((str(getattr(v, "path", "") or v.name), reason(v)))
    return found


def unsaved_note(found: list[tuple[str, str]]) -> str:
    """One line: what was left out of the comparison, grouped by reason."""
    by_reason: dict[str, list[str]] = {}
    for path, why in found:
        by_reason.setdefault(why, []).append(path)
    return "; ".join(f"{len(paths)} not compared ({', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}): "
                     f"{why}" for why, paths in by_reason.items())
