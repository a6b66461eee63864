"""The fixed mask pairs every check runs before Hypothesis draws any.

Random masks find the classic bug only by luck: freezing one of two
same-shaped layers in a nested block is one case among 2**n.  These pairs
cover the classic cases on every run: nothing frozen on both sides, then,
for each container (nested model) and each weighted layer, that one frozen
on one side and nothing on the other, both ways; plus the freeze state the
factory itself returned.  With the "same" masks policy each mask is paired
with itself.

Large models have more layers than pairs.  Layers under different
top-level layers are frozen together in one mask: every loader matches the
top-level layers independently (the positional ones only reorder within
one), so a mask that freezes one layer under each of forty blocks tests all
forty single-layer cases at once.  Two layers under one top-level layer are
never combined, because freezing both of two twins restores the order that
freezing one of them breaks, and "under" counts every top-level layer that
holds a layer's weights: a layer object used at the top and inside a nested
model is loaded by position in both.  When a combined pair fails, :func:`split`
names the single-layer pairs inside it, and the first of those that fails
is the one reported: minimal by construction again.  What does not fit
(many layers under one top-level layer, as in a nested ResNet) is chosen
containers first, then the first weighted layer of each container, then
spread evenly over the rest.
"""

from __future__ import annotations

from typing import Any

from pytest_ckpt.framework.tree import LayerNode, LayerTree
from pytest_ckpt.search.masks import SAME, FreezeMask, current_mask

MAX_FIXED_PAIRS = 32


def _spread(nodes: list[LayerNode]) -> list[LayerNode]:
    """The nodes reordered so that any prefix is spread evenly over them (0, n/2, n/4, 3n/4, ...)."""
    order: list[LayerNode] = []
    seen: set[int] = set()
    parts = 1
    while len(order) < len(nodes):
        for k in range(parts):
            i = min(len(nodes) - 1, (k * len(nodes)) // parts)
            if i not in seen:
                seen.add(i)
                order.append(nodes[i])
        parts *= 2
    return order


def _by_priority(tree: LayerTree) -> list[LayerNode]:
    containers = [n for n in tree.maskable() if n.is_container]
    leaves = [n for n in tree.maskable() if not n.is_container]
    firsts = []
    for c in containers:
        inside = [n for n in leaves if n.index_path[:len(c.index_path)] == c.index_path]
        if inside and inside[0] not in firsts:
            firsts.append(inside[0])
    return containers + firsts + _spread([n for n in leaves if n not in firsts])


def _top_level_groups(tree: LayerTree) -> dict[tuple[int, ...], frozenset[tuple[int, ...]]]:
    """For each weighted layer, the top-level layers whose weight lists hold any of its weights.

    Usually just the one it sits under; a layer object used in two places (a
    top-level layer that is also inside a nested model) is loaded by position
    in both, and the tree lists it only once.  () stands for the model itself.
    """
    tops = [(n.index_path, {id(w) for w in n.layer.weights}) for n in tree.nodes if len(n.index_path) == 1]
    groups: dict[tuple[int, ...], frozenset[tuple[int, ...]]] = {}
    for node in tree.maskable():
        if not node.index_path:
            groups[node.index_path] = frozenset({()})
            continue
        own = {id(w) for w in node.layer.weights}
        paths: set[tuple[int, ...]] = {node.index_path[:1]} | {path for path, ids in tops if own & ids}
        groups[node.index_path] = frozenset(paths)
    return groups


def covering_masks(tree: LayerTree, budget: int) -> list[FreezeMask]:
    """At most ``budget`` masks; each weighted layer is frozen alone or beside layers whose
    weights no top-level layer shares with it."""
    if budget <= 0:
        return []
    groups_of = _top_level_groups(tree)
    buckets: list[list[tuple[int, ...]]] = []
    groups: list[set[tuple[int, ...]]] = []
    for node in _by_priority(tree):
        mine = groups_of[node.index_path]
        if len(buckets) < budget:  # a mask of its own while there is room
            buckets.append([node.index_path])
            groups.append(set(mine))
            continue
        fits = [b for b in range(len(buckets)) if () not in mine and not groups[b] & (mine | {()})]
        if fits:
            # The emptiest: layers spread over the masks, not piled into the first.
            b = min(fits, key=lambda b: len(buckets[b]))
            buckets[b].append(node.index_path)
            groups[b] |= mine
    return [FreezeMask.from_paths(tree, paths) for paths in buckets]


def fixed_pairs(save_tree: LayerTree, load_tree: LayerTree, policy: str, *,
                limit: int = MAX_FIXED_PAIRS, translate: Any=None) -> list[tuple[FreezeMask, FreezeMask]]:
    """(save mask, load mask) pairs, the first being nothing frozen on both sides.

    ``translate(mask)`` maps a save-side mask onto the loading model (a
    migration's two trees differ); by default masks apply to both as they are.
    """
    translate = translate or (lambda m: m)
    nothing = FreezeMask.nothing()
    own = [current_mask(save_tree)] if current_mask(save_tree).frozen else []
    if policy == SAME:
        masks = own + covering_masks(save_tree, limit - 1 - len(own))
        pairs = [(m, translate(m)) for m in masks]
    else:
        masks = own + covering_masks(save_tree, (limit - 1) // 2 - len(own))
        pairs = []
        for m in masks:
            pairs += [(nothing, translate(m)), (m, nothing)]
    unique = [(nothing, nothing)]
    for p in pairs:
        if p not in unique:
            unique.append(p)
    return unique[:limit]


def split(pair: tuple[FreezeMask, FreezeMask], translate: Any=None) -> list[tuple[FreezeMask, FreezeMask]]:
    """The single-layer pairs inside a fixed pair that freezes several layers ([] if it freezes one)."""
    translate = translate or (lambda m: m)
    save, load = pair
    nothing = FreezeMask.nothing()
    if len(save.frozen) > 1 and not load.frozen:
        return [(part, nothing) for part in save.parts()]
    if len(load.frozen) > 1 and not save.frozen:
        return [(nothing, part) for part in load.parts()]
    if len(save.frozen) > 1 and load == translate(save):
        return [(part, translate(part)) for part in save.parts()]
    return []
