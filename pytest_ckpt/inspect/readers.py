"""Reading checkpoint files as they are stored, without building a model.

Every format the project writes is read here: Keras 3 ``.weights.h5``,
sharded ``.weights.json``, ``.keras`` archives, legacy HDF5 (with the
positional order its loader will use), TensorFlow checkpoints, given as
a file, a prefix or the folder holding them, and Orbax checkpoint
directories (the latest committed step, as ``load_weights(dir)`` reads it).

Opening a checkpoint reads metadata only (keys, shapes, dtypes, names):
values are read on request, a block at a time, because a file of a few KB
may declare terabytes of unallocated data.  Orbax is the exception: its
public API restores a whole tree, so opening one reads all of it.  Anything wrong with a file
becomes one :class:`CheckpointFileError` naming it, never a bare traceback.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

import numpy as np

from pytest_ckpt.errors import CkptError
from pytest_ckpt.framework import nested
from pytest_ckpt.framework.messages import one_line

BLOCK_BYTES = 4 << 20
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TF_VALUE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_TF_OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"

# Called between library calls while reading, with the checkpoint's path when it changes
# (None: still the same one), so that a supervisor can tell a libhdf5 stuck in a loop
# from a long read.
def _no_progress(path: str | None) -> None:
    return None


progress: Callable[[str | None], None] = _no_progress


class CheckpointFileError(CkptError):
    """A checkpoint file that is missing, truncated, corrupt or of no known format."""


@dataclass
class StoredVariable:
    key: str  # unique in its checkpoint: "layers/dense/vars/0", "dense_2/sequential/dense_2/bias"
    shape: tuple[int, ...]
    dtype: np.dtype
    group: str = ""
    name: str = ""  # Keras's own variable name, where the format stores one
    position: int | None = None  # legacy HDF5: its place in the group's positional list
    # Takes a numpy-style index, returns those values.
    reader: Callable[[tuple], Any] | None = field(default=None, repr=False)
    # TensorFlow reads a whole tensor even for a slice of it.
    sliceable: bool = True
    optimizer: bool = False  # the optimizer's state (slots, iteration), not the model's
    # The value every element reads as, when no storage is allocated for any of them (None: some
    # is, or unknown): a few KB file can declare terabytes that way.
    fill: Callable[[], np.ndarray | None] = field(default=lambda: None, repr=False)

    @property
    def nbytes(self) -> int | None:
        """Declared size; None for variable-length data, whose size is only known by reading it."""
        if self.dtype.hasobject:
            return None
        return math.prod(self.shape) * self.dtype.itemsize


@dataclass
class Checkpoint:
    path: str  # as the user gave it: every message starts with it
    format: str
    variables: list[StoredVariable]
    notes: list[str] = field(default_factory=list)
    # Legacy HDF5 only: layer group -> weight names, both in the order load_weights() assigns them.
    load_order: dict[str, list[str]] | None = None
    # Legacy HDF5 only: optimizer weight names in the order load_model() gives them to
    # optimizer.set_weights(); None without optimizer_weights.
    optimizer_order: list[str] | None = None
    # Which checkpoint of a folder (or prefix) was read, when the path given holds several.
    read_from: list[str] = field(default_factory=list)

    def by_key(self) -> dict[str, StoredVariable]:
        return {v.key: v for v in self.variables}

    def read(self, variable: StoredVariable, index: tuple = ()) -> np.ndarray:
        progress(self.path)
        if variable.reader is None:
            raise CheckpointFileError(f"{self.path}: {variable.key} has no reader")
        try:
            return np.asarray(variable.reader(index))
        except Exception as exc:
            raise CheckpointFileError(
                f"{self.path}: cannot read the values of {variable.key}: {one_line(exc)}") from None


def natural_key(text: str) -> tuple:
    """Sorts dense_2 before dense_10."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", text)))


def dtype_name(dtype: np.dtype) -> str:
    metadata: dict[str, Any] = dict(dtype.metadata or {})
    ref = metadata.get("ref")  # how h5py marks references
    if ref is not None:
        return "region reference" if "Region" in ref.__name__ else "object reference"
    vlen = metadata.get("vlen")  # how h5py marks variable-length data
    return f"variable-length {getattr(vlen, '__name__', vlen)}" if vlen is not None else str(dtype)


