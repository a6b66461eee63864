"""Every private Keras, tf-keras and TensorFlow access of the project, in one place.

Each function names the versions it was checked against and the public
alternative where one exists, so that a Keras upgrade that breaks one of
them breaks here, not in five modules.  Nothing here imports a framework at
module level; callers pass the objects in.
"""

from __future__ import annotations

import collections
import copy
import sys
import weakref
from contextlib import contextmanager
from typing import Any

# Checked against: Keras 3.15.1, tf-keras 2.21.0, TensorFlow 2.21.0.


def child_layers(layer: Any) -> list:
    """A layer's direct sublayers, including those ``model.layers`` hides.

    ``_flatten_layers`` (Keras 3 and tf-keras) is the only way to reach an
    LSTM's cell or MultiHeadAttention's projections.  Public fallback:
    ``.layers`` (models only).
    """
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        try:
            return list(flatten(include_self=False, recursive=False))
        except (AttributeError, TypeError):
            pass  # an object that tracks layers its own way
    return list(getattr(layer, "layers", None) or ())


def is_keras2_module(module: str) -> bool:
    """A class defined by Keras 2: tf-keras, or Keras 2 installed as ``keras`` (its
    engine lives in ``keras.src.engine``, a path Keras 3 does not have)."""
    return module.startswith(("tf_keras", "keras.src.engine"))


def own_weights(layer: Any) -> list:
    """Weights created by ``layer`` itself, in creation order.

    tf-keras orders ``layer.weights`` as trainable + non-trainable, which
    moves with the flags; the creation-order lists do not.  Keras 3:
    ``_trainable_variables`` / ``_non_trainable_variables``; tf-keras:
    ``_trainable_weights`` / ``_non_trainable_weights``.  No public API
    gives a flag-independent order.
    """
    trainable = getattr(layer, "_trainable_weights", None)
    if trainable is None:  # Keras 3
        trainable = getattr(layer, "_trainable_variables", None) or []
        non_trainable = getattr(layer, "_non_trainable_variables", None) or []
    else:
        non_trainable = getattr(layer, "_non_trainable_weights", None) or []
    return list(trainable) + list(non_trainable)


def set_trainable(layer: Any, flag: bool) -> None:
    """``layer.trainable = flag``, even when it already holds that value.

    On the TensorFlow backend (and in tf-keras) ``__setattr__`` goes through
    TensorFlow's AutoTrackable, which skips ``self.x = value`` when
    ``self.x is value``: the setter, which also resets the flags of the
    layer's variables, would not run.  Calling the property's setter makes a
    mask mean the same whatever state came before.
    """
    prop = getattr(type(layer), "trainable", None)
    if isinstance(prop, property) and prop.fset is not None:
        prop.fset(layer, flag)
    else:
        layer.trainable = flag


