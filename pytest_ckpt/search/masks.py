"""Freeze masks: which layers of the tree are frozen.

A mask names layers by index path (see :mod:`pytest_ckpt.framework.tree`), so a mask
drawn on one model applies to any other model from the same factory.  A
mask is what a user writes: ``layer.trainable = False`` for each layer in
it, with Keras's own propagation, so freezing a container freezes everything
inside it (as ``base.trainable = False`` does).  Freezing a container is
still a different state from freezing each of its children: the container's
own flag is what ``trainable_weights`` consults first, and what the
positional loaders see.
"""

from __future__ import annotations

import enum
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pytest_ckpt.framework import compat
from pytest_ckpt.framework.tree import LayerTree


@dataclass(frozen=True)
class FreezeMask:
    """The set of frozen layers; everything else is trainable."""

    frozen: frozenset[tuple[int, ...]] = frozenset()
    # Names as seen on the model the mask was drawn from: for people only.
    labels: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_paths(cls, tree: LayerTree, paths: Any) -> FreezeMask:
        paths = frozenset(tuple(p) for p in paths)
        labels = tuple(n.display for n in tree.nodes if n.index_path in paths)
        return cls(paths, labels)

    @classmethod
    def from_names(cls, tree: LayerTree, names: Any) -> FreezeMask:
        """A mask from layer name paths as reports print them ("block/a", "resnet_small")."""
        by_name = {n.display: n.index_path for n in tree.nodes}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            from pytest_ckpt.errors import ConfigError

            raise ConfigError(f"no layer named {', '.join(map(repr, unknown))} in the model; "
                              f"layer paths: {', '.join(n.display for n in tree.maskable()[:30])}")
        return cls.from_paths(tree, [by_name[name] for name in names])

    @classmethod
    def nothing(cls) -> FreezeMask:
        return cls()

    @classmethod
    def everything(cls, tree: LayerTree) -> FreezeMask:
        return cls.from_paths(tree, [n.index_path for n in tree.nodes])

    def parts(self) -> list[FreezeMask]:
        """One mask per frozen layer, in tree order."""
        paths = sorted(self.frozen)
        labels = self.labels if len(self.labels) == len(paths) else ("",) * len(paths)
        return [FreezeMask(frozenset([p]), (label,) if label else ()) for p, label in zip(paths, labels)]

    def describe(self) -> str:
        if not self.frozen:
            return "nothing frozen"
        return "frozen: " + ", ".join(self.labels or map(str, sorted(self.frozen)))

    def __repr__(self) -> str:
        return f"FreezeMask({list(self.labels or sorted(self.frozen))!r})"


@dataclass(frozen=True)
class TrainableState:
    """Every layer's and every variable's ``trainable`` flag, to put back later.

    Keras 3 lets a single variable be frozen (``kernel.trainable = False``)
    and overwrites that flag whenever its layer's flag is set, so both levels
    are recorded.  (tf-keras variables have no settable flag.)
    """

    layers: tuple[bool, ...]
    variables: tuple[tuple[Any, bool], ...]  # (Keras variable, its flag)

    @classmethod
    def of(cls, tree: LayerTree) -> TrainableState:
        variables = tuple((v, bool(v.trainable)) for v in _settable_variables(tree.model))
        return cls(tuple(bool(n.layer.trainable) for n in tree.nodes), variables)

    def restore(self, tree: LayerTree) -> None:
        _set_layer_flags(tree, self.layers)
        for variable, flag in self.variables:
            if variable.trainable != flag:
                variable.trainable = flag


def _settable_variables(model: Any) -> list:
    variables = []
    for v in model.weights:
        if isinstance(getattr(type(v), "trainable", None), property) and type(v).trainable.fset:
            variables.append(v)
    return variables


def _set_layer_flags(tree: LayerTree, flags: Any) -> None:
    # Pre-order: a parent's setter propagates to its children, which are
    # then set to their own value right after.
    # Every flag is set, even one that already holds: the setter also resets
    # the layer's variables' own flags, so a mask means the same whatever came before.
    for node, flag in zip(tree.nodes, flags):
        compat.set_trainable(node.layer, flag)
    # A layer object used in two places sits in the tree once; a container
    # set after it (pre-order) propagates over its flag.  Set it again, and
    # what it contains, until every flag holds (a few rounds at most).
    for _ in range(len(tree.nodes)):
        wrong = [(n, f) for n, f in zip(tree.nodes, flags) if bool(n.layer.trainable) != f]
        if not wrong:
            return
        compat.set_trainable(wrong[0][0].layer, wrong[0][1])


def apply_mask(tree: LayerTree, mask: FreezeMask) -> None:
    """What a user writes: ``layer.trainable = False`` for each layer in ``mask``, in tree
    order, on a model whose layers are all trainable; Keras propagates each into what the
    layer contains (a layer used in two places too)."""
    unknown = mask.frozen - {n.index_path for n in tree.nodes}
    if unknown:
        raise ValueError(f"mask names layers this model does not have: {sorted(unknown)}")
    _set_layer_flags(tree, [True] * len(tree.nodes))
    for node in tree.nodes:
        if node.index_path in mask.frozen:
            compat.set_trainable(node.layer, False)


def frozen_by(mask: FreezeMask, index_path: tuple[int, ...]) -> bool:
    """Whether the layer at ``index_path`` is frozen under ``mask`` (itself or an enclosing layer)."""
    return any(index_path[:i] in mask.frozen for i in range(len(index_path) + 1))


@contextmanager
def masked(tree: LayerTree, mask: FreezeMask) -> Any:
    """Apply ``mask`` for the duration of the block, then put every flag back."""
    before = TrainableState.of(tree)
    try:
        apply_mask(tree, mask)
        yield tree
    finally:
        before.restore(tree)


class MaskPolicy(enum.StrEnum):
    """How save and load masks relate: drawn independently (the hazard users run
    into), or equal (the documented correct usage: a regression test of the
    formats themselves)."""

    INDEPENDENT = "independent"
    SAME = "same"


INDEPENDENT, SAME = MaskPolicy.INDEPENDENT, MaskPolicy.SAME
POLICIES = tuple(p.value for p in MaskPolicy)


def current_mask(tree: LayerTree) -> FreezeMask:
    """The freeze state the model is in now (say, as its factory built it): its
    outermost frozen layers."""
    frozen = [n.index_path for n in tree.maskable() if not n.layer.trainable]
    outermost = [p for p in frozen if not any(p[:i] in frozen for i in range(len(p)))]
    return FreezeMask.from_paths(tree, outermost)


def translate(mask: FreezeMask, source: Any, target: Any) -> FreezeMask:
    """The same mask on another framework's build of the architecture (a migration).

    ``source`` and ``target`` are loading-side structures (plain data: each
    node lists the positions of the weights it holds).
    Layers are matched by the positions of the variables they hold, which is
    what a migration compares; a layer without a match is dropped.
    """
    by_positions: dict[tuple[int, ...], tuple[int, ...]] = {}
    for node in target.maskable():
        by_positions.setdefault(node.weights, node.index_path)
    held = {n.index_path: n.weights for n in source.maskable()}
    return FreezeMask.from_paths(target, [by_positions[held[p]] for p in mask.frozen
                                          if held.get(p) in by_positions])
