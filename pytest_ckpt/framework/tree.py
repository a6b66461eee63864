"""The layer tree of a Keras model and the stable keys of its variables.

Two models built by the same factory get different auto-generated names
(``dense_3`` vs ``dense_7``), so nothing here keys on names.  A layer is
identified by its index path from the root (child order is construction
order, identical for every model a factory builds) and a variable by its
owning layer's index path plus its short name.  None of this depends on the
``trainable`` flags, which is the whole point: the bug we hunt is an order
that does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_ckpt.framework import compat


@dataclass(frozen=True)
class LayerNode:
    """One layer in the tree, found at ``index_path`` from the root."""

    index_path: tuple[int, ...]
    layer: Any = field(compare=False, repr=False)  # a Keras layer
    display: str = field(compare=False)
    # "0:Functional/3:Dense": index path with class names, for keys.
    key: str = field(compare=False, default="")
    # Freezing a layer with no weights anywhere below it changes nothing.
    has_weights: bool = field(compare=False, default=True)
    # A layer with weighted sublayers: freezing it differs from freezing them.
    is_container: bool = field(compare=False, default=False)


@dataclass(frozen=True)
class VariableEntry:
    key: str
    variable: Any = field(repr=False)  # a Keras variable
    display: str
    shape: tuple[int, ...]
    dtype: str


def _short_name(variable: Any) -> str:
    # Keras 3: "kernel"; tf-keras: "dense_3/kernel:0".
    name = str(getattr(variable, "name", "") or "variable").split("/")[-1]
    return name.split(":")[0]


def _weights(layer: Any) -> list:
    try:
        return list(layer.weights)
    except (AttributeError, TypeError, ValueError):
        return []


class LayerTree:
    """Every layer of a model, pre-order, each shared layer once."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.nodes: list[LayerNode] = []
        self._variables: list[VariableEntry] | None = None
        self._walk(model, (), "", set(), "")

    def _walk(self, layer: Any, index_path: Any, display: Any, seen: Any, key: Any) -> None:
        seen.add(id(layer))
        children = [c for c in compat.child_layers(layer) if id(c) not in seen]
        position = len(self.nodes)
        self.nodes.append(None)  # type: ignore[arg-type]  # pre-order: filled after the children
        for i, child in enumerate(compat.child_layers(layer)):
            if id(child) in seen:
                continue
            name = getattr(child, "name", type(child).__name__)
            child_key = f"{key}/{i}:{type(child).__name__}" if key else f"{i}:{type(child).__name__}"
            self._walk(child, index_path + (i,), f"{display}/{name}" if display else name, seen, child_key)
        weighted_children = any(
            n.has_weights for n in self.nodes[position + 1:] if n.index_path[:-1] == index_path)
        self.nodes[position] = LayerNode(index_path, layer, display or "<model>", key,
                                         has_weights=bool(_weights(layer)),
                                         is_container=bool(children) and weighted_children)

    def maskable(self) -> list[LayerNode]:
        """The layers whose freezing can change anything: those with weights."""
        return [n for n in self.nodes if n.has_weights]

    def node(self, index_path: tuple[int, ...]) -> LayerNode:
        for n in self.nodes:
            if n.index_path == index_path:
                return n
        raise KeyError(index_path)

    def variables(self) -> list[VariableEntry]:
        """Every weight of the model under a stable key (a list the caller must not change).

        Seed-generator state is not a weight in Keras 3 and no checkpoint
        format saves it (see :mod:`pytest_ckpt.framework.unsaved`), so it is left out.
        A model's weights are fixed once it is built, so they are listed once.
        """
        if self._variables is None:
            self._variables = self._list_variables()
        return self._variables

    def _list_variables(self) -> list[VariableEntry]:
        weights = _weights(self.model)
        weight_ids = {id(w) for w in weights}
        entries: list[VariableEntry] = []
        seen: set[int] = set()
        for node in self.nodes:
            own = [w for w in compat.own_weights(node.layer) if id(w) in weight_ids]
            names = [_short_name(w) for w in own]
            for pos, (w, name) in enumerate(zip(own, names)):
                if id(w) in seen:
                    continue
                seen.add(id(w))
                if names.count(name) > 1:
                    name = f"{name}#{pos}"
                label = node.display if node.index_path else ""
                entries.append(_entry(f"{node.key}/{name}" if node.key else name, w,
                                      f"{label}/{name}" if label else name))
        # A weight no layer of the tree owns (created on the model itself by
        # odd custom code): key it by position among those.
        missing = [w for w in weights if id(w) not in seen]
        for pos, w in enumerate(missing):
            name = _short_name(w)
            entries.append(_entry(f"~{pos}/{name}", w, f"<untracked>/{name}"))
        return entries