def block_indexes(shape: tuple[int, ...], itemsize: int, limit: int | None = BLOCK_BYTES) -> Any:
    """Indexes covering an array of ``shape`` in blocks of at most ``limit`` bytes (or one row)."""
    # Keep whole the trailing axes that fit in limit; step along the axis before them.
    k, row = len(shape), itemsize
    while k > 0 and (limit is None or row * shape[k - 1] <= limit):
        k -= 1
        row *= shape[k]
    if k == 0:
        yield ()
        return
    step = max(1, limit // row) if limit is not None else 1
    for outer in np.ndindex(*shape[:k - 1]):
        for start in range(0, shape[k - 1], step):
            yield (*outer, slice(start, start + step))


@contextlib.contextmanager
def open_checkpoint(path: Any) -> Iterator[Checkpoint]:
    """The checkpoint at ``path`` (file, TF prefix or folder), open until the block exits."""
    shown = str(path)
    progress(shown)
    with contextlib.ExitStack() as stack:
        try:
            kind, target, notes = _resolve(Path(path))
            checkpoint = _READERS[kind](target, stack)
        except CheckpointFileError as exc:
            raise CheckpointFileError(f"{shown}: {exc}") from None
        except Exception as exc:  # h5py, zipfile and TF raise anything on a corrupt file
            raise CheckpointFileError(f"{shown}: unreadable ({one_line(exc)})") from None
        checkpoint.path = shown
        checkpoint.notes[:0] = notes
        checkpoint.read_from = notes
        yield checkpoint


# --- where to read ----------------------------------------------------------------------------


def is_tf_checkpoint(path: Any) -> bool:
    try:
        return _resolve(Path(path))[0] == "tf-checkpoint"
    except Exception:  # reported when the file is read
        return False


def _resolve(path: Path) -> tuple[str, Path, list[str]]:
    """The reader to use, what it reads, and a note when that is not ``path`` itself."""
    if path.is_dir():
        return _resolve_folder(path)
    tf_prefix = re.sub(r"\.(index|data-\d+-of-\d+)$", "", str(path))
    if tf_prefix != str(path) or Path(f"{path}.index").is_file():
        return "tf-checkpoint", Path(tf_prefix), []
    if not path.exists():
        raise CheckpointFileError("no such file")
    if not path.is_file():
        raise CheckpointFileError("not a regular file")  # a FIFO would block the first read
    with open(path, "rb") as f:
        magic = f.read(8)
    name = path.name.lower()
    # Contents first: a legacy model saved as "model.keras" is still HDF5.
    if magic == _HDF5_MAGIC:
        return "h5", path, []
    if magic[:2] == b"PK":
        return "keras", path, []
    if name.endswith((".h5", ".hdf5")):
        return "h5", path, []
    if name.endswith(".keras"):
        return "keras", path, []
    if name.endswith(".json"):
        return "keras-sharded", path, []
    raise CheckpointFileError(
        "unknown checkpoint format (expected .weights.h5, .h5, .keras, .weights.json, "
        "a TensorFlow checkpoint prefix or a folder holding one)")


def _resolve_folder(folder: Path) -> tuple[str, Path, list[str]]:
    orbax = _orbax_step(folder)
    if orbax is not None:
        return "orbax", *orbax
    state = folder / "checkpoint"
    if state.is_file():
        # tf.train.CheckpointManager's state file: a text proto naming the latest checkpoint.
        found = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$',
                          state.read_text(errors="replace"), re.MULTILINE)
        if not found:
            raise CheckpointFileError(f"{state.name} names no model_checkpoint_path")
        prefix = folder / found.group(1)
        moved = folder / prefix.name  # the folder was moved since TF wrote an absolute path
        if not Path(f"{prefix}.index").is_file() and Path(f"{moved}.index").is_file():
            prefix = moved
        if not Path(f"{prefix}.index").is_file():
            raise CheckpointFileError(
                f"{state.name} names {found.group(1)}, which has no .index file")
        return "tf-checkpoint", prefix, [f"latest checkpoint named by {state.name}: {prefix}"]
    indexes = sorted(folder.glob("*.index"), key=lambda p: natural_key(p.name))
    if len(indexes) > 1:
        listed = ", ".join(p.name for p in indexes[:5])
        raise CheckpointFileError(f"holds {len(indexes)} TensorFlow checkpoints ({listed}) and no "
                                  "'checkpoint' file naming the latest: pass one prefix")
    saved_model = folder / "variables" / "variables.index"
    candidates = indexes or ([saved_model] if saved_model.is_file() else [])
    if candidates:
        prefix = Path(str(candidates[0]).removesuffix(".index"))
        return "tf-checkpoint", prefix, [f"TensorFlow checkpoint {prefix}"]
    indexes = sorted(folder.glob("*.weights.json"))
    for index in indexes:
        if not index.is_file():  # a FIFO would block the first read
            raise CheckpointFileError(f"{index.name} is not a regular file")
    if len(indexes) == 1:
        return "keras-sharded", indexes[0], [f"sharded weights index {indexes[0]}"]
    # A folder of one's own checkpoint code: the one Keras file in it (beside a JSON of metadata).
    keras_files = sorted(p for p in folder.iterdir() if p.name.endswith((".weights.h5", ".keras", ".h5")))
    if len(keras_files) == 1 and not indexes:
        kind, target, _ = _resolve(keras_files[0])
        return kind, target, [f"the folder's one Keras file {keras_files[0].name}"]
    raise CheckpointFileError(
        f"a folder with {len(indexes) or 'no'} sharded weights indexes, no TensorFlow checkpoint "
        "('checkpoint' file, *.index or variables/variables.index), no Orbax step and "
        f"{len(keras_files) or 'no'} Keras files (.weights.h5, .keras, .h5; one is read)")


