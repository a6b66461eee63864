"""Plain-Keras truth for resume checks: does training resumed in a fresh process equal not stopping?

    python tests/truth/resume.py FACTORY FORMAT [--save-freeze P,..] [--steps 3] [--resumes 2]

FACTORY is ``module:callable`` returning a compiled model with one input; FORMAT is
``keras-weights``, ``keras``, ``tf-checkpoint``, ``backup-and-restore`` (the callback saves at
the end of the first epoch; the resumed run is ``fit(epochs=2, callbacks=[BackupAndRestore(dir)])``,
which starts at the epoch the callback restores) or a user's format ``module:attr`` (its
``save``, then ``load`` and ``fit(epochs=2, initial_epoch=code.resume_epoch(model) or 0)``).
Only Keras, TensorFlow and NumPy: no pytest_ckpt import.  Several fresh processes:

1. the saving process builds the model, freezes the --save-freeze layers, trains ``steps``
   steps with ``fit`` on fixed batches, saves, then goes on without stopping for ``steps``
   more and records every model and optimizer variable after each step (the reference);
2. each of ``resumes`` loading processes builds the model as the factory returns it (compile,
   then load_weights: its optimizer is built by the first step), freezes the same layers,
   loads, trains the same ``steps`` batches with ``fit`` and records the same.

It prints one JSON line: whether each resumed run equals the reference after every step,
whether the resumed runs equal each other, and the first difference.
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


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("factory")
    p.add_argument("format", help="keras-weights, keras, tf-checkpoint, backup-and-restore or module:attr")
    p.add_argument("--save-freeze", default="")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--resumes", type=int, default=2)
    p.add_argument("--phase", choices=("save", "load"), help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def build(spec):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)()


def freeze(model, paths):
    for path in [p for p in paths.split(",") if p]:
        layer = model
        for part in path.split("/"):
            layer = layer.get_layer(part)
        layer.trainable = False


def batches(model, steps, seed=0):
    rng = np.random.default_rng(seed)
    shape = tuple(d or 1 for d in model.inputs[0].shape[1:])
    out = tuple(d or 1 for d in model.outputs[0].shape[1:])
    return [(rng.normal(size=(8,) + shape).astype("float32"), rng.normal(size=(8,) + out).astype("float32"))
            for _ in range(steps)]


def state(model):
    import keras

    values = {f"w:{v.path}": keras.ops.convert_to_numpy(v) for v in model.weights}
    if model.optimizer.built:
        values.update({f"o{i}:{v.path.split('/')[-1]}": keras.ops.convert_to_numpy(v)
                       for i, v in enumerate(model.optimizer.variables)})
    return values


def train(model, data, record, callbacks=(), epochs=1, initial_epoch=0):
    """``fit`` on ``data`` (repeated: an epoch it should not run shows as extra steps)."""
    import keras

    class After(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            record.append(state(self.model))

    def gen():
        while True:
            yield from data

    model.fit(gen(), steps_per_epoch=len(data), epochs=epochs, initial_epoch=initial_epoch, verbose=0,
              shuffle=False, callbacks=[*callbacks, After()])


def user_format(spec):
    from pathlib import Path

    module, attr = spec.split(":")
    found = getattr(importlib.import_module(module), attr)
    return (found() if isinstance(found, type) else found), Path


def checkpoint(fmt, directory):
    if fmt == "backup-and-restore":
        return directory
    return os.path.join(directory, {"keras-weights": "ckpt.weights.h5", "keras": "ckpt.keras"}.get(fmt, "ckpt"))


def save_or_load(model, fmt, path, save):
    if fmt == "tf-checkpoint":
        import tensorflow as tf

        ckpt = tf.train.Checkpoint(model=model)
        if save:
            ckpt.write(path)
        else:
            status = ckpt.read(path)
            status.assert_existing_objects_matched()
            status.expect_partial()
    elif save:
        (model.save if fmt == "keras" else model.save_weights)(path)
    else:
        model.load_weights(path)


def backup(directory):
    import keras

    return keras.callbacks.BackupAndRestore(directory, delete_checkpoint=False)


def phase(args):
    model = build(args.factory)
    freeze(model, args.save_freeze)
    data = batches(model, 2 * args.steps)
    path = checkpoint(args.format, args.dir)
    record = []
    by_epoch = args.format == "backup-and-restore" or (
        ":" in args.format and getattr(user_format(args.format)[0], "restores_epoch", False))
    if args.phase == "save":
        if args.format == "backup-and-restore":  # the callback saves at the end of the epoch
            train(model, data[:args.steps], [], callbacks=[backup(args.dir)])
        else:
            train(model, data[:args.steps], [])
        if ":" in args.format:
            code, Path = user_format(args.format)
            os.makedirs(path, exist_ok=True)
            code.save(model, Path(path))
        elif args.format != "backup-and-restore":
            save_or_load(model, args.format, path, save=True)
        rng = [v for v in model.variables if id(v) not in {id(w) for w in model.weights}]
        np.savez(os.path.join(args.dir, "rng.npz"), *[np.asarray(v.numpy()) for v in rng])
    elif by_epoch:  # the same fit call as the run that never stopped, resumed by the format
        if ":" in args.format:
            code, Path = user_format(args.format)
            code.load(model, Path(path))
            first = code.resume_epoch(model) or 0
        restore_rng(model, args.dir)
        # Each resumed run on its own copy: the callback saves again at the end of its epoch.
        own = tempfile.mkdtemp(prefix="resumed-", dir=args.dir)
        for name in ("latest.weights.h5", "training_metadata.json"):
            if os.path.exists(os.path.join(args.dir, name)):
                shutil.copy(os.path.join(args.dir, name), own)
        callbacks = [backup(own)] if args.format == "backup-and-restore" else []
        train(model, data[args.steps:], record, callbacks=callbacks, epochs=2,
              initial_epoch=0 if callbacks else first)
    elif ":" in args.format:
        code, Path = user_format(args.format)
        code.load(model, Path(path))
        restore_rng(model, args.dir)
    else:
        save_or_load(model, args.format, path, save=False)
        restore_rng(model, args.dir)
    if args.phase == "save" or not by_epoch:
        train(model, data[args.steps:], record)
    np.savez(args.out, **{f"{i}|{k}": v for i, step in enumerate(record) for k, v in step.items()})


def restore_rng(model, directory):
    rng = [v for v in model.variables if id(v) not in {id(w) for w in model.weights}]
    stored = np.load(os.path.join(directory, "rng.npz"))
    for v, key in zip(rng, sorted(stored.files, key=lambda k: int(k.split("_")[1]))):
        v.assign(stored[key])


def load_record(path):
    z = np.load(path)
    steps = {}
    for key in z.files:
        i, name = key.split("|", 1)
        steps.setdefault(int(i), {})[name] = z[key]
    return [steps[i] for i in sorted(steps)]


def first_difference(a, b):
    for step, (x, y) in enumerate(zip(a, b), 1):
        for key in sorted(set(x) | set(y)):
            if key not in x or key not in y or not np.array_equal(x[key], y[key]):
                return {"step": step, "variable": key}
    if len(a) != len(b):  # one trained more epochs than the other
        return {"step": min(len(a), len(b)) + 1, "variable": f"steps trained: {len(a)} vs {len(b)}"}
    return None


def main(argv):
    args = parse_args(argv)
    if args.phase:
        return phase(args)
    work = tempfile.mkdtemp(prefix="ckpt-resume-truth-")
    base = [sys.executable, os.path.abspath(__file__), args.factory, args.format,
            "--save-freeze", args.save_freeze, "--steps", str(args.steps), "--dir", work]
    runs = ["reference"] + [f"resumed{i}" for i in range(args.resumes)]
    for run in runs:
        phase_name = "save" if run == "reference" else "load"
        done = subprocess.run(base + ["--phase", phase_name, "--out", os.path.join(work, f"{run}.npz")],
                              capture_output=True, text=True)
        if done.returncode:
            print(json.dumps({"error": f"{run}: " + " | ".join(done.stderr.strip().splitlines()[-3:])}))
            return
    records = {run: load_record(os.path.join(work, f"{run}.npz")) for run in runs}
    resumed = runs[1:]
    print(json.dumps({
        "factory": args.factory, "format": args.format, "save_freeze": args.save_freeze,
        "equal_to_reference": {r: first_difference(records["reference"], records[r]) is None for r in resumed},
        "resumed_runs_agree": all(first_difference(records[resumed[0]], records[r]) is None for r in resumed),
        "first_difference": first_difference(records["reference"], records[resumed[0]]),
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
