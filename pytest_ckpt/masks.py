"""Freeze masks: which layers of the tree are frozen.

A mask names layers by index path (see :mod:`pytest_ckpt.tree`), so a mask
drawn on one model applies to any other model from the same factory.  It
freezes a layer by setting ``layer.trainable = False`` on that very layer:
freezing a container is a different state from freezing each of its
children (Keras propagates the flag down, but the container's own flag is
what ``trainable_weights`` consults first).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from pytest_ckpt.tree import LayerTree


@dataclass(frozen=True)
class FreezeMask:
    """The set of frozen layers; everything else is trainable."""

    frozen: frozenset[tuple[int, ...]] = frozenset()
    # Names as seen on the model the mask was drawn from: for people only.
    labels: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_paths(cls, tree: LayerTree, paths) -> FreezeMask:
        paths = frozenset(tuple(p) for p in paths)
        labels = tuple(n.display for n in tree.nodes if n.index_path in paths)
        return cls(paths, labels)

    @classmethod
    def nothing(cls) -> FreezeMask:
        return cls()

    @classmethod
    def everything(cls, tree: LayerTree) -> FreezeMask:
        return cls.from_paths(tree, [n.index_path for n in tree.nodes])

    def __bool__(self) -> bool:
        return bool(self.frozen)

    def describe(self) -> str:
        if not self.frozen:
            return "nothing frozen"
        return "frozen: " + ", ".join(self.labels or map(str, sorted(self.frozen)))

    def __repr__(self) -> str:
        return f"FreezeMask({list(self.labels or sorted(self.frozen))!r})"


def snapshot_flags(tree: LayerTree) -> list[bool]:
    return [bool(n.layer.trainable) for n in tree.nodes]


def set_flags(tree: LayerTree, flags: list[bool]) -> None:
    # Pre-order: a parent's setter propagates to its children, which are
    # then set to their own value right after.
    for node, flag in zip(tree.nodes, flags):
        node.layer.trainable = flag


def apply_mask(tree: LayerTree, mask: FreezeMask) -> None:
    """Make exactly the layers in ``mask`` frozen (the rest trainable)."""
    unknown = mask.frozen - {n.index_path for n in tree.nodes}
    if unknown:
        raise ValueError(f"mask names layers this model does not have: {sorted(unknown)}")
    set_flags(tree, [n.index_path not in mask.frozen for n in tree.nodes])


@contextmanager
def masked(tree: LayerTree, mask: FreezeMask):
    """Apply ``mask`` for the duration of the block, then restore the flags."""
    before = snapshot_flags(tree)
    try:
        apply_mask(tree, mask)
        yield tree
    finally:
        set_flags(tree, before)