# Written into each step folder; Keras's load takes the latest step by name whether or not it is
# there.  Uncommitted steps are named "N.orbax-checkpoint-tmp".
_ORBAX_STEP_MARK = "_CHECKPOINT_METADATA"
_ORBAX_UNCOMMITTED = ".orbax-checkpoint-tmp"
# The item keras.callbacks.OrbaxCheckpoint writes the model's state tree into.
_ORBAX_TREE = "pytree"


def _is_step_name(name: str) -> bool:
    """A step folder's name as Orbax writes and finds it: a number, without leading zeros."""
    return name.isdigit() and str(int(name)) == name


def _orbax_step(folder: Path) -> tuple[Path, list[str]] | None:
    """The step folder to read when ``folder`` is an Orbax checkpoint directory (its latest
    step, as ``load_weights(dir)`` picks it) or one step; None when it is neither."""
    if folder.name.endswith(_ORBAX_UNCOMMITTED):
        raise CheckpointFileError("an uncommitted Orbax step (a save that did not finish): "
                                  "Keras does not load it")
    if (folder / _ORBAX_STEP_MARK).is_file() or (folder / _ORBAX_TREE / "_METADATA").is_file():
        return folder, [f"Orbax step {folder.name}"]
    try:
        steps = [p for p in folder.iterdir() if p.is_dir() and _is_step_name(p.name)]
    except OSError:
        return None
    if not steps or not any((p / _ORBAX_STEP_MARK).is_file() or (p / _ORBAX_TREE).is_dir() for p in steps):
        return None
    latest = max(steps, key=lambda p: int(p.name))
    return latest, [f"Orbax step {latest.name}, the latest of {len(steps)} (the one load_weights reads)"]


# --- readers: one per format, each (target, ExitStack) -> Checkpoint ---------------------------


def _h5py() -> Any:
    import h5py

    return h5py


def _open_h5(source: Any, stack: contextlib.ExitStack) -> Any:
    try:
        return stack.enter_context(_h5py().File(source, "r"))
    except Exception as exc:  # OSError, ValueError... depending on the damage
        raise CheckpointFileError(
            f"not a readable HDF5 file (truncated or corrupt?): {one_line(exc)}") from None


def _h5_variable(key: str, dataset: Any, **kwargs: Any) -> StoredVariable:
    # Shape and dtype come from the object header: no data is read.
    if dataset.shape is None:  # an HDF5 null dataspace: no elements at all
        return StoredVariable(key, (0,), dataset.dtype,
                              reader=np.empty((0,), dataset.dtype).__getitem__, **kwargs)
    reader = dataset.__getitem__
    if dataset.dtype.hasobject:
        reader = lambda index: _objects(dataset, index)  # noqa: E731
    return StoredVariable(key, tuple(dataset.shape), dataset.dtype, reader=reader,
                          fill=lambda: _fill(dataset), **kwargs)


def _fill(dataset: Any) -> np.ndarray | None:
    # Virtual and external datasets keep their data elsewhere: a storage size of 0 says nothing.
    if dataset.dtype.hasobject or dataset.is_virtual or dataset.external:
        return None
    if dataset.id.get_storage_size() != 0:
        return None
    return np.asarray(dataset.fillvalue, dtype=dataset.dtype).reshape(1)


