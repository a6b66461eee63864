"""Plain-Keras truth for a killed save: save A, save B over it in a process that is killed, load.

    python tests/truth/crash.py FACTORY FORMAT [--kill-before NAME | --kill-at-write N]

FORMAT: keras-weights, keras, h5, model-checkpoint (ModelCheckpoint(..., save_weights_only=True)
at the end of an epoch), backup-and-restore (BackupAndRestore(dir): saved at the end of an epoch,
restored by a new callback at the beginning of training; a compiled model), or a user's format
as module:attr (save(model, directory) / load(model, directory)).  The saving child is killed
with SIGKILL by a thread of its own once the checkpoint file has been truncated (its size drops
below A's), which is where an in-place writer is most exposed, or once a file A did not have
appears (an atomic writer's temporary file); a second child, a fresh interpreter, loads the
folder.  Prints ONE JSON line: whether the kill landed mid-save and what the load gave: "old"
(A), "new" (B), "lost" (the load raised) or "mixed".  Only Keras / NumPy / h5py: no pytest_ckpt
import.  With --kill-before NAME the saving child is killed instead as it opens the file NAME
for writing during B's save (between two files of one save); with --kill-at-write N, before
the Nth write of B's save to a file in the folder (a Python file write or an h5py dataset
write: code that rewrites a file in place never truncates it).  backup-and-restore also compares
the epoch fit goes on from (A's save ends epoch 0, B's epoch 1).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

FILES = {"keras-weights": "ckpt.weights.h5", "keras": "ckpt.keras", "h5": "ckpt.h5",
         "model-checkpoint": "ckpt.weights.h5"}


def build(factory):
    module, name = factory.split(":")
    return getattr(importlib.import_module(module), name)()


def user_format(spec):
    module, attr = spec.split(":")
    found = getattr(importlib.import_module(module), attr)
    return found() if isinstance(found, type) else found


def save(model, fmt, folder):
    import keras

    if ":" in fmt:
        user_format(fmt).save(model, folder)
    elif fmt == "model-checkpoint":
        callback = keras.callbacks.ModelCheckpoint(str(folder / FILES[fmt]), save_weights_only=True)
        callback.set_model(model)
        callback.on_epoch_end(0, logs={})
    elif fmt == "backup-and-restore":
        callback = keras.callbacks.BackupAndRestore(str(folder), delete_checkpoint=False)
        callback.set_model(model)
        metadata = folder / "training_metadata.json"
        callback.on_epoch_end(json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0)
    elif fmt == "keras-weights":
        model.save_weights(str(folder / FILES[fmt]))
    else:
        model.save(str(folder / FILES[fmt]))


def load(model, fmt, folder):
    import keras

    if ":" in fmt:
        user_format(fmt).load(model, folder)
    elif fmt == "backup-and-restore":
        callback = keras.callbacks.BackupAndRestore(str(folder), delete_checkpoint=False)
        callback.set_model(model)
        callback.on_train_begin()
    else:
        model.load_weights(str(folder / FILES[fmt]))


def fill(model, seed):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.uniform(0.5, 1.5, size=tuple(v.shape)).astype("float32"))
    return [np.asarray(v.numpy()) for v in model.weights]


def watch_and_kill(folder, sizes):
    """Kill this process as soon as a checkpoint file is smaller than it was with A in it, or a
    file appears that A did not have (a temporary file being written)."""
    def run():
        while True:
            for path in folder.rglob("*"):
                if path.is_file() and (path not in sizes or path.stat().st_size < sizes[path]):
                    os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.0005)

    threading.Thread(target=run, daemon=True).start()


def kill_before(name):
    """Die as ``name`` is opened for writing: the files written before it are complete."""
    import builtins

    real = builtins.open

    def opening(file, mode="r", *args, **kwargs):
        if os.path.basename(str(file)) == name and any(c in mode for c in "wax+"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(file, mode, *args, **kwargs)

    builtins.open = opening


def kill_at_write(folder, count):
    """Die before the ``count``-th write (1-based) into ``folder``."""
    import builtins

    import h5py

    real_open, real_assign = builtins.open, h5py.Dataset.__setitem__
    seen = [0]

    def point():
        seen[0] += 1
        if seen[0] == count:
            os.kill(os.getpid(), signal.SIGKILL)

    class Watched:
        def __init__(self, handle):
            self._handle = handle

        def write(self, data):
            point()
            return self._handle.write(data)

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            self._handle.__enter__()
            return self

        def __exit__(self, *exc):
            return self._handle.__exit__(*exc)

    def opening(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        inside = str(file).startswith(str(folder))
        return Watched(handle) if inside and any(c in mode for c in "wax+") else handle

    def assigning(self, key, value):
        if str(self.file.filename).startswith(str(folder)):
            point()
        real_assign(self, key, value)

    builtins.open, h5py.Dataset.__setitem__ = opening, assigning


def child_save(factory, fmt, folder, before=None):
    model = build(factory)
    a = fill(model, 1)
    save(model, fmt, folder)
    b = fill(model, 2)
    np.savez(folder.parent / "expected.npz", *a, *b)
    if before and before.startswith("write:"):
        kill_at_write(folder, int(before.removeprefix("write:")))
        save(model, fmt, folder)
        return
    if before:
        kill_before(before)
        save(model, fmt, folder)
        return
    sizes = {p: p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    watch_and_kill(folder, sizes)
    for _ in range(20):  # several saves: the watcher gets its chance
        save(model, fmt, folder)


def child_load(factory, fmt, folder):
    model = build(factory)
    count = len(model.weights)
    with np.load(folder.parent / "expected.npz") as z:
        a = [z[f"arr_{i}"] for i in range(count)]
        b = [z[f"arr_{i + count}"] for i in range(count)]
    try:
        load(model, fmt, folder)
    except Exception as e:
        return {"state": "lost", "error": f"{type(e).__name__}: {str(e)[:200]}"}
    got = [np.asarray(v.numpy()) for v in model.weights]
    if fmt == "backup-and-restore":  # where fit goes on from: after A's save epoch 1, after B's 2
        got, a, b = got + [model._initial_epoch], a + [1], b + [2]
    if all(np.array_equal(g, x) for g, x in zip(got, a)):
        return {"state": "old"}
    if all(np.array_equal(g, x) for g, x in zip(got, b)):
        return {"state": "new"}
    return {"state": "mixed"}


def main(argv):
    if argv[0] == "--child-save":
        child_save(argv[1], argv[2], Path(argv[3]), *argv[4:5])
        return
    if argv[0] == "--child-load":
        print(json.dumps(child_load(argv[1], argv[2], Path(argv[3]))))
        return
    factory, fmt, *rest = argv
    before = rest[1:2] if rest[:1] == ["--kill-before"] else [f"write:{rest[1]}"] if rest[:1] == [
        "--kill-at-write"] else []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ckpt"
        folder.mkdir()
        saved = subprocess.run([sys.executable, __file__, "--child-save", factory, fmt, str(folder), *before],
                               capture_output=True, text=True)
        loaded = subprocess.run([sys.executable, __file__, "--child-load", factory, fmt, str(folder)],
                                capture_output=True, text=True)
        result = json.loads(loaded.stdout.strip().splitlines()[-1])
        result["killed_mid_save"] = saved.returncode == -signal.SIGKILL
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
