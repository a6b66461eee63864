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

import hashlib
from dataclasses import dataclass

import numpy as np

from pytest_ckpt import compat
from pytest_ckpt.bulk import BulkOps, read
from pytest_ckpt.comparison import NOT_LOADED, ExpectedValues, VariableOutcome, classify, fingerprint
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.tree import LayerTree
from pytest_ckpt.values import distinct_values, numpy_dtype, preload_values

OPTIMIZER = "optimizer"


def is_compiled(model) -> bool:
    return getattr(model, "optimizer", None) is not None


def fresh_optimizer(model):
    """A new, unbuilt optimizer with the model's optimizer's class and configuration."""
    optimizer = model.optimizer
    if not callable(getattr(optimizer, "build", None)):
        raise FactoryError(
            f"cannot check the optimizer state of this model: {type(optimizer).__module__}."
            f"{type(optimizer).__name__} is a legacy optimizer (no build()), whose slots this plugin "
            "cannot tell apart; use the current optimizers (tf_keras.optimizers.Adam, not "
            "tf_keras.optimizers.legacy.Adam), or leave the model uncompiled for the weights check")
    try:
        return _copy_of(optimizer)
    except Exception as exc:
        raise FactoryError(
            f"cannot check the optimizer state of this model: a fresh copy of its optimizer "
            f"{type(optimizer).__name__} could not be made with from_config(get_config()) "
            f"({type(exc).__name__}: {str(exc)[:300]}). Give the optimizer class a get_config() "
            "that from_config() accepts.") from None


def _copy_of(optimizer):
    """``from_config`` of the optimizer's own class: a user's subclass needs no
    registration.  A learning-rate schedule is handed over as the object, and
    a wrapped optimizer (LossScaleOptimizer's inner one) as a copy made the
    same way: their configs would need their classes registered, which plain
    ``save_weights`` never asks for."""
    config = optimizer.get_config()
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(config.get("learning_rate"), dict) and callable(schedule) and not hasattr(schedule, "assign"):
        config["learning_rate"] = schedule
    inner = getattr(optimizer, "inner_optimizer", None)
    if "inner_optimizer" in config and inner is not None:
        del config["inner_optimizer"]
        return type(optimizer)(_copy_of(inner), **config)  # what from_config does, with the copy
    return type(optimizer).from_config(config)


@dataclass
class Slot:
    key: str  # "optimizer:<owner key>/<kind>" or "optimizer:<name>"
    display: str
    variable: object
    owner: object | None  # the model variable it serves
    kind: str


def attach_fresh_optimizer(tree: LayerTree, variables=None) -> list[Slot]:
    """Give the model a new optimizer built for ``variables``, by default its trainable variables now (under a mask)."""
    model = tree.model
    optimizer = fresh_optimizer(model)
    optimizer.build(list(model.trainable_variables) if variables is None else variables)
    model.optimizer = optimizer
    return slots_of(tree)


def prebuilt_keys(tree: LayerTree) -> tuple[str, ...] | None:
    """The keys of the variables the factory's optimizer was already built for, in build order.

    A factory that builds its optimizer (``optimizer.build(model.trainable_variables)``)
    fixes the slot set then: freezing layers later leaves it whole, and Keras
    restores it by position in that list, whatever is trainable at load.
    """
    built = compat.optimizer_built_for(tree.model.optimizer)
    if built is None:
        return None
    keys = {id(e.variable): e.key for e in tree.variables()}
    return tuple(keys[id(v)] for v in built if id(v) in keys)


def slots_of(tree: LayerTree) -> list[Slot]:
    model = tree.model
    keys = {id(e.variable): e for e in tree.variables()}
    slots, seen = [], {}
    # Every weight, not only the trainable ones: a prebuilt optimizer serves frozen ones too.
    for variable, owner, kind in compat.optimizer_slots(model.optimizer, model.weights):
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


def _offset(kinds: dict[str, int], kind: str) -> float:
    rank = kinds.setdefault(kind, len(kinds))
    return 2.0 * (rank + 1)


def fill_distinct(slots: list[Slot], offset=None) -> None:
    """Every optimizer variable a distinct value (see the module docstring): a slot
    its variable's value plus its kind's offset; the rest seeded by their key."""
    if offset is None:
        kinds: dict[str, int] = {}
        offset = lambda kind: _offset(kinds, kind)  # noqa: E731
    for slot in slots:
        if slot.owner is not None:
            slot.variable.assign(slot.owner + offset(slot.kind))
        else:
            seed = int.from_bytes(hashlib.sha256(slot.key.encode()).digest()[:8], "big")
            shape, dtype = tuple(slot.variable.shape), numpy_dtype(slot.variable)
            slot.variable.assign(distinct_values([(shape, dtype)], np.random.default_rng(seed))[0])


@dataclass
class _Built:
    """One side's optimizer, built for one set of trainable variables."""

    trainable: frozenset[str]
    optimizer: object
    slots: list[Slot]


def trainable_keys(tree: LayerTree) -> frozenset[str]:
    ids = {id(v) for v in tree.model.trainable_variables}
    return frozenset(e.key for e in tree.variables() if id(e.variable) in ids)