def _objects(dataset: Any, index: tuple) -> np.ndarray:
    """Variable-length or reference values as an object array, references as what they name."""
    value = dataset[index]
    if not (isinstance(value, np.ndarray) and value.dtype.hasobject):
        # A scalar dataset gives its one element: a ragged row would pass for the whole array.
        one = np.empty((), object)
        one[()] = value
        value = one
    if (dataset.dtype.metadata or {}).get("ref") is None:
        return value
    # h5py references compare by identity, even two null ones: compare their targets instead,
    # which also makes references into two different files comparable.
    named = np.empty(value.shape, object)
    for i, ref in np.ndenumerate(value):
        named[i] = _ref_target(dataset, ref)
    return named


def _ref_target(dataset: Any, ref: Any) -> Any:
    if not ref:
        return None
    h5r = _h5py().h5r
    target: tuple[Any, ...] = (_text(h5r.get_name(ref, dataset.id)),)
    if isinstance(ref, _h5py().RegionReference):
        target += (h5r.get_region(ref, dataset.id).get_select_bounds(),)
    return target


def _h5_tree(f: Any) -> list[StoredVariable]:
    h5py = _h5py()
    found = []

    def visit(key: Any, item: Any) -> None:
        progress(None)
        if isinstance(item, h5py.Dataset):
            found.append(_h5_variable(key, item, group=key.rpartition("/")[0],
                                      optimizer=key.startswith("optimizer/")))

    f.visititems(visit)  # visits each object once even if links make a cycle
    return sorted(found, key=lambda v: (natural_key(v.group), natural_key(v.key)))


def _raw(name: Any) -> bytes:
    # h5py hands back non-UTF-8 bytes in a str as surrogates: undo that for exact lookups.
    return name.encode("utf-8", errors="surrogateescape") if isinstance(name, str) else bytes(name)


def _text(name: Any) -> str:
    return _raw(name).decode("utf-8", errors="backslashreplace")


def _list_attr(group: Any, name: str) -> list:
    """A list attribute as Keras's legacy saver wrote it, raw (bytes or str) for exact lookups.

    Lists over HDF5's 64 KiB header limit are split into ``name0``, ``name1``, ...
    (keras ``save_attributes_to_hdf5_group``).
    """
    try:
        if name in group.attrs:
            chunks = [group.attrs[name]]
        else:
            chunks = []
            while f"{name}{len(chunks)}" in group.attrs:
                chunks.append(group.attrs[f"{name}{len(chunks)}"])
        items = [item for chunk in chunks for item in np.ravel(chunk).tolist()]
    except Exception as exc:
        raise CheckpointFileError(
            f"attribute {name} of {_text(group.name)} is unreadable ({one_line(exc)})") from None
    if not all(isinstance(item, (bytes, str)) for item in items):
        raise CheckpointFileError(
            f"attribute {name} of {_text(group.name)} holds non-string values")
    return items


def _member(group: Any, name: Any, kind: Any, what: str) -> Any:
    try:
        item = group.get(_raw(name))
    except UnicodeError:  # h5py fails to word its KeyError about a non-UTF-8 name
        item = None
    if item is None:
        raise CheckpointFileError(f"{what} is missing")
    if not isinstance(item, kind):
        raise CheckpointFileError(f"{what} is not an HDF5 {kind.__name__.lower()}")
    return item


def _legacy_root(f: Any) -> Any:
    h5py = _h5py()
    for root in (f, f.get("model_weights")):
        if isinstance(root, h5py.Group) and {"layer_names", "layer_names0"} & set(root.attrs):
            return root
    return None


def _read_h5(path: Path, stack: Any) -> Checkpoint:
    f = _open_h5(str(path), stack)
    root = _legacy_root(f)
    if root is None:
        return Checkpoint(str(path), "keras-weights", _h5_tree(f))
    h5py = _h5py()
    variables, order = [], {}
    groups = _list_attr(root, "layer_names")
    if "top_level_model_weights" in root:
        groups.append("top_level_model_weights")  # load_weights() reads it after the layers
    for raw_group in groups:
        progress(None)
        group_name = _text(raw_group)
        group = _member(root, raw_group, h5py.Group, f"layer group {group_name} (from layer_names)")
        names = _list_attr(group, "weight_names")
        if not names:
            continue  # load_weights() skips weightless groups: they take no position
        if group_name in order:
            raise CheckpointFileError(f"layer_names lists {group_name} twice")
        order[group_name] = [_text(n) for n in names]
        if len(set(order[group_name])) != len(names):
            raise CheckpointFileError(f"weight_names of layer group {group_name} repeats a name")
        for position, raw in enumerate(names):
            what = f"weight {_text(raw)} of layer group {group_name} (from weight_names)"
            dataset = _member(group, raw, h5py.Dataset, what)
            variables.append(_h5_variable(f"{group_name}/{_text(raw)}", dataset, group=group_name,
                                          name=_text(raw), position=position))
    notes = ["legacy HDF5: load_weights() assigns each layer group's list by position to "
             "layer.trainable_weights + layer.non_trainable_weights of the loading model"]
    optimizer_order = None
    if root is not f and "optimizer_weights" in f:  # model.save() of a compiled model
        optimizer_order, optimizer_variables = _legacy_optimizer(f)
        variables += optimizer_variables
        notes.append("legacy HDF5: load_model() gives optimizer_weights, by position, to "
                     "optimizer.set_weights()")
    return Checkpoint(str(path), "h5", variables, notes, load_order=order,
                      optimizer_order=optimizer_order)


