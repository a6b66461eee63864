"""Reading checkpoint files as they are stored, without building a model.

Every format the project writes is read here: Keras 3 ``.weights.h5``,
sharded ``.weights.json``, ``.keras`` archives, legacy HDF5 (with the
positional order its loader will use) and TensorFlow checkpoints.  A file
that cannot be read gives one :class:`CheckpointFileError` naming it, never
a bare h5py traceback.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pytest_ckpt.errors import CkptError


class CheckpointFileError(CkptError):
    """A checkpoint file that is missing, truncated, corrupt or of no known format."""


@dataclass
class StoredVariable:
    key: str  # where it is stored: "layers/sequential/layers/dense/vars/0"
    value: np.ndarray = field(repr=False)
    group: str = ""  # the layer group it belongs to, in stored order
    position: int | None = None  # legacy HDF5: its place in the group's positional list

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def dtype(self) -> str:
        return str(self.value.dtype)


@dataclass
class CheckpointContents:
    path: Path
    format: str
    variables: list[StoredVariable]
    notes: list[str] = field(default_factory=list)

    def by_key(self) -> dict[str, StoredVariable]:
        return {v.key: v for v in self.variables}


def _h5py():
    import h5py

    return h5py


def _walk_h5(group, prefix="") -> list[StoredVariable]:
    h5py = _h5py()
    found = []
    for name, item in group.items():
        key = f"{prefix}{name}"
        if isinstance(item, h5py.Dataset):
            found.append(StoredVariable(key, np.asarray(item[()]), group=prefix.rstrip("/")))
        else:
            found.extend(_walk_h5(item, key + "/"))
    return found


def _open_h5(source, path: Path):
    try:
        return _h5py().File(source, "r")
    except Exception as exc:  # h5py raises OSError, ValueError... for bad files
        raise CheckpointFileError(
            f"{path}: not a readable HDF5 file (truncated or corrupt?): {type(exc).__name__}: {exc}"
        ) from None


def _attr_strings(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _read_legacy_h5(f, path: Path) -> CheckpointContents:
    root = f["model_weights"] if "model_weights" in f and "layer_names" not in f.attrs else f
    variables = []
    for layer_name in _attr_strings(root.attrs["layer_names"]):
        group = root[layer_name]
        for position, weight_name in enumerate(_attr_strings(group.attrs.get("weight_names", []))):
            variables.append(StoredVariable(f"{layer_name}/{weight_name}",
                                            np.asarray(group[weight_name][()]),
                                            group=layer_name, position=position))
    notes = ["legacy HDF5: load_weights() assigns each layer group's list by position to "
             "layer.trainable_weights + layer.non_trainable_weights of the loading model"]
    return CheckpointContents(path, "h5", variables, notes)


def _read_h5(path: Path) -> CheckpointContents:
    with _open_h5(str(path), path) as f:
        if "layer_names" in f.attrs or ("model_weights" in f and "layer_names" in f["model_weights"].attrs):
            return _read_legacy_h5(f, path)
        return CheckpointContents(path, "keras-weights", _walk_h5(f))


def _read_keras_archive(path: Path) -> CheckpointContents:
    try:
        with zipfile.ZipFile(path) as archive:
            data = archive.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise CheckpointFileError(f"{path}: not a readable .keras archive: {exc}") from None
    with _open_h5(io.BytesIO(data), path) as f:
        return CheckpointContents(path, "keras", _walk_h5(f))


def _read_sharded(path: Path) -> CheckpointContents:
    try:
        config = json.loads(path.read_text())
        shards = sorted({s for files in config["weight_map"].values() for s in files})
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise CheckpointFileError(f"{path}: not a sharded Keras weights index: {exc}") from None
    variables = []
    for shard in shards:
        shard_path = path.parent / shard
        if not shard_path.exists():
            raise CheckpointFileError(f"{path}: shard {shard_path} is missing")
        with _open_h5(str(shard_path), shard_path) as f:
            variables += _walk_h5(f)
    return CheckpointContents(path, "keras-sharded", variables,
                              [f"{len(shards)} shards: {', '.join(shards)}"])


def _read_tf_checkpoint(prefix: Path) -> CheckpointContents:
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(prefix))
        names = sorted(reader.get_variable_to_shape_map())
    except Exception as exc:
        raise CheckpointFileError(f"{prefix}: not a readable TensorFlow checkpoint: {exc}") from None
    variables = []
    for n in names:
        if "OBJECT_GRAPH" in n:
            continue
        key = n.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE")
        variables.append(StoredVariable(key, np.asarray(reader.get_tensor(n)),
                                        group=key.rsplit("/", 1)[0]))
    return CheckpointContents(prefix, "tf-checkpoint", variables)


def detect_format(path: Path) -> str:
    path = Path(path)
    name = path.name
    if name.endswith(".index") or Path(f"{path}.index").exists():
        return "tf-checkpoint"
    if not path.exists():
        raise CheckpointFileError(f"{path}: no such file")
    if name.endswith(".keras"):
        return "keras"
    if name.endswith(".json"):
        return "keras-sharded"
    if name.endswith((".h5", ".hdf5")):
        return "h5-file"
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic == b"\x89HDF\r\n\x1a\n":
        return "h5-file"
    if magic[:2] == b"PK":
        return "keras"
    raise CheckpointFileError(
        f"{path}: unknown checkpoint format (expected .weights.h5, .h5, .keras, "
        ".weights.json or a TensorFlow checkpoint prefix)")


def read_checkpoint(path) -> CheckpointContents:
    path = Path(path)
    kind = detect_format(path)
    if kind == "tf-checkpoint":
        return _read_tf_checkpoint(Path(str(path).removesuffix(".index")))
    if kind == "keras":
        return _read_keras_archive(path)
    if kind == "keras-sharded":
        return _read_sharded(path)
    return _read_h5(path)
