"""Plain-Keras truth for golden checks: does today's model load yesterday's checkpoint exactly?

    python tests/truth/golden.py SAVE_FACTORY LOAD_FACTORY FORMAT

Each FACTORY is ``module:callable`` returning a Keras model (the test's model
when the golden was written, and today's).  FORMAT is ``keras-weights``,
``keras`` or ``h5``.  Only Keras and NumPy: no pytest_ckpt import.  Two
fresh processes:

1. the saving process builds the first model, gives every variable (its
   optimizer's too) random values on a normal scale, as training leaves
   them, saves it as the format does, and records its outputs on a fixed
   probe and its optimizer's iteration count;
2. the loading process builds today's model as its factory returns it,
   loads with ``model.load_weights(path)``, and compares.

It prints one JSON line: the load's error, whether Keras skipped the
optimizer's state (its warning), the largest output difference, whether
the iteration count came back, and the optimizer variables that hold what
was saved for another one (Keras restores them by position).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

SUFFIX = {"keras-weights": ".weights.h5", "keras": ".keras", "h5": ".h5"}


def build(spec):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)()


def probe(model):
    rng = np.random.default_rng(0)
    try:
        inputs = model.inputs
    except AttributeError:  # a subclassed model: the cases take 4 features
        return rng.normal(size=(2, 4)).astype("float32")
    return [rng.normal(size=(2,) + tuple(t.shape[1:])).astype("float32") for t in inputs]


def save(spec, fmt, folder):
    import keras

    model = build(spec)
    rng = np.random.default_rng(1)
    optimizer = getattr(model, "optimizer", None)
    for v in list(model.weights) + list(getattr(optimizer, "variables", None) or []):
        shape = tuple(v.shape)
        if "int" in str(v.dtype):
            v.assign(np.full(shape, 7, dtype=str(v.dtype)))
        elif "variance" in v.path:  # a variance stays positive
            v.assign((np.abs(rng.normal(0.0, 0.5, shape)) + 0.5).astype(str(v.dtype)))
        else:
            v.assign(rng.normal(0.0, 0.5, shape).astype(str(v.dtype)))
    path = os.path.join(folder, "golden" + SUFFIX[fmt])
    model.save_weights(path) if fmt == "keras-weights" else model.save(path)
    np.save(os.path.join(folder, "outputs.npy"), keras.ops.convert_to_numpy(model(probe(model))))
    # Each optimizer variable by its own path, which names the variable it serves.
    np.savez(os.path.join(folder, "optimizer.npz"), **{
        v.path: keras.ops.convert_to_numpy(v) for v in getattr(optimizer, "variables", None) or []})


def load(spec, fmt, folder):
    import keras

    model = build(spec)
    out = {"load_error": None, "optimizer_skipped": False, "outputs_max_diff": None, "iterations": None,
           "optimizer_moved": []}
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        try:
            model.load_weights(os.path.join(folder, "golden" + SUFFIX[fmt]))
        except Exception as exc:
            out["load_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    out["optimizer_skipped"] = any("Skipping variable loading for optimizer" in str(w.message) for w in said)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        out["iterations"] = int(keras.ops.convert_to_numpy(optimizer.iterations))
        saved = np.load(os.path.join(folder, "optimizer.npz"))
        # A slot holding what was saved for another variable's slot: moved by position.
        by_value = {saved[k].tobytes(): k for k in saved.files if saved[k].ndim}
        out["optimizer_moved"] = sorted(
            f"{v.path} <- {by_value[got]}" for v in optimizer.variables
            if (got := keras.ops.convert_to_numpy(v).tobytes()) in by_value and by_value[got] != v.path)
    if out["load_error"] is None:
        saved = np.load(os.path.join(folder, "outputs.npy"))
        now = keras.ops.convert_to_numpy(model(probe(model)))
        out["outputs_max_diff"] = float(np.max(np.abs(now - saved))) if now.shape == saved.shape else float("inf")
    print(json.dumps(out))


def main(argv):
    if argv[0] in ("--save", "--load"):
        (save if argv[0] == "--save" else load)(*argv[1:])
        return
    save_spec, load_spec, fmt = argv
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run([sys.executable, __file__, "--save", save_spec, fmt, folder], check=True, env=env)
        done = subprocess.run([sys.executable, __file__, "--load", load_spec, fmt, folder], check=True, env=env,
                              capture_output=True, text=True)
        print(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main(sys.argv[1:])