def _legacy_optimizer(f: Any) -> tuple[list[str], list[StoredVariable]]:
    """optimizer_weights: its weight_names in order, and every dataset in it, listed first."""
    h5py = _h5py()
    group = _member(f, "optimizer_weights", h5py.Group, "optimizer_weights")
    raw_names = _list_attr(group, "weight_names")
    names = [_text(n) for n in raw_names]
    variables, listed = [], set()
    for position, (raw, name) in enumerate(zip(raw_names, names)):
        what = f"optimizer weight {name} (from weight_names of optimizer_weights)"
        dataset = _member(group, raw, h5py.Dataset, what)
        listed.add(_text(dataset.name))
        variables.append(_h5_variable(f"optimizer_weights/{name}", dataset,
                                      group="optimizer_weights", name=name, position=position,
                                      optimizer=True))
    # Datasets that weight_names does not list are not loaded, but they differ all the same.
    for v in _h5_tree(group):
        if f"{_text(group.name)}/{v.key}" not in listed:
            v.key, v.group, v.optimizer = f"optimizer_weights/{v.key}", "optimizer_weights", True
            variables.append(v)
    return names, variables


def _read_keras_archive(path: Path, stack: Any) -> Checkpoint:
    try:
        archive = stack.enter_context(zipfile.ZipFile(path))
        members = set(archive.namelist())
        if "model.weights.h5" not in members:
            held = ("model.weights.npz, which this inspector does not read"
                    if "model.weights.npz" in members else "no model.weights.h5")
            raise CheckpointFileError(f".keras archive with {held}")
        # Streamed from the archive, as Keras itself does: never the whole member in memory.
        member = stack.enter_context(archive.open("model.weights.h5"))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise CheckpointFileError(f"not a readable .keras archive: {one_line(exc)}") from None
    return Checkpoint(str(path), "keras", _h5_tree(_open_h5(member, stack)))


def _read_sharded(path: Path, stack: Any) -> Checkpoint:
    try:
        weight_map = json.loads(path.read_bytes())["weight_map"]
        shards = {s for files in weight_map.values()
                  for s in ([files] if isinstance(files, str) else files)}
        if not all(isinstance(s, str) for s in shards):
            raise TypeError("shard names must be strings")
    except (ValueError, KeyError, AttributeError, TypeError, RecursionError) as exc:
        raise CheckpointFileError(f"not a sharded Keras weights index: {one_line(exc)}") from None
    variables, seen, notes = [], set(), []
    for shard in sorted(shards, key=natural_key):
        shard_path = path.parent / shard
        if not shard_path.is_file():
            raise CheckpointFileError(f"shard {shard} is " + (
                "not a regular file" if shard_path.exists() else "missing"))
        try:
            f = _open_h5(str(shard_path), stack)
        except CheckpointFileError as exc:
            raise CheckpointFileError(f"shard {shard}: {exc}") from None
        for v in _h5_tree(f):
            if v.key in seen:
                notes.append(f"{v.key} is stored again in {shard}; showing the first")
            else:
                seen.add(v.key)
                variables.append(v)
    variables.sort(key=lambda v: (natural_key(v.group), natural_key(v.key)))
    listed = ", ".join(sorted(shards, key=natural_key))
    return Checkpoint(str(path), "keras-sharded", variables,
                      [f"{len(shards)} shards: {listed}"] + notes)


