"""Users' own checkpoint code, as ``module:attr`` formats (see docs/formats.md).

``AtomicWeights`` is the known-good pattern: write to a temporary file in the same folder, then
rename over the real name, and write the training metadata the same way.  ``positional_npz``
is a known-bad one: the values of ``trainable_weights + non_trainable_weights`` in order, loaded
back by position, as legacy HDF5 does: a different freeze state moves them.  The rest are
broken on purpose, for the messages.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


class AtomicWeights:
    """save_weights to a temporary file, then os.replace: a reader sees the old file or the new."""

    name = "atomic weights"

    def save(self, model, directory: Path) -> None:
        final = directory / "model.weights.h5"
        partial = directory / "model.partial.weights.h5"
        model.save_weights(str(partial))
        os.replace(partial, final)
        meta = directory / "meta.json.partial"
        meta.write_text(json.dumps({"epoch": 1}))
        os.replace(meta, directory / "meta.json")

    def load(self, model, directory: Path) -> None:
        model.load_weights(str(directory / "model.weights.h5"))


def _in_order(model):
    # What legacy HDF5 does too: the trainable ones first, so a freeze change reorders them.
    return list(model.trainable_weights) + list(model.non_trainable_weights)


class PositionalNpz:
    """The values of trainable_weights + non_trainable_weights, in order, loaded back by position."""

    def save(self, model, directory: Path) -> None:
        with open(directory / "weights.npz", "wb") as f:
            np.savez(f, *[np.asarray(w.numpy()) for w in _in_order(model)])

    def load(self, model, directory: Path) -> None:
        with np.load(directory / "weights.npz") as data:
            values = [data[f"arr_{i}"] for i in range(len(data.files))]
        for w, value in zip(_in_order(model), values):
            w.assign(value)


positional_npz = PositionalNpz()


class NoLoad:
    """Forgot load(): a clear error, not a traceback."""

    def save(self, model, directory: Path) -> None:
        model.save_weights(str(directory / "x.weights.h5"))


class NeedsArguments:
    def __init__(self, bucket):
        self.bucket = bucket

    def save(self, model, directory):
        pass

    def load(self, model, directory):
        pass


class SplitAtomic:
    """Two files, each replaced atomically, but not together: a kill between them mixes A and B."""

    def save(self, model, directory: Path) -> None:
        values = [np.asarray(w.numpy()) for w in model.weights]
        half = len(values) // 2
        for name, part in (("first", values[:half]), ("second", values[half:])):
            with open(directory / f"{name}.partial.npz", "wb") as f:
                np.savez(f, *part)
            os.replace(directory / f"{name}.partial.npz", directory / f"{name}.npz")

    def load(self, model, directory: Path) -> None:
        values = []
        for name in ("first", "second"):
            with np.load(directory / f"{name}.npz") as data:
                values += [data[f"arr_{i}"] for i in range(len(data.files))]
        for w, value in zip(model.weights, values):
            w.assign(value)


class OsWriteInPlace:
    """Truncates its file with os.open and writes each variable with os.write: in place, below
    the file objects."""

    def save(self, model, directory: Path) -> None:
        fd = os.open(directory / "w.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            for w in model.weights:
                os.write(fd, np.asarray(w.numpy(), dtype=np.float32).tobytes())
        finally:
            os.close(fd)

    def load(self, model, directory: Path) -> None:
        data = np.fromfile(directory / "w.bin", dtype=np.float32)
        sizes = [int(np.prod(w.shape)) for w in model.weights]
        if data.size != sum(sizes):
            raise ValueError(f"short file: {data.size} values, {sum(sizes)} expected")
        for w, chunk in zip(model.weights, np.split(data, np.cumsum(sizes)[:-1])):
            w.assign(chunk.reshape(tuple(w.shape)))


class ChattyAtomic(AtomicWeights):
    """Prints while saving, without a newline: the check's own answers must survive it."""

    def save(self, model, directory: Path) -> None:
        import sys

        sys.stdout.write("saved!")
        super().save(model, directory)


class WritesElsewhere(AtomicWeights):
    """Keeps a copy outside the folder it is given."""

    def save(self, model, directory: Path) -> None:
        import tempfile

        super().save(model, directory)
        model.save_weights(os.path.join(tempfile.gettempdir(), "pytest-ckpt-test-elsewhere.weights.h5"))


class RaisesInSave:
    def save(self, model, directory: Path) -> None:
        raise RuntimeError("the bucket is not reachable")

    def load(self, model, directory: Path) -> None:
        pass


