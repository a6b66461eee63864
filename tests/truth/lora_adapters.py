"""Plain-Keras truth for keras-hub's adapter files: fine-tune in one process, load in another.

    python tests/truth/lora_adapters.py FACTORY [--steps N] [--scale S] [--keep]

FACTORY is ``module:callable`` returning a keras-hub Backbone (or a Task) with LoRA enabled,
as its fine-tuning code leaves it.  Prints ONE JSON line.  Nothing here asserts.

Two fresh interpreters with different hash seeds, as users run:

* save: build the model; record every variable (``base.npz``); fine-tune it for real with
  ``fit`` under the flags the factory set: Adam, mean squared error on the first output,
  random data (features times ``--scale``), through the model's own ``fit`` when its class
  has its own ``train_step`` or ``compute_loss`` (or the like), else through a model wrapping
  its first output; record every
  variable again (``trained.npz``) and the outputs on a fixed probe; ``save_lora_weights``.
* load: build the model; give the backbone's variables their base values by path (what
  ``from_preset`` of the same backbone preset gives; a Task's head is not in it); record
  what every variable holds; ``load_lora_weights``; classify every variable by path:
  ``survived`` (its fine-tuned value), ``not_loaded`` (what it held before the load),
  ``swapped:<path>`` (another variable's fine-tuned value) or ``changed``; compare the
  outputs on the same probe.

Only Keras, keras-hub and NumPy: no pytest_ckpt import.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

SAVE_HASH_SEED, LOAD_HASH_SEED = "1", "2"  # two set orders of tests.cases_hub's six block names


def build(factory):
    module, _, attr = factory.partition(":")
    return getattr(importlib.import_module(module), attr)()


def probe(model, seed=0, scale=1.0):
    """One batch for every input of the model, in ``model.inputs`` order."""
    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = tuple(4 if d is None else int(d) for d in tensor.shape)
        dtype = str(tensor.dtype)
        if "mask" in tensor.name:  # a row masked out entirely would compute NaN
            arrays.append(np.ones(shape, dtype))
        elif "int" in dtype:
            arrays.append(rng.integers(0, 2, shape).astype(dtype))  # in range of any vocabulary
        elif "bool" in dtype:
            arrays.append(np.ones(shape, bool))
        else:
            arrays.append((rng.normal(size=shape) * scale).astype(dtype))
    return arrays


def values(model):
    return {v.path: np.array(v.numpy() if hasattr(v, "numpy") else v) for v in model.weights}


def outputs(model, x):
    import keras

    result = keras.Model(model.inputs, model.outputs)(x, training=False)
    return [np.asarray(keras.ops.convert_to_numpy(r)) for r in (result if isinstance(result, list) else [result])]


def save_phase(args):
    import keras

    model = build(args.factory)
    x = probe(model, scale=args.scale)
    np.savez(os.path.join(args.dir, "base.npz"), **values(model))
    hooks = ("train_step", "compute_loss", "stateless_compute_loss", "compute_metrics")
    own_step = any(hook in vars(c) for hook in hooks for c in type(model).__mro__
                   if not c.__module__.startswith("keras"))
    trainer = model if own_step else keras.Model(model.inputs, model.outputs[0])
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    first = keras.Model(model.inputs, model.outputs[0])(x)
    target = np.random.default_rng(1).normal(size=tuple(int(d) for d in first.shape)).astype("float32")
    trainer.fit(x, target, batch_size=len(target), epochs=args.steps, verbose=0)
    np.savez(os.path.join(args.dir, "trained.npz"), **values(model))
    np.savez(os.path.join(args.dir, "outputs.npz"), *outputs(model, x))
    owner = model if hasattr(model, "save_lora_weights") else model.backbone
    save_error = None
    try:
        owner.save_lora_weights(os.path.join(args.dir, "adapters.lora.h5"))
    except Exception as exc:
        save_error = f"{type(exc).__name__}: {exc}"[:500]
    print(json.dumps({"order": [layer.name for layer in owner.layers], "save_error": save_error}))


def classify(path, held, before, trained):
    if np.array_equal(held, trained[path]):
        return "survived"
    if np.array_equal(held, before[path]):  # first: untrained variables share values (zero biases)
        return "not_loaded"
    for other in trained.files:
        if other != path and trained[other].shape == held.shape and np.array_equal(held, trained[other]):
            return f"swapped:{other}"
    return "changed"


def load_phase(args):
    model = build(args.factory)
    base, trained = np.load(os.path.join(args.dir, "base.npz")), np.load(os.path.join(args.dir, "trained.npz"))
    owner = model if hasattr(model, "save_lora_weights") else model.backbone
    for v in owner.weights:
        v.assign(base[v.path])
    before = values(model)
    load_error = None
    try:
        owner.load_lora_weights(os.path.join(args.dir, "adapters.lora.h5"))
    except Exception as exc:  # reported, and the state it left is still classified
        load_error = f"{type(exc).__name__}: {exc}"[:500]
    verdicts = {path: classify(path, held, before, trained) for path, held in values(model).items()}
    saved = np.load(os.path.join(args.dir, "outputs.npz"))
    got = outputs(model, probe(model))
    diff = max(float(np.max(np.abs(a - saved[f"arr_{i}"]))) for i, a in enumerate(got))
    print(json.dumps({"verdicts": verdicts, "load_error": load_error, "outputs_max_diff": diff,
                      "changed_by_training": sorted(p for p in trained.files
                                                    if not np.array_equal(trained[p], base[p])),
                      "order": [layer.name for layer in owner.layers]}))


def child(args, phase, hash_seed):
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    done = subprocess.run([sys.executable, __file__, args.factory, "--phase", phase, "--dir", args.dir,
                           "--steps", str(args.steps), "--scale", str(args.scale)],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{phase} process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("factory", help="module:callable")
    p.add_argument("--steps", type=int, default=2, help="fine-tuning steps (one batch each)")
    p.add_argument("--scale", type=float, default=1.0, help="scale of the fine-tuning data's features")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--phase", choices=("save", "load"), help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase == "save":
        return save_phase(args)
    if args.phase == "load":
        return load_phase(args)
    args.dir = tempfile.mkdtemp(prefix="lora-truth")
    try:
        saved = child(args, "save", SAVE_HASH_SEED)
        if saved["save_error"]:
            print(json.dumps({"factory": args.factory, "save_error": saved["save_error"]}))
            return None
        loaded = child(args, "load", LOAD_HASH_SEED)
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    counts: dict[str, int] = {}
    for verdict in loaded["verdicts"].values():
        key = verdict.split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    print(json.dumps({"factory": args.factory, "save_error": None, "counts": counts, **loaded,
                      "orders_differ": saved["order"] != loaded["order"],
                      "dir": args.dir if args.keep else None}))


if __name__ == "__main__":
    main()
