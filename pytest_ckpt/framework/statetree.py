"""A model's state tree (``Model.get_state_tree``) in one ``.npz`` file.

The file keeps every leaf as raw bytes with its dtype name and shape beside
it, so bfloat16 and float8 leaves (NumPy knows them only through ml_dtypes)
come back bit for bit, and nothing is unpickled on read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pytest_ckpt.framework import nested

_INDEX = "index"


def _dtype(name: str) -> np.dtype:
    try:
        return np.dtype(name)
    except TypeError:  # bfloat16, float8_*: NumPy knows them through ml_dtypes
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))


def _not_a_dict(value: Any) -> bool:
    return not isinstance(value, dict)


def write_state_tree(tree: dict[str, Any], path: Path) -> None:
    index = []
    arrays: dict[str, Any] = {}
    for n, (keys, value) in enumerate(nested.items(tree, _not_a_dict)):
        array = np.asarray(value)
        index.append({"path": list(keys), "dtype": str(array.dtype), "shape": list(array.shape)})
        arrays[f"leaf_{n}"] = np.frombuffer(np.ascontiguousarray(array).tobytes(), dtype=np.uint8)
    arrays[_INDEX] = np.array(json.dumps(index))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def read_state_tree(path: Path) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    with np.load(path, allow_pickle=False) as data:
        index = json.loads(str(data[_INDEX]))
        for n, entry in enumerate(index):
            raw = data[f"leaf_{n}"].tobytes()
            value = np.frombuffer(raw, dtype=_dtype(entry["dtype"])).reshape(entry["shape"]).copy()
            node = tree
            for key in entry["path"][:-1]:
                node = node.setdefault(key, {})
            node[entry["path"][-1]] = value
    return tree