class WeightsOnlyBackup:
    """Saves as ``keras.callbacks.BackupAndRestore`` does (the weights, then
    ``training_metadata.json`` with the epoch to go on from) but restores only the weights:
    the training loop then starts again from epoch 0.  Known-bad for the resume check."""

    name = "weights-only backup"
    restores_epoch = True

    def save(self, model, directory):
        import keras

        callback = keras.callbacks.BackupAndRestore(str(directory), delete_checkpoint=False)
        callback.set_model(model)
        try:
            done = json.loads((directory / "training_metadata.json").read_text())["epoch"]
        except OSError:
            done = 0
        callback.on_epoch_end(done)

    def load(self, model, directory):
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(str(directory / "latest.weights.h5"))

    def resume_epoch(self, model):
        return None  # what the loop above resumes from: fit's own initial_epoch, 0


class UndeclaredBackup(WeightsOnlyBackup):
    """Restores through ``BackupAndRestore`` (weights and epoch) but does not say so: a loop that
    calls ``fit(epochs=1)`` after loading then trains nothing, since fit believes epoch 0 done."""

    name = "undeclared backup"
    restores_epoch = False

    def load(self, model, directory):
        import keras

        callback = keras.callbacks.BackupAndRestore(str(directory), delete_checkpoint=False)
        callback.set_model(model)
        callback.on_train_begin()


def _state_variables(model):
    """Every model and optimizer variable, in one fixed order (the optimizer built first)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    return list(model.weights) + (list(optimizer.variables) if optimizer is not None else [])


class RawInPlace:
    """The first save writes a raw file and renames it into place; later saves overwrite it in
    place, variable after variable, through an unbuffered file opened "r+b" (never truncated).
    Known-bad: killed between two writes, the file holds some old values and some new."""

    name = "raw bytes rewritten in place"

    def save(self, model, directory):
        blobs = [np.ascontiguousarray(np.asarray(v.numpy())).tobytes() for v in _state_variables(model)]
        path = directory / "state.bin"
        if not path.exists():
            partial = directory / "state.bin.partial"
            partial.write_bytes(b"".join(blobs))
            os.replace(partial, path)
            return
        with open(path, "r+b", buffering=0) as f:
            for blob in blobs:
                f.write(blob)

    def load(self, model, directory):
        data = (directory / "state.bin").read_bytes()
        offset = 0
        for v in _state_variables(model):
            dtype = np.asarray(v.numpy()).dtype
            size = int(np.prod(v.shape)) * dtype.itemsize
            v.assign(np.frombuffer(data[offset:offset + size], dtype=dtype).reshape(tuple(v.shape)))
            offset += size


class H5InPlace:
    """As RawInPlace, in HDF5: later saves assign each dataset of the existing file (h5py "r+")."""

    name = "h5py datasets rewritten in place"

    def save(self, model, directory):
        import h5py

        values = [np.asarray(v.numpy()) for v in _state_variables(model)]
        path = directory / "state.h5"
        if not path.exists():
            partial = directory / "state.h5.partial"
            with h5py.File(partial, "w") as f:
                for i, value in enumerate(values):
                    f.create_dataset(f"v{i}", data=value)
            os.replace(partial, path)
            return
        with h5py.File(path, "r+") as f:
            for i, value in enumerate(values):
                f[f"v{i}"][...] = value

    def load(self, model, directory):
        import h5py

        with h5py.File(directory / "state.h5", "r") as f:
            for i, v in enumerate(_state_variables(model)):
                v.assign(f[f"v{i}"][()])


def _die_here(label):
    """For the truth script: SIGKILL this process where ``CKPT_TRUTH_DIE`` names this moment."""
    if os.environ.get("CKPT_TRUTH_DIE") == label:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class MappedInPlace(RawInPlace):
    """As RawInPlace, but later saves write through a memory map (numpy.memmap "r+"): no write
    call at all, so no kill point lands between two variables; the file itself changed in place."""

    name = "memory-mapped rewrite in place"

    def save(self, model, directory):
        path = directory / "state.bin"
        if not path.exists():
            return super().save(model, directory)
        blob = np.frombuffer(b"".join(np.ascontiguousarray(np.asarray(v.numpy())).tobytes()
                                      for v in _state_variables(model)), dtype=np.uint8)
        mapped = np.memmap(path, dtype=np.uint8, mode="r+", shape=blob.shape)
        half = len(blob) // 2
        mapped[:half] = blob[:half]
        _die_here("half")
        mapped[half:] = blob[half:]
        mapped.flush()


class RenamedBeforeClose(RawInPlace):
    """Writes a temporary file and renames it over the old one before closing (flushing) it:
    killed right after the rename, the checkpoint is an empty file."""

    name = "renamed before it was closed"

    def save(self, model, directory):
        blob = b"".join(np.ascontiguousarray(np.asarray(v.numpy())).tobytes() for v in _state_variables(model))
        partial, path = directory / "state.bin.partial", directory / "state.bin"
        existed = path.exists()
        f = open(partial, "wb")  # noqa: SIM115  (on purpose: renamed while still open)
        f.write(blob)  # buffered: still in this process's memory
        os.replace(partial, path)
        if existed:
            _die_here("renamed")
        f.close()
