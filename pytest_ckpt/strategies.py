"""Hypothesis strategies for freeze masks.

Import this only where Hypothesis is wanted: it imports Hypothesis.
"""

from __future__ import annotations

from hypothesis import strategies as st

from pytest_ckpt.masks import FreezeMask
from pytest_ckpt.tree import LayerTree


def _as_tree(model_or_tree) -> LayerTree:
    if isinstance(model_or_tree, LayerTree):
        return model_or_tree
    return LayerTree(model_or_tree)


def freeze_masks(model, *, include_root: bool = True) -> st.SearchStrategy[FreezeMask]:
    """Masks over every layer of ``model``'s tree, nested models included.

    One boolean per layer: Hypothesis shrinks booleans to False, so a
    failing mask shrinks towards "nothing frozen" and the minimal example
    keeps only the layers whose freezing matters.  Masks print as the
    layers' name paths.
    """
    tree = _as_tree(model)
    nodes = [n for n in tree.maskable() if include_root or n.index_path]
    paths = [n.index_path for n in nodes]
    if not paths:
        return st.just(FreezeMask.nothing())

    def build(flags: list[bool]) -> FreezeMask:
        return FreezeMask.from_paths(tree, [p for p, f in zip(paths, flags) if f])

    return st.lists(st.booleans(), min_size=len(paths), max_size=len(paths)).map(build)


def mask_pairs(model) -> st.SearchStrategy[tuple[FreezeMask, FreezeMask]]:
    """(save mask, load mask) pairs drawn independently."""
    masks = freeze_masks(model)
    return st.tuples(masks, masks)