def tf_variable(variable: Any) -> Any:
    """The ``tf.Variable`` holding a Keras 3 variable's value on the TensorFlow
    backend (``KerasVariable._value``), or the tf-keras variable itself; None
    otherwise.  Public alternative: ``variable.value``, which may return an
    autocast copy instead of the variable."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return None
    if isinstance(variable, tf.Variable):
        return variable
    inner = getattr(variable, "_value", None)
    return inner if isinstance(inner, tf.Variable) else None


def storage_identity(variable: Any) -> Any:
    """Something that is the same object for two variables sharing storage."""
    for candidate in (tf_variable(variable), getattr(variable, "_value", None)):
        if candidate is not None:
            return candidate
    return variable


def tf_object_graph(serialized: bytes) -> Any:
    """A TF checkpoint's object graph, parsed: each variable's own name beside its key.

    The proto class lives in ``tensorflow.core.protobuf``, which is not
    TensorFlow's public API (no public parser exists).
    """
    from tensorflow.core.protobuf.trackable_object_graph_pb2 import TrackableObjectGraph

    return TrackableObjectGraph.FromString(serialized)


# -- auto-generated names ---------------------------------------------------


def _keras3_name_counters() -> Any:
    """Keras 3 keeps its name counters in global state "object_name_uids"
    (``keras.src.utils.naming``).  Public alternative: ``clear_session()``,
    which also drops every other piece of global state."""
    if "keras" not in sys.modules:
        return None
    try:
        from keras.src.backend.common import global_state
    except ImportError:
        return None

    def get() -> Any:
        return global_state.get_global_attribute("object_name_uids")

    def put(value: Any) -> None:
        global_state.set_global_attribute("object_name_uids", value)

    return get, put, collections.defaultdict(int)


def _tf_keras_name_counters() -> Any:
    """tf-keras: ``backend.PER_GRAPH_OBJECT_NAME_UIDS`` and ``OBSERVED_NAMES``
    (what ``tf_keras.backend.reset_uids()`` clears)."""
    backend = sys.modules.get("tf_keras.src.backend")
    if backend is None or not hasattr(backend, "PER_GRAPH_OBJECT_NAME_UIDS"):
        return None

    def get() -> Any:
        uids = {graph: collections.defaultdict(int, counts)
                for graph, counts in backend.PER_GRAPH_OBJECT_NAME_UIDS.items()}
        return uids, set(backend.OBSERVED_NAMES)

    def put(value: Any) -> None:
        uids, observed = value
        backend.PER_GRAPH_OBJECT_NAME_UIDS.clear()
        backend.PER_GRAPH_OBJECT_NAME_UIDS.update(uids)
        backend.OBSERVED_NAMES.clear()
        backend.OBSERVED_NAMES.update(observed)

    return get, put, ({}, set())


# The name counters as each model's factory left them, for what its process creates next.
_NAMES_AFTER_BUILD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _counter_sets() -> list[Any]:
    return [c for c in (_keras3_name_counters(), _tf_keras_name_counters()) if c is not None]


def _snapshot(get: Any) -> Any:
    return copy.deepcopy(get())  # Keras 3 hands out its live counter dict


@contextmanager
def fresh_process_names(after_build_of: Any = None) -> Any:
    """Inside the block, auto-generated names start over as in a new process.

    A checkpoint is saved by one process and loaded by another: both build
    the model from scratch, so ``dense``, ``dense_1``... coincide.  Building
    both models in one process would name the second ``dense_2``...  With
    ``after_build_of``, the counters are as that model's factory left them: what
    its own process creates next (an optimizer built at the first step, and its
    unnamed variables such as Nadam's product) is named as there.  The counters
    are put back afterwards, so the user's own models are unaffected.
    """
    start = _NAMES_AFTER_BUILD.get(after_build_of) if after_build_of is not None else None
    restore = []
    for i, (get, put, empty) in enumerate(_counter_sets()):
        restore.append((put, get()))
        put(_snapshot(lambda i=i: start[i]) if start is not None and i < len(start) else empty)
    try:
        yield
    finally:
        for put, value in restore:
            put(value)


def remember_names_after_build(model: Any) -> None:
    """Inside :func:`fresh_process_names`, right after the factory returned ``model``."""
    try:
        _NAMES_AFTER_BUILD[model] = [_snapshot(get) for get, _, _ in _counter_sets()]
    except TypeError:  # not weakly referenceable: names start over instead
        pass


# -- optimizers ---------------------------------------------------------------


def optimizer_built_for(optimizer: Any) -> list | None:
    """The variables a Keras 3 optimizer was built for, or None while it is unbuilt.

    Private: ``BaseOptimizer._trainable_variables`` (checked against Keras 3.15).
    tf-keras optimizers build their slots lazily, at the first step: None.
    """
    if not getattr(optimizer, "built", False):
        return None
    built = getattr(optimizer, "_trainable_variables", None)
    return list(built) if built is not None else None


def learning_rate_schedule(optimizer: Any) -> Any | None:
    """The optimizer's learning-rate schedule object, or None for a plain rate.

    Private: ``_learning_rate`` (Keras 3.15, tf-keras 2.21); ``get_config()``
    gives only the schedule's config, which needs its class registered to
    come back.
    """
    schedule = getattr(optimizer, "_learning_rate", None)
    return schedule if callable(schedule) and not hasattr(schedule, "assign") else None


def optimizer_slots(optimizer: Any, model_variables: Any) -> list[tuple[Any, Any | None, str]]:
    """(optimizer variable, the model variable it serves or None, its kind) for each.

    Keras restores optimizer variables by position; to compare them by the
    variable they serve, the link is read from the optimizer itself: Keras 3
    and tf-keras keep each kind of slot in a list aligned with the variables
    the optimizer was built for.  Names cannot tell it: two nested models'
    ``proj/kernel`` give both slots the name "proj_kernel_momentum".  Where
    no such list holds a slot (an optimizer of another design), the names
    Keras gives slots decide: Keras 3 ``<variable path with / as _>_<kind>``
    ("block_a_kernel_momentum"), tf-keras ``<kind>/<variable name>``
    ("m/dense/kernel:0"); the longest matching variable wins ("dense_kernel"
    vs "dense_1_kernel").  Variables serving no model variable (iterations,
    learning rate, a loss scale) are keyed by their own name.
    """
    by_position = _slot_owners(optimizer, model_variables)
    prefixes = []
    for v in model_variables:
        path = getattr(v, "path", None)
        if path:  # Keras 3
            prefixes.append(("prefix", path.replace("/", "_") + "_", v))
        prefixes.append(("suffix", "/" + str(v.name), v))
    found = []
    for slot in optimizer.variables:
        name = str(slot.name)
        owner = by_position.get(id(slot))
        best = None
        for how, text, candidate in prefixes:
            if owner is not None and candidate is not owner:
                continue
            hit = name.startswith(text) if how == "prefix" else name.endswith(text)
            if hit and (best is None or len(text) > len(best[1])):
                best = (how, text, candidate)
        if best is None:
            found.append((slot, owner, name.split(":")[0]))
        elif best[0] == "prefix":
            found.append((slot, best[2], name[len(best[1]):].split(":")[0]))
        else:
            found.append((slot, best[2], name[: -len(best[1])]))
    return found


def _slot_owners(optimizer: Any, model_variables: Any) -> dict[int, object]:
    """id(slot) -> the model variable it serves, from the optimizer's per-variable lists
    (wrapped optimizers included: LossScaleOptimizer's inner one, MultiOptimizer's list).

    A list counts only if it is not the optimizer's own variable list and
    every slot in it has its variable's shape: a list of counters can happen
    to be as long, and Adafactor's factored slots are not whole copies; those
    go by their names.
    """
    slot_ids = {id(v) for v in optimizer.variables}
    owners: dict[int, object] = {}
    pending, seen = [optimizer], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        served = _built_for_in_order(current, model_variables)
        for name, value in vars(current).items():
            items = value if isinstance(value, (list, tuple)) else [value]
            pending += [v for v in items if hasattr(v, "variables") and hasattr(v, "apply_gradients")]
            if not served or name in ("_variables", "_trainable_variables") or value is served \
                    or not isinstance(value, (list, tuple)) or len(value) != len(served):
                continue
            pairs = [(slot, owner) for slot, owner in zip(value, served)
                     if owner is not None and id(slot) in slot_ids]
            if pairs and all(tuple(slot.shape) == tuple(owner.shape) for slot, owner in pairs):
                for slot, owner in pairs:
                    owners.setdefault(id(slot), owner)
    return owners


def _built_for_in_order(optimizer: Any, model_variables: Any) -> list | None:
    ordered = optimizer_built_for(optimizer)  # Keras 3
    if ordered:
        return ordered
    index, key = getattr(optimizer, "_index_dict", None), getattr(optimizer, "_var_key", None)
    if isinstance(index, dict) and index and callable(key):  # tf-keras
        try:
            by_key = {key(v): v for v in model_variables}
            ordered = [None] * len(index)
            for k, i in index.items():
                ordered[i] = by_key.get(k)
        except (TypeError, IndexError, AttributeError):
            return None
        return ordered
    return None


def resume_epoch(model: Any) -> int | None:
    """The epoch the next ``fit`` starts from when a callback restored where training stood
    (``BackupAndRestore`` sets it from its ``training_metadata.json``); None: fit's own
    ``initial_epoch``.  Keras 3 keeps it in ``Trainer._initial_epoch``; there is no public
    reader."""
    epoch = getattr(model, "_initial_epoch", None)
    return int(epoch) if epoch is not None else None


def forget_resume_epoch(model: Any) -> None:
    """As a model that no callback restored: its next ``fit`` starts at its ``initial_epoch``."""
    if hasattr(model, "_initial_epoch"):
        model._initial_epoch = None