@contextlib.contextmanager
def _without_fd2_startup_noise() -> Any:
    """Hold back what is written to file descriptor 2, then pass on all but TF's start-up noise.

    The full tensorflow wheel's C++ code writes absl and cudart_stub lines straight to the
    descriptor on import, TF_CPP_MIN_LOG_LEVEL or not: sys.stderr cannot catch them.
    """
    from pytest_ckpt.framework.chatter import without_startup_noise

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing to keep clean
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = without_startup_noise(held.read().decode(errors="backslashreplace"))
            if kept.strip():
                print(kept, file=sys.stderr)


def _tensor_reader(reader: Any, key: str) -> Callable[[tuple], Any]:
    def read(index: tuple) -> Any:
        return np.asarray(reader.get_tensor(key))[index]
    return read


def _read_tf_checkpoint(prefix: Path, stack: Any) -> Checkpoint:
    if not Path(f"{prefix}.index").is_file():
        raise CheckpointFileError(f"no TensorFlow checkpoint index {prefix}.index")
    for data in prefix.parent.glob(f"{glob_escape(prefix.name)}.data-*"):
        if not data.is_file():  # TensorFlow would block reading a FIFO, with no stall watch
            raise CheckpointFileError(f"{data.name} is not a regular file")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # stderr carries our one error line only
    with _without_fd2_startup_noise():
        try:
            import tensorflow as tf
        except ImportError as exc:
            raise CheckpointFileError(
                f"a TensorFlow checkpoint, and TensorFlow cannot be imported ({one_line(exc)}); "
                "install tensorflow or tensorflow-cpu to read it") from None
        try:
            reader = tf.train.load_checkpoint(str(prefix))
            shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
        except Exception as exc:
            raise CheckpointFileError(
                f"not a readable TensorFlow checkpoint: {one_line(exc)}") from None
    names, notes = {}, []
    if _TF_OBJECT_GRAPH in shapes:
        # The object graph records each variable's own name (full_name) next to its key.
        try:
            from pytest_ckpt.framework.compat import tf_object_graph

            graph = tf_object_graph(reader.get_tensor(_TF_OBJECT_GRAPH))
            names = {a.checkpoint_key: a.full_name for n in graph.nodes for a in n.attributes}
        except Exception as exc:
            notes.append(f"object graph unreadable, showing keys only ({one_line(exc)})")
    variables = []
    for key in shapes:
        if key == _TF_OBJECT_GRAPH:
            continue
        shown = key.removesuffix(_TF_VALUE_SUFFIX)
        variables.append(StoredVariable(
            shown, tuple(shapes[key]), np.dtype(dtypes[key].as_numpy_dtype),
            group=shown.rpartition("/")[0], name=names.get(key, ""), sliceable=False,
            reader=_tensor_reader(reader, key)))
    variables.sort(key=lambda v: (natural_key(v.group), natural_key(v.key)))
    return Checkpoint(str(prefix), "tf-checkpoint", variables, notes)


def _not_a_dict(value: Any) -> bool:
    return not isinstance(value, dict)


def _read_orbax(step: Path, stack: Any) -> Checkpoint:
    """One step of ``keras.callbacks.OrbaxCheckpoint``: the state tree, keyed by its path
    (``trainable_variables/dense/kernel``), grouped as ``set_state_tree`` matches it."""
    tree_dir = step / _ORBAX_TREE
    if not (tree_dir / "_METADATA").is_file():
        raise CheckpointFileError(f"Orbax step {step.name} has no {_ORBAX_TREE}/_METADATA: not a "
                                  "keras.callbacks.OrbaxCheckpoint step, or half-written")
    try:
        import orbax.checkpoint as ocp
    except ImportError:
        raise CheckpointFileError("an Orbax checkpoint directory: reading it needs orbax-checkpoint "
                                  "(pip install 'pytest-ckpt[orbax]')") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Sharding info not provided": one host, one device
        tree = ocp.PyTreeCheckpointer().restore(str(tree_dir.resolve()))
    variables = []
    for path, value in nested.items(tree, _not_a_dict):
        array = np.asarray(value)
        group = str(path[0]) if len(path) > 1 else ""
        variables.append(StoredVariable(
            "/".join(map(str, path)), tuple(array.shape), array.dtype, group=group, name=str(path[-1]),
            reader=_array_reader(array), optimizer=group == "optimizer_variables"))
    return Checkpoint(str(step), "orbax", variables)


def _array_reader(array: np.ndarray) -> Callable[[tuple], Any]:
    def read(index: tuple) -> Any:
        return array[index]

    return read


_READERS = {
    "h5": _read_h5,
    "keras": _read_keras_archive,
    "keras-sharded": _read_sharded,
    "tf-checkpoint": _read_tf_checkpoint,
    "orbax": _read_orbax,
}
