"""The fixed mask pairs every check runs before Hypothesis draws any.

Random masks find the classic bug only by luck: freezing one of two
same-shaped layers in a nested block is one case among 2**n.  These pairs
cover the classic cases on every run, minimal by construction: nothing
frozen on both sides, then, for each container (nested model) and each
weighted layer, that one frozen on one side and nothing on the other, both
ways; plus the freeze state the factory itself returned.  With the "same"
masks policy each mask is paired with itself.  Large models are capped:
containers first, then the first weighted layer of each container, then
layers spread evenly over the tree.
"""

from __future__ import annotations

from pytest_ckpt.masks import SAME, FreezeMask, current_mask
from pytest_ckpt.tree import LayerTree

MAX_FIXED_PAIRS = 32


def single_layer_masks(tree: LayerTree, budget: int) -> list[FreezeMask]:
    containers = [n for n in tree.maskable() if n.is_container]
    leaves = [n for n in tree.maskable() if not n.is_container]
    chosen = list(containers)
    for c in containers:
        inside = [n for n in leaves if n.index_path[:len(c.index_path)] == c.index_path]
        if inside and inside[0] not in chosen:
            chosen.append(inside[0])
    rest = [n for n in leaves if n not in chosen]
    room = budget - len(chosen)
    if 0 < room < len(rest):
        step = (len(rest) - 1) / max(room - 1, 1)
        rest = [rest[round(i * step)] for i in range(room)]
    return [FreezeMask.from_paths(tree, [n.index_path]) for n in (chosen + rest)[:budget]]


def fixed_pairs(save_tree: LayerTree, load_tree: LayerTree, policy: str, *,
                limit: int = MAX_FIXED_PAIRS, translate=None) -> list[tuple[FreezeMask, FreezeMask]]:
    """(save mask, load mask) pairs, the first being nothing frozen on both sides.

    ``translate(mask)`` maps a save-side mask onto the loading model (a
    migration's two trees differ); by default masks apply to both as they are.
    """
    translate = translate or (lambda m: m)
    nothing = FreezeMask.nothing()
    own = current_mask(save_tree)
    if policy == SAME:
        masks = ([own] if own.frozen else []) + single_layer_masks(save_tree, limit - 1)
        pairs = [(m, translate(m)) for m in masks]
    else:
        budget = (limit - 1) // 2
        masks = ([own] if own.frozen else []) + single_layer_masks(save_tree, budget)
        pairs = []
        for m in masks[:budget]:
            pairs += [(nothing, translate(m)), (m, nothing)]
    unique = [(nothing, nothing)]
    for p in pairs:
        if p not in unique:
            unique.append(p)
    return unique[:limit]
