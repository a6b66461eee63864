"""The optimizer's state in a round trip: iterations and one slot set per trainable variable.

Keras restores optimizer variables by position in the list of trainable
variables, checking only that the counts agree: the seed bug one level down.
So for a compiled model, each round trip builds a fresh optimizer for the
variables trainable under the save mask, gives every optimizer variable a
distinct value, saves; builds another for the variables trainable under the
load mask, gives each a pre-load value, loads; and compares slot by slot,
keyed by the model variable each slot serves, never by position:

- variables that serve no model variable (``iterations``, the learning
  rate, a loss scale) must come back;
- slots of every variable trainable at both save and load must come back;
- a slot of a variable trainable only at load must not receive any saved slot.

Values: a slot of kind ``k`` serving variable ``v`` holds ``v + 2 * (i + 1)``
where ``i`` is ``k``'s rank, so every slot differs from every other and from
every weight (weights are in [1, 2)); pre-load values are negated, as for
weights (see :mod:`pytest_ckpt.values`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pytest_ckpt import compat
from pytest_ckpt.bulk import read
from pytest_ckpt.comparison import NOT_LOADED, ExpectedValues, VariableOutcome, classify, fingerprint
from pytest_ckpt.tree import LayerTree
from pytest_ckpt.values import NEGATE, distinct_values, numpy_dtype, preload_kind, preload_values

OPTIMIZER = "optimizer"


def is_compiled(model) -> bool:
    return getattr(model, "optimizer", None) is not None


def fresh_optimizer(model):
    """A new, unbuilt optimizer with the model's optimizer's configuration."""
    optimizer = model.optimizer
    module = type(optimizer).__module__.split(".")[0]
    framework = __import__(module)  # keras or tf_keras
    return framework.optimizers.deserialize(framework.optimizers.serialize(optimizer))


@dataclass
class Slot:
    key: str  # "optimizer:<owner key>/<kind>" or "optimizer:<name>"
    display: str
    variable: object
    owner: object | None  # the model variable it serves
    kind: str


def attach_fresh_optimizer(tree: LayerTree) -> list[Slot]:
    """Give the model a new optimizer built for its trainable variables now (under a mask)."""
    model = tree.model
    optimizer = fresh_optimizer(model)
    trainable = list(model.trainable_variables)
    optimizer.build(trainable)
    model.optimizer = optimizer
    return slots_of(tree)


def slots_of(tree: LayerTree) -> list[Slot]:
    model = tree.model
    keys = {id(e.variable): e for e in tree.variables()}
    slots, seen = [], {}
    for variable, owner, kind in compat.optimizer_slots(model.optimizer, model.trainable_variables):
        entry = keys.get(id(owner)) if owner is not None else None
        if entry is not None:
            key, display = f"{OPTIMIZER}:{entry.key}/{kind}", f"{entry.display} {kind}"
        else:
            key = display = kind
            seen[kind] = seen.get(kind, -1) + 1
            if seen[kind]:
                key = display = f"{kind}#{seen[kind]}"
            key = f"{OPTIMIZER}:{key}"
        slots.append(Slot(key, display, variable, owner if entry is not None else None, kind))
    return slots


class OptimizerCheck:
    """The optimizer side of a model pair's round trips."""

    def __init__(self, saver: LayerTree, loader: LayerTree, seed: int):
        self.saver, self.loader = saver, loader
        self._seed = seed
        self._saved: dict[str, Slot] = {}
        self._kinds: dict[str, int] = {}
        self._expected: ExpectedValues | None = None

    def _offset(self, kind: str) -> float:
        rank = self._kinds.setdefault(kind, len(self._kinds))
        return 2.0 * (rank + 1)

    def prepare_save(self) -> None:
        """Under the save mask: a fresh optimizer, every variable a distinct value."""
        slots = attach_fresh_optimizer(self.saver)
        loose = [s for s in slots if s.owner is None]
        rng = np.random.default_rng(self._seed)
        given = distinct_values([(tuple(s.variable.shape), numpy_dtype(s.variable)) for s in loose], rng)
        for slot, value in zip(loose, given):
            slot.variable.assign(value)
        for slot in slots:
            if slot.owner is not None:
                slot.variable.assign(slot.owner + self._offset(slot.kind))
        self._saved = {s.key: s for s in slots}
        self._expected = None

    def prepare_load(self) -> None:
        """Under the load mask: a fresh optimizer, every variable at a pre-load value."""
        for slot in attach_fresh_optimizer(self.loader):
            self._preload(slot)

    def _preload(self, slot: Slot) -> None:
        saved = self._saved.get(slot.key)
        if saved is not None:
            if preload_kind(numpy_dtype(slot.variable)) == NEGATE:
                slot.variable.assign(-saved.variable)  # no copy through NumPy
            else:
                slot.variable.assign(preload_values(read(saved.variable)))
        elif slot.owner is not None:
            # Trainable only at load: nothing was saved for it, and its
            # pre-load value must not look like anything that was.
            counterpart = self._saver_variable(slot)
            slot.variable.assign(-(counterpart + self._offset(slot.kind)))

    def _saver_variable(self, slot: Slot):
        key = slot.key.removeprefix(f"{OPTIMIZER}:").rsplit("/", 1)[0]
        return next(e.variable for e in self.saver.variables() if e.key == key)

    def expected(self) -> ExpectedValues:
        if self._expected is None:
            self._expected = ExpectedValues(
                (s.key, s.display, fingerprint(read(s.variable))) for s in self._saved.values())
        return self._expected

    def compare(self, holder) -> list[VariableOutcome]:
        """Optimizer variables that did not come back, or received another's saved value."""
        tree = self.loader if holder is self.loader.model else LayerTree(holder)
        loaded = {s.key: s for s in slots_of(tree)} if is_compiled(tree.model) else {}
        outcomes = []
        for key, saved in self._saved.items():
            slot = loaded.get(key)
            if slot is None:
                if saved.owner is None or not loaded:  # no optimizer, or no iterations
                    outcomes.append(VariableOutcome(
                        key=key, display=saved.display, shape=tuple(saved.variable.shape),
                        dtype=str(numpy_dtype(saved.variable)), verdict=NOT_LOADED, kind=OPTIMIZER))
                continue  # else trainable at save only: the loading optimizer has no slot for it
            if not _equal(slot.variable, saved.variable):
                got = read(slot.variable)
                outcomes.append(classify(key=key, display=saved.display, got=got,
                                         preload=preload_values(read(saved.variable)),
                                         expected=self.expected(), kind=OPTIMIZER))
        for key, slot in loaded.items():
            if key in self._saved or slot.owner is None:
                continue
            got = read(slot.variable)
            if self.expected().sources(got, skip=key):
                outcomes.append(classify(key=key, display=slot.display, got=got, preload=None,
                                         expected=self.expected(), kind=OPTIMIZER))
        return outcomes



def _equal(a, b) -> bool:
    tf_a, tf_b = compat.tf_variable(a), compat.tf_variable(b)
    if tf_a is not None and tf_b is not None:
        import tensorflow as tf

        return bool(tf.reduce_all(tf.equal(tf_a, tf_b)).numpy())
    x, y = read(a), read(b)
    return x.shape == y.shape and np.array_equal(x, y)
