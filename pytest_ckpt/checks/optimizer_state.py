"""The optimizer's state in a round trip: iterations and one slot set per trainable variable.

Keras restores optimizer variables by position in the list of trainable
variables, checking only that the counts agree: the seed bug one level down.
So for a compiled model, the saving side builds, for each save mask, a fresh
optimizer for the variables trainable under it (as training does: ``fit``
builds it at the first step), gives every optimizer variable a distinct
value, and saves.  The loading side keeps the optimizer the factory gave it,
built or not, and loads (see :mod:`pytest_ckpt.checks.loading`).  Slots are then
compared keyed by the model variable each serves, never by position:

- variables that serve no model variable (``iterations``, the learning
  rate, a loss scale, Nadam's momentum product) must come back; they are
  keyed by their position among those, as Keras stores them (their names
  carry per-process counters: ``variable`` in one process, ``variable_1``
  in the next);
- slots of every variable trainable at both save and load must come back;
- a slot of a variable trainable only at load must not receive any saved slot.

Values: a slot of kind ``k`` serving variable ``v`` holds ``v + 2 * (i + 1)``
where ``i`` is ``k``'s rank, so every slot differs from every other and from
every weight; its pre-load value on the loading side is the variable's
pre-load value minus the same offset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_ckpt.checks.comparison import (
    CREATED_AFTER,
    ExpectedValues,
    VariableKind,
    VariableOutcome,
    Verdict,
    classify,
    fingerprint,
)
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.framework import compat
from pytest_ckpt.framework.bulk import read
from pytest_ckpt.framework.tree import LayerTree
from pytest_ckpt.framework.values import distinct_values, numpy_dtype, preload_values

OPTIMIZER = "optimizer"
OPTIMIZER_PREFIX = f"{OPTIMIZER}:"


def is_compiled(model: Any) -> bool:
    return getattr(model, "optimizer", None) is not None


def build_optimizer(model: Any) -> None:
    """What the first training step does: build the optimizer for what is trainable now."""
    model.optimizer.build(list(model.trainable_variables))


def fresh_optimizer(model: Any) -> Any:
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


def _copy_of(optimizer: Any) -> Any:
    """``from_config`` of the optimizer's own class: a user's subclass needs no
    registration.  A learning-rate schedule is handed over as the object, and
    a wrapped optimizer (LossScaleOptimizer's inner one) as a copy made the
    same way: their configs would need their classes registered, which plain
    ``save_weights`` never asks for."""
    config = optimizer.get_config()
    schedule = compat.learning_rate_schedule(optimizer)
    if isinstance(config.get("learning_rate"), dict) and schedule is not None:
        config["learning_rate"] = schedule
    inner = getattr(optimizer, "inner_optimizer", None)
    if "inner_optimizer" in config and inner is not None:
        del config["inner_optimizer"]
        return type(optimizer)(_copy_of(inner), **config)  # what from_config does, with the copy
    return type(optimizer).from_config(config)


@dataclass
class Slot:
    key: str  # "optimizer:<owner key>/<kind>" or "optimizer:#<position>"
    display: str
    variable: Any
    owner: Any | None  # the model variable it serves
    kind: str


def slot_key(owner_key: str | None, kind: str, position: int) -> str:
    return f"{OPTIMIZER_PREFIX}{owner_key}/{kind}" if owner_key is not None else f"{OPTIMIZER_PREFIX}#{position}"


def slots_of(tree: LayerTree) -> list[Slot]:
    model = tree.model
    entries = {id(e.variable): e for e in tree.variables()}
    slots, unowned = [], 0
    # Every weight, not only the trainable ones: a prebuilt optimizer serves frozen ones too.
    for variable, owner, kind in compat.optimizer_slots(model.optimizer, list(model.weights)):
        entry = entries.get(id(owner)) if owner is not None else None
        if entry is not None:
            slots.append(Slot(slot_key(entry.key, kind, -1), f"{entry.display} {kind}", variable, owner, kind))
        else:
            slots.append(Slot(slot_key(None, kind, unowned), kind, variable, None, kind))
            unowned += 1
    return slots


def attach_fresh_optimizer(tree: LayerTree, variables: list[Any] | None = None) -> list[Slot]:
    """Give the model a new optimizer built for ``variables``, by default its trainable variables now (under a mask)."""
    model = tree.model
    # Named as the saving process names it: after the factory's build, not after every
    # check this process ran (Nadam's product is keyed by its automatic name).
    with compat.fresh_process_names(after_build_of=model):
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


class KindOffsets(dict[str, float]):
    """The offset of each kind of slot, in the order kinds are met: 2, 4, 6..."""

    def __missing__(self, kind: str) -> float:
        self[kind] = value = 2.0 * (len(self) + 1)
        return value


def unowned_value(slot: Slot) -> np.ndarray:
    """The distinct value of an optimizer variable that serves no model variable, seeded by its key."""
    seed = int.from_bytes(hashlib.sha256(slot.key.encode()).digest()[:8], "big")
    shape, dtype = tuple(int(d) for d in slot.variable.shape), numpy_dtype(slot.variable)
    return distinct_values([(shape, dtype)], np.random.default_rng(seed))[0]


def fill_distinct(slots: list[Slot], offsets: KindOffsets) -> None:
    """Every optimizer variable a distinct value (see the module docstring)."""
    for slot in slots:
        if slot.owner is not None:
            slot.variable.assign(slot.owner + offsets[slot.kind])
        else:
            slot.variable.assign(unowned_value(slot))


def trainable_keys(tree: LayerTree) -> frozenset[str]:
    ids = {id(v) for v in tree.model.trainable_variables}
    return frozenset(e.key for e in tree.variables() if id(e.variable) in ids)


@dataclass
class SavedSlot:
    key: str
    display: str
    digest: str
    owner: str | None  # the saving model's key of the variable it serves
    shape: tuple[int, ...]
    dtype: str


@dataclass
class _Built:
    """The saving side's optimizer, built for one set of trainable variables."""

    trainable: frozenset[str]
    optimizer: Any
    slots: list[SavedSlot]


class OptimizerCheck:
    """The saving side's optimizer in a model pair's round trips.

    Building an optimizer for a large model costs as much as a save, so the
    last one built is reused while the trainable set stays the same (its
    values stay valid: saving never changes them).
    """

    def __init__(self, saver: LayerTree) -> None:
        self.saver = saver
        self._displays = {e.key: e.display for e in saver.variables()}
        self._prebuilt = prebuilt_keys(saver)
        # A factory's own built optimizer is the one its process saves, with the names it got there.
        self._factory_optimizer = saver.model.optimizer if self._prebuilt is not None else None
        self.offsets = KindOffsets()
        self._side: _Built | None = None
        self._expected: ExpectedValues | None = None

    def _served(self) -> tuple[frozenset[str], list[Any] | None]:
        """(keys, variables) the optimizer serves under the current mask: the trainable
        ones, or the fixed set a prebuilt optimizer was built for."""
        if self._prebuilt is None:
            return trainable_keys(self.saver), None
        by_key = {e.key: e.variable for e in self.saver.variables()}
        return frozenset(self._prebuilt), [by_key[k] for k in self._prebuilt]

    def prepare_save(self) -> None:
        """Under the save mask: an optimizer for the trainable variables, every variable a distinct value."""
        trainable, variables = self._served()
        if self._side is not None and self._side.trainable == trainable:
            self.saver.model.optimizer = self._side.optimizer
            return
        self._side = None  # let the old one go before building the next
        if self._factory_optimizer is not None:
            self.saver.model.optimizer = self._factory_optimizer
            slots = slots_of(self.saver)
        else:
            slots = attach_fresh_optimizer(self.saver, variables)
        fill_distinct(slots, self.offsets)
        owners = {id(e.variable): e.key for e in self.saver.variables()}
        saved = []
        for slot in slots:
            value = read(slot.variable)
            saved.append(SavedSlot(slot.key, slot.display, fingerprint(value),
                                   owners.get(id(slot.owner)) if slot.owner is not None else None,
                                   tuple(value.shape), str(value.dtype)))
        self._side = _Built(trainable, self.saver.model.optimizer, saved)
        self._expected = None

    def unowned_preloads(self) -> list[np.ndarray]:
        """Pre-load values of the variables serving no model variable, by position (after prepare_save)."""
        return [preload_values(read(s.variable)) for s in slots_of(self.saver) if s.owner is None]

    @property
    def saved(self) -> dict[str, SavedSlot]:
        assert self._side is not None, "prepare_save() first"
        return {s.key: s for s in self._side.slots}

    def expected(self) -> ExpectedValues:
        if self._expected is None:
            self._expected = ExpectedValues((s.key, s.display, s.digest) for s in self.saved.values())
        return self._expected

    def compare(self, slots: list[Any], owner_of: dict[str, str], new_model: bool) -> list[VariableOutcome]:
        """Optimizer variables that did not come back, or received another's saved value.

        ``slots`` are the loading side's :class:`~pytest_ckpt.checks.loading.SlotReport`;
        ``owner_of`` maps the loading model's keys to the saving model's.
        """
        loaded = {}
        for s in slots:
            if s.owner is None:
                loaded[slot_key(None, s.kind, s.position)] = s
            elif s.owner in owner_of:
                loaded[slot_key(owner_of[s.owner], s.kind, -1)] = s
        outcomes = []
        for key, saved in self.saved.items():
            got = loaded.get(key)
            if got is None:
                if saved.owner is None or not loaded:  # no optimizer, or no iterations
                    outcomes.append(self._missing(saved))
                continue  # else trainable at save only: the loading optimizer has no slot for it
            if got.digest != saved.digest:
                outcomes.append(self._classify(saved.key, saved.display, got, new_model))
        for key, got in loaded.items():
            # Trainable only at load: nothing was saved for it; it must not hold any saved slot.
            if key not in self.saved and got.owner is not None and self.expected().sources(got.digest, skip=key):
                display = f"{self._displays.get(owner_of[got.owner], got.owner)} {got.kind}"
                outcomes.append(self._classify(key, display, got, new_model))
        return outcomes

    def _classify(self, key: str, display: str, got: Any, new_model: bool) -> VariableOutcome:
        preload = None if new_model else (got.before if got.before is not None else CREATED_AFTER)
        return classify(key=key, display=display, shape=got.shape, dtype=got.dtype, got=got.digest,
                        preload=preload, expected=self.expected(), kind=VariableKind.OPTIMIZER)

    def _missing(self, saved: SavedSlot) -> VariableOutcome:
        return VariableOutcome(key=saved.key, display=saved.display, shape=saved.shape, dtype=saved.dtype,
                               verdict=Verdict.NOT_LOADED, kind=VariableKind.OPTIMIZER)
