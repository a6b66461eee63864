"""The one walker over nested structures: dicts, lists and tuples of leaves.

Model inputs, outputs, input specs, state trees and the goldens' saved probe
all nest the same way, and every question the project asks of them (the
leaves in order, each leaf with where it sits, the same nesting with new
leaves) is one fold over that nesting.  Keeping it in one place keeps one
answer to "in which order", which matters: inputs travel between processes
keyed by that order.

Pure Python, no NumPy: the plugin may import it without a framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Key = str | int
Path = tuple[Key, ...]
Leaf = TypeVar("Leaf")


def is_plain_leaf(value: Any) -> bool:
    """Anything but a dict, list or tuple."""
    return not isinstance(value, (dict, list, tuple))


def fold(structure: Any, leaf: Callable[[Path, Any], Any], *,
         is_leaf: Callable[[Any], bool] = is_plain_leaf,
         on_dict: Callable[[dict[Any, Any]], Any] = dict,
         on_list: Callable[[list[Any]], Any] = list,
         sort_keys: bool = False, path: Path = ()) -> Any:
    """Rebuild ``structure`` bottom up: ``leaf(path, value)`` for each leaf, ``on_dict`` and
    ``on_list`` for each container of already folded children.  Dicts are visited in their
    own order (sorted with ``sort_keys``), lists and tuples by position; tuples fold as lists."""
    if is_leaf(structure):
        return leaf(path, structure)
    options: dict[str, Any] = {"is_leaf": is_leaf, "on_dict": on_dict, "on_list": on_list,
                               "sort_keys": sort_keys}
    if isinstance(structure, dict):
        keys = sorted(structure) if sort_keys else list(structure)
        return on_dict({k: fold(structure[k], leaf, path=(*path, k), **options) for k in keys})
    return on_list([fold(v, leaf, path=(*path, i), **options) for i, v in enumerate(structure)])


def map_leaves(structure: Any, fn: Callable[[Any], Any],
               is_leaf: Callable[[Any], bool] = is_plain_leaf) -> Any:
    """The same nesting with ``fn`` applied to each leaf (tuples become lists)."""
    return fold(structure, lambda _path, value: fn(value), is_leaf=is_leaf)


def items(structure: Any, is_leaf: Callable[[Any], bool] = is_plain_leaf, *,
          sort_keys: bool = False) -> list[tuple[Path, Any]]:
    """(path, leaf) for each leaf, in the order :func:`fold` visits them."""
    found: list[tuple[Path, Any]] = []
    fold(structure, lambda path, value: found.append((path, value)), is_leaf=is_leaf,
         sort_keys=sort_keys)
    return found


def leaves(structure: Any, is_leaf: Callable[[Any], bool] = is_plain_leaf) -> list[Any]:
    """The leaves in the order :func:`fold` visits them."""
    return [value for _path, value in items(structure, is_leaf)]


def path_name(root: str, path: Path) -> str:
    """``output[0]['logits']``: a leaf's path written as Python would index it."""
    return root + "".join(f"[{key!r}]" if isinstance(key, str) else f"[{key}]" for key in path)


def to_skeleton(structure: Any, store: Callable[[Any], str]) -> Any:
    """A JSON-able nesting of leaf names: ``store(leaf)`` keeps each leaf and names it, and
    containers say what they were (``{"dict": ...}``, ``{"list": ...}``), so a leaf name can
    never be taken for a container.  :func:`from_skeleton` inverts it."""
    return fold(structure, lambda _path, value: store(value),
                on_dict=lambda d: {"dict": {str(k): v for k, v in d.items()}},
                on_list=lambda items: {"list": items})


def from_skeleton(skeleton: Any, leaf: Callable[[str], Any]) -> Any:
    """The structure :func:`to_skeleton` described, with ``leaf(name)`` for each leaf."""
    if isinstance(skeleton, str):
        return leaf(skeleton)
    if "dict" in skeleton:
        return {k: from_skeleton(v, leaf) for k, v in skeleton["dict"].items()}
    return [from_skeleton(v, leaf) for v in skeleton["list"]]
