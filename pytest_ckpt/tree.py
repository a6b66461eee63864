"""The layer tree of a Keras model and the stable keys of its variables.

Two models built by the same factory get different auto-generated names
(``dense_3`` vs ``dense_7``), so nothing here keys on names.  A layer is
identified by its index path from the root (child order is construction
order, identical for every model a factory builds) and a variable by its
owning layer's index path plus its short name.  None of this depends on the
``trainable`` flags, which is the whole point: the bug we hunt is an order
that does.

Works for Keras 3 and tf-keras alike; both expose ``_flatten_layers``, the
only way to reach sublayers that ``model.layers`` hides (an LSTM's cell, the
projections inside MultiHeadAttention).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LayerNode:
    """One layer in the tree, found at ``index_path`` from the root."""

    index_path: tuple[int, ...]
    layer: object = field(compare=False, repr=False)
    display: str = field(compare=False)
    # "0:Functional/3:Dense": index path with class names, for keys.
    key: str = field(compare=False, default="")
    # Freezing a layer with no weights anywhere below it changes nothing.
    has_weights: bool = field(compare=False, default=True)

    @property
    def depth(self) -> int:
        return len(self.index_path)


@dataclass(frozen=True)
class VariableEntry:
    key: str
    variable: object = field(repr=False)
    display: str
    shape: tuple[int, ...]
    dtype: str


def _children(layer) -> list:
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=False))
    return list(getattr(layer, "layers", ()))


def _short_name(variable) -> str:
    # Keras 3: "kernel"; tf-keras: "dense_3/kernel:0".
    name = variable.name.split("/")[-1]
    return name.split(":")[0]


def _own_weights(layer) -> list:
    """Weights created by ``layer`` itself, in creation order.

    tf-keras orders ``layer.weights`` as trainable + non-trainable, which
    moves with the flags; the private creation-order lists do not.
    """
    trainable = getattr(layer, "_trainable_weights", None)
    if trainable is None:  # Keras 3
        trainable = getattr(layer, "_trainable_variables", [])
        non_trainable = getattr(layer, "_non_trainable_variables", [])
    else:
        non_trainable = getattr(layer, "_non_trainable_weights", [])
    return list(trainable) + list(non_trainable)


class LayerTree:
    """Every layer of a model, pre-order, each shared layer once."""

    def __init__(self, model):
        self.model = model
        self.nodes: list[LayerNode] = []
        seen: set[int] = set()
        self._walk(model, (), "", seen)

    def _walk(self, layer, index_path, display, seen, key="") -> None:
        seen.add(id(layer))
        has_weights = bool(getattr(layer, "weights", None))
        self.nodes.append(LayerNode(index_path, layer, display or "<model>", key, has_weights))
        for i, child in enumerate(_children(layer)):
            if id(child) in seen:
                continue
            child_display = f"{display}/{child.name}" if display else child.name
            child_key = f"{key}/{i}:{type(child).__name__}" if key else f"{i}:{type(child).__name__}"
            self._walk(child, index_path + (i,), child_display, seen, child_key)

    def maskable(self) -> list[LayerNode]:
        """The layers whose freezing can change anything: those with weights."""
        return [n for n in self.nodes if n.has_weights]

    def node(self, index_path: tuple[int, ...]) -> LayerNode:
        for n in self.nodes:
            if n.index_path == index_path:
                return n
        raise KeyError(index_path)

    def variables(self) -> list[VariableEntry]:
        """Every weight of the model under a stable key.

        Seed-generator state is not a weight in Keras 3 and no checkpoint
        format promises to restore it, so it is left out.
        """
        weight_ids = {id(w) for w in self.model.weights}
        entries: list[VariableEntry] = []
        seen: set[int] = set()
        for node in self.nodes:
            own = [w for w in _own_weights(node.layer) if id(w) in weight_ids]
            names = [_short_name(w) for w in own]
            for pos, (w, name) in enumerate(zip(own, names)):
                if id(w) in seen:
                    continue
                seen.add(id(w))
                if names.count(name) > 1:
                    name = f"{name}#{pos}"
                key = f"{node.key}/{name}" if node.key else name
                label = node.display if node.index_path else ""
                entries.append(
                    VariableEntry(
                        key=key,
                        variable=w,
                        display=f"{label}/{name}" if label else name,
                        shape=tuple(int(d) for d in w.shape),
                        dtype=_dtype_name(w),
                    )
                )
        missing = [w for w in self.model.weights if id(w) not in seen]
        if missing:
            # A weight no layer of the tree owns (created on the model
            # itself by odd custom code): key it by position among those.
            for pos, w in enumerate(missing):
                name = _short_name(w)
                entries.append(
                    VariableEntry(
                        key=f"~{pos}/{name}",
                        variable=w,
                        display=f"<untracked>/{name}",
                        shape=tuple(int(d) for d in w.shape),
                        dtype=_dtype_name(w),
                    )
                )
        return entries


def _dtype_name(variable) -> str:
    dtype = variable.dtype
    return getattr(dtype, "name", None) or str(dtype)