class OptimizerCheck:
    """The optimizer side of a model pair's round trips.

    Building an optimizer for a large model costs as much as a save, so each
    side keeps the last one it built and reuses it while the trainable set
    stays the same (its values stay valid: saving never changes them, and the
    loading side's are reset before every load).
    """

    def __init__(self, saver: LayerTree, loader: LayerTree):
        self.saver, self.loader = saver, loader
        self._prebuilt = {id(saver): prebuilt_keys(saver), id(loader): prebuilt_keys(loader)}
        self._kinds: dict[str, int] = {}
        self._save_side: _Built | None = None
        self._load_side: _Built | None = None
        self._ops = None  # (save key, load key, BulkOps over the matched slots, extra slots)
        self._expected: ExpectedValues | None = None

    @property
    def _saved(self) -> dict[str, Slot]:
        return {s.key: s for s in self._save_side.slots}

    def _offset(self, kind: str) -> float:
        return _offset(self._kinds, kind)

    def _served(self, tree: LayerTree):
        """(keys, variables) the optimizer serves under the current mask: the trainable
        ones, or the fixed set a prebuilt optimizer was built for."""
        prebuilt = self._prebuilt[id(tree)]
        if prebuilt is None:
            return trainable_keys(tree), None
        by_key = {e.key: e.variable for e in tree.variables()}
        return frozenset(prebuilt), [by_key[k] for k in prebuilt]

    def prepare_save(self) -> None:
        """Under the save mask: an optimizer for the trainable variables, every variable a distinct value."""
        trainable, variables = self._served(self.saver)
        if self._save_side is not None and self._save_side.trainable == trainable:
            self.saver.model.optimizer = self._save_side.optimizer
            return
        self._save_side = None  # let the old one go before building the next
        slots = attach_fresh_optimizer(self.saver, variables)
        fill_distinct(slots, self._offset)
        self._save_side = _Built(trainable, self.saver.model.optimizer, slots)
        self._expected = None

    def prepare_load(self) -> None:
        """Under the load mask: an optimizer for the trainable variables, each at a pre-load value."""
        trainable, variables = self._served(self.loader)
        if self._load_side is not None and self._load_side.trainable == trainable:
            self.loader.model.optimizer = self._load_side.optimizer
        else:
            self._load_side = self._ops = None
            slots = attach_fresh_optimizer(self.loader, variables)
            self._load_side = _Built(trainable, self.loader.model.optimizer, slots)
        if self._ops is None or self._ops[0] is not self._save_side:
            saved = self._saved
            matched = [(saved[s.key], s) for s in self._load_side.slots if s.key in saved]
            extra = [s for s in self._load_side.slots if s.key not in saved and s.owner is not None]
            bulk = BulkOps([a.variable for a, _ in matched], [b.variable for _, b in matched],
                           [numpy_dtype(b.variable) for _, b in matched])
            self._ops = (self._save_side, matched, bulk, extra)
        _, _, bulk, extra = self._ops
        bulk.reset()
        for slot in extra:
            # Trainable only at load: nothing was saved for it, and its
            # pre-load value must not look like anything that was.
            slot.variable.assign(-(self._saver_variable(slot) + self._offset(slot.kind)))

    def _saver_variable(self, slot: Slot):
        key = slot.key.removeprefix(f"{OPTIMIZER}:").rsplit("/", 1)[0]
        return next(e.variable for e in self.saver.variables() if e.key == key)

    def expected(self) -> ExpectedValues:
        if self._expected is None:
            self._expected = ExpectedValues(
                (s.key, s.display, fingerprint(read(s.variable))) for s in self._save_side.slots)
        return self._expected

    def compare(self, holder) -> list[VariableOutcome]:
        """Optimizer variables that did not come back, or received another's saved value."""
        if holder is self.loader.model and self._ops is not None:
            _, matched, bulk, extra = self._ops
            failed = [(a, b) for (a, b), ok in zip(matched, bulk.survived()) if not ok]
            outcomes = [self._classify(a, b.variable) for a, b in failed]
            unmatched = [s for s in self._save_side.slots if s.owner is None
                         and s.key not in {a.key for a, _ in matched}]
            outcomes += [self._missing(s) for s in unmatched]
            return outcomes + self._received(extra)
        tree = LayerTree(holder)  # load_model's new model: the slow path, by key
        loaded = {s.key: s for s in slots_of(tree)} if is_compiled(tree.model) else {}
        outcomes = []
        for key, saved in self._saved.items():
            slot = loaded.get(key)
            if slot is None:
                if saved.owner is None or not loaded:  # no optimizer, or no iterations
                    outcomes.append(self._missing(saved))
                continue  # else trainable at save only: the loading optimizer has no slot for it
            if not _equal(slot.variable, saved.variable):
                outcomes.append(self._classify(saved, slot.variable))
        extra = [s for key, s in loaded.items() if key not in self._saved and s.owner is not None]
        return outcomes + self._received(extra)

    def _classify(self, saved: Slot, variable) -> VariableOutcome:
        return classify(key=saved.key, display=saved.display, got=read(variable),
                        preload=preload_values(read(saved.variable)), expected=self.expected(),
                        kind=OPTIMIZER)

    def _missing(self, saved: Slot) -> VariableOutcome:
        return VariableOutcome(key=saved.key, display=saved.display, shape=tuple(saved.variable.shape),
                               dtype=str(numpy_dtype(saved.variable)), verdict=NOT_LOADED, kind=OPTIMIZER)

    def _received(self, slots) -> list[VariableOutcome]:
        """Slots of variables trainable only at load must not hold any saved slot."""
        outcomes = []
        for slot in slots:
            got = read(slot.variable)
            if self.expected().sources(got, skip=slot.key):
                outcomes.append(classify(key=slot.key, display=slot.display, got=got, preload=None,
                                         expected=self.expected(), kind=OPTIMIZER))
        return outcomes


def _equal(a, b) -> bool:
    tf_a, tf_b = compat.tf_variable(a), compat.tf_variable(b)
    if tf_a is not None and tf_b is not None:
        import tensorflow as tf

        return bool(tf.reduce_all(tf.equal(tf_a, tf_b)).numpy())
    x, y = read(a), read(b)
    return x.shape == y.shape and np.array_equal(x, y)
