"""Hypothesis strategies for freeze masks.

Import this only where Hypothesis is wanted: it imports Hypothesis.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from pytest_ckpt.framework.tree import LayerTree
from pytest_ckpt.search.masks import SAME, FreezeMask


def _as_tree(model_or_tree: Any) -> Any:
    """A layer tree, or anything that lists maskable nodes (a loading side's Structure)."""
    return model_or_tree if hasattr(model_or_tree, "maskable") else LayerTree(model_or_tree)


def freeze_masks(model: Any) -> st.SearchStrategy[FreezeMask]:
    """Masks over every layer of ``model``'s tree that has weights, nested models included.

    One boolean per layer: Hypothesis shrinks booleans to False, so a
    failing mask shrinks towards "nothing frozen" and the minimal example
    keeps only the layers whose freezing matters.  Masks print as the
    layers' name paths.
    """
    tree = _as_tree(model)
    paths = [n.index_path for n in tree.maskable()]
    if not paths:
        return st.just(FreezeMask.nothing())

    def build(flags: list[bool]) -> FreezeMask:
        return FreezeMask.from_paths(tree, [p for p, f in zip(paths, flags) if f])

    return st.lists(st.booleans(), min_size=len(paths), max_size=len(paths)).map(build)


def mask_pairs(save_model: Any, load_model: Any=None, *, policy: str = "independent",
               translate: Any=None) -> st.SearchStrategy[tuple[FreezeMask, FreezeMask]]:
    """(save mask, load mask) pairs under a masks policy.

    ``independent``: drawn separately (on each model's own tree, for a
    migration); ``same``: the load mask is the save mask (``translate``d onto
    the loading model when the two trees differ).
    """
    save = freeze_masks(save_model)
    if policy == SAME:
        translate = translate or (lambda m: m)
        return save.map(lambda m: (m, translate(m)))
    return st.tuples(save, freeze_masks(load_model if load_model is not None else save_model))