def _entry(key: str, variable: Any, display: str) -> VariableEntry:
    from pytest_ckpt.framework.values import numpy_dtype  # NumPy: not at import (the plugin imports this)

    return VariableEntry(key=key, variable=variable, display=display,
                         shape=tuple(int(d) for d in variable.shape),
                         dtype=str(numpy_dtype(variable)))


def _holders(parent: object, child: object) -> list[tuple[str, object]]:
    """(attribute name, what it holds) for each attribute of ``parent`` through which ``child`` is reached."""
    found = []
    for name, value in vars(parent).items():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
        if value is child or any(item is child for item in items):
            found.append((name, value))
    return found


def _owner(tree: LayerTree, variable_key: str) -> LayerNode | None:
    by_key = {n.key: n for n in tree.nodes}
    return by_key.get(variable_key.rsplit("/", 1)[0] if "/" in variable_key else "")


def lora_layers(tree: LayerTree, variable_keys: list[str]) -> list[str]:
    """The layers holding these variables that have a LoRA adapter enabled."""
    found: list[str] = []
    for key in variable_keys:
        node = _owner(tree, key)
        if node is not None and getattr(node.layer, "lora_enabled", False) and node.display not in found:
            found.append(node.display)
    return found


def quantized_layers(tree: LayerTree, variable_keys: list[str]) -> list[str]:
    """The layers holding these variables that ``model.quantize(mode)`` quantized, with the mode."""
    found: list[str] = []
    for key in variable_keys:
        node = _owner(tree, key)
        mode = getattr(node.layer, "quantization_mode", None) if node is not None else None
        label = f"{node.display} ({mode})" if node is not None and mode else None
        if label and label not in found:
            found.append(label)
    return found


def untracked_layers(tree: LayerTree, variable_keys: list[str]) -> list[str]:
    """The layers holding these variables that their parent keeps only in a list, tuple or
    dict, or under an attribute whose name starts with an underscore (``self._layers``):
    places an object graph may not reach (TensorFlow's does not see Keras 3's lists).  Each
    with how it is held."""
    found: list[str] = []
    for key in variable_keys:
        node = _owner(tree, key) if "/" in key else None
        if node is None or not node.index_path:
            continue
        parent = tree.node(node.index_path[:-1]).layer
        holders = _holders(parent, node.layer)
        plain = [(name, value) for name, value in holders
                 if name.startswith("_") or isinstance(value, (list, tuple, dict))]
        if holders and len(plain) == len(holders):
            # The user's own attribute rather than Keras's bookkeeping list (self._layers).
            name, value = sorted(plain, key=lambda held: held[0].startswith("_"))[0]
            kind = "dict" if isinstance(value, dict) else "list" if isinstance(value, (list, tuple)) else ""
            how = f"self.{name}, a {kind}" if kind else f"self.{name}"
            label = f"{node.display} (held in {how})"
            if label not in found:
                found.append(label)
    return found


def adapted_state(tree: LayerTree) -> set[int]:
    """ids of the variables of layers whose state ``adapt()`` computes (they define
    ``finalize_state``: Normalization, lookups, TextVectorization).  Training never changes
    them, so a round trip keeps the values adapt gave them."""
    found: set[int] = set()
    for node in tree.nodes:
        # tf-keras gives every layer a finalize_state(): adapt() is what marks them.
        if callable(getattr(node.layer, "adapt", None)) and callable(getattr(node.layer, "finalize_state", None)):
            found |= {id(w) for w in compat.own_weights(node.layer)}
    return found
