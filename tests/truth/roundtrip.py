"""Plain-Keras truth for one checkpoint round trip: save in one fresh process, load in another.

    python tests/truth/roundtrip.py FACTORY FORMAT [--save-freeze P1,P2] [--load-freeze P3]
                                    [--compile] [--saves N] [--seed S] [--keep]

FACTORY is ``module:callable`` (Keras 3 or tf-keras).  Freeze paths are layer-name paths from
the root (``block/dense``; ``block`` freezes the container itself).  Prints ONE JSON line with
what Keras did.  Nothing here asserts: the script reports, the README records.

Two passes, four child processes (each a fresh interpreter, as users run):

* values pass: every variable gets distinct random values, is saved; a fresh build starts from
  other values (the negation), loads, and each variable is classified ``survived``,
  ``swapped:<key>``, ``not_loaded`` or ``changed``;
* outputs pass: the factory's own state is saved; a fresh build (its own factory state) loads it;
  outputs on a fixed probe are compared.  This catches state outside variables (adapt() caches,
  lookup vocabularies) that differs between two builds.

Only Keras / TensorFlow / NumPy / h5py: no pytest_ckpt import.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np

FORMATS = ("keras-weights", "keras-sharded", "keras", "keras-model", "h5", "h5-by-name",
           "tf-checkpoint", "orbax", "orbax-model", "state-tree", "keras-hub-preset")
# Formats whose load builds a new model (keras.saving.load_model).
NEW_MODEL = ("keras-model", "orbax-model", "keras-hub-preset")
PROBE_BATCH = 64  # enough samples to land between bin boundaries that moved


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("factory", help="module:callable")
    p.add_argument("format", help=f"one of {', '.join(FORMATS)}, or a user's format as module:attr "
                                  "(an object or class with save(model, directory) and load(model, directory))")
    p.add_argument("--save-freeze", default="", help="comma-separated layer paths frozen at save")
    p.add_argument("--load-freeze", default="", help="comma-separated layer paths frozen at load")
    p.add_argument("--compile", action="store_true", help="also round-trip Adam's state")
    p.add_argument("--build-before-load", action="store_true",
                   help="build the optimizer before load_weights (not what compile(); load_weights() "
                        "does: by default the loading optimizer meets the load as the factory left it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--saves", type=int, default=1,
                   help="save this many times in the saving process (the last file is loaded)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    # Internal: which child phase to run, and where.
    p.add_argument("--phase", choices=("save", "load"), help=argparse.SUPPRESS)
    p.add_argument("--fill", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def paths(text):
    return [p for p in text.split(",") if p]


# --------------------------------------------------------------------------- model helpers


def framework_of(model):
    return "tf-keras" if type(model).__module__.startswith("tf_keras") else "keras3"


def keras_module(framework):
    return importlib.import_module("tf_keras" if framework == "tf-keras" else "keras")


def short_name(v):
    # Keras 3: "kernel"; tf-keras: "dense/kernel:0".
    return str(v.name).split(":")[0].split("/")[-1]


def own_variables(layer):
    if hasattr(layer, "_trainable_variables"):  # Keras 3
        return list(layer._trainable_variables) + list(layer._non_trainable_variables)
    return list(layer._trainable_weights) + list(layer._non_trainable_weights)  # tf-keras


def sublayers(layer):
    if hasattr(layer, "_trainable_variables"):  # Keras 3: in the order Layer.weights walks them
        return list(layer._layers)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def named_variables(model):
    """Every variable of ``model.weights`` keyed by its layer-name path from the root.

    Keras 3's ``variable.path`` records where a layer was *built* (a nested block built on its own
    gets ``block/dense/kernel``, its siblings ``sequential/dense_2/kernel``) and load_model
    rebuilds with other paths, so it is not a stable key; the layer-name path is, between two
    builds by the same factory in fresh processes.  It does not depend on trainable flags.
    """
    keyed, seen = {}, set()

    def visit(layer, prefix):
        if id(layer) in seen:  # a shared layer: its variables once, under its first path
            return
        seen.add(id(layer))
        for v in own_variables(layer):
            key = prefix + short_name(v)
            while key in keyed:
                key += "'"
            keyed[key] = v
        for child in sublayers(layer):
            visit(child, f"{prefix}{child.name}/")

    visit(model, "")
    wanted = {id(v) for v in model.weights}
    keyed = {k: v for k, v in keyed.items() if id(v) in wanted}
    found = {id(v) for v in keyed.values()}
    for v in model.weights:  # anything the walk missed, under Keras' own name
        if id(v) not in found:
            keyed["?" + str(getattr(v, "path", v.name))] = v
    return keyed


def find_layer(model, path):
    if path == "<model>":  # how pytest-ckpt's reports name the root model itself
        return model
    layer = model
    for part in path.split("/"):
        matches = [c for c in sublayers(layer) if c.name == part]
        if not matches:
            raise KeyError(f"no layer {part!r} in {layer.name!r} (path {path!r}); children: "
                           f"{[c.name for c in sublayers(layer)]}")
        layer = matches[0]
    return layer


def apply_freeze(model, freeze):
    for path in freeze:
        find_layer(model, path).trainable = False  # exactly that layer; Keras propagates


def optimizer_variables(model, model_vars):
    """Optimizer variables keyed by the model variable each slot serves, never by position.

    Keras 3 names a slot ``<variable.path with / as _>_<slot>`` (e.g. ``block_a_kernel_momentum``);
    tf-keras names it ``<slot>/<variable name>``.
    """
    opt = model.optimizer
    opt_vars = opt.variables() if callable(opt.variables) else opt.variables
    flat = {str(getattr(v, "path", "")).replace("/", "_"): k for k, v in model_vars.items()}
    tfname = {str(v.name).split(":")[0]: k for k, v in model_vars.items()}
    keyed, unowned = {}, 0
    for v in opt_vars:
        name = str(v.name).split(":")[0]
        key = None
        owners = [f for f in flat if f and name.startswith(f + "_")]
        if owners:  # Keras 3; longest prefix wins
            f = max(owners, key=len)
            key = f"{flat[f]}:{name[len(f) + 1:]}"
        else:  # tf-keras
            for n, k in tfname.items():
                if name.endswith("/" + n):
                    key = f"{k}:{name[: -len(n) - 1].split('/')[-1]}"
        if key is None:
            # Serving no model variable (iterations, the learning rate, Nadam's product): Keras
            # stores these by position, and their names carry per-process counters.
            key = f"#{unowned}"
            unowned += 1
        while key in keyed:
            key += "'"
        keyed[key] = v
    return keyed


def dtype_name(v):
    return getattr(v.dtype, "name", str(v.dtype))


def read(v):
    """A variable's value as float64 / int64 / bool (bfloat16 has no NumPy dtype)."""
    a = np.asarray(v.numpy())
    kind = dtype_name(v)
    if "float" in kind:
        return a.astype(np.float64)
    if "int" in kind:
        return a.astype(np.int64)
    return a


def write(v, value):
    if framework_of_variable(v) == "tf-keras":
        import tensorflow as tf

        v.assign(tf.cast(tf.constant(value), dtype_name(v)))
    else:  # Keras 3 on any backend
        import keras

        v.assign(keras.ops.cast(value, dtype_name(v)))


def framework_of_variable(v):
    return "tf-keras" if type(v).__module__.startswith("tensorflow") else "keras3"


def random_value(v, rng, used):
    """Distinct values: floats normal, ints positive in range (never reused), bools random bits."""
    kind, shape = dtype_name(v), tuple(v.shape)
    if "float" in kind:
        return rng.normal(size=shape)
    if "int" in kind:
        high = min(np.iinfo(np.dtype(kind)).max, 2**31 - 1)
        for _ in range(1000):
            value = rng.integers(1, high, size=shape, endpoint=True)
            if value.tobytes() not in used:
                used.add(value.tobytes())
                return value
        return value
    if kind == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    return None  # strings, resources: left alone


def fill(keyed, rng, used):
    """Assign random values; return what the variables hold afterwards (after any dtype cast)."""
    saved = {}
    for key, v in keyed.items():
        value = random_value(v, rng, used)
        if value is not None:
            write(v, value)
            saved[key] = read(v)
    return saved


def different_from_saved(v, saved_value, rng):
    """A starting value distinct from everything saved: the negation (0 for unsigned ints)."""
    kind = dtype_name(v)
    if saved_value is None or saved_value.shape != tuple(v.shape):
        # Nothing saved under this key: any positive random value, negated below, will do.
        saved_value = np.abs(random_value(v, rng, set()))
    if kind == "bool":
        return ~saved_value.astype(bool)
    if kind.startswith("uint"):
        return np.zeros(v.shape)
    return -saved_value


def classify(now, saved, before, created_after=False):
    """survived / swapped:<key> / not_loaded / changed, for every loading-side variable.

    ``created_after``: variables without a pre-load value did not exist when the load ran
    (slots of an optimizer built afterwards, as the first training step builds it): holding
    no saved value, they were never restored (not_loaded).
    """
    by_value = {}
    for k, a in saved.items():
        by_value.setdefault((a.shape, a.dtype.str, a.tobytes()), k)
    verdicts = {}
    for key, a in now.items():
        if key in saved and np.array_equal(a, saved[key]):
            verdicts[key] = "survived"
        elif key in before and np.array_equal(a, before[key]):
            verdicts[key] = "not_loaded"
        elif (a.shape, a.dtype.str, a.tobytes()) in by_value:
            verdicts[key] = "swapped:" + by_value[(a.shape, a.dtype.str, a.tobytes())]
        elif created_after and key not in before:
            verdicts[key] = "not_loaded"
        else:
            verdicts[key] = "changed"
    for key in saved:
        if key not in now:
            verdicts[key] = "missing_in_loading_model"
    return verdicts


def counts(verdicts):
    out = {}
    for v in verdicts.values():
        kind = v.split(":")[0]
        out[kind] = out.get(kind, 0) + 1
    return out


def model_inputs(model):
    """(name, shape, dtype name) per input; a subclassed model built with build(shape) has one."""
    inputs = getattr(model, "inputs", None)
    if inputs:
        return [(str(t.name), list(t.shape), getattr(t.dtype, "name", str(t.dtype))) for t in inputs]
    shape = model.get_build_config()["input_shape"]
    return [("input", list(shape), "float32")]


def input_names(model):
    """Input names in the order of model.inputs (a dict model's keys are its inputs' names)."""
    return [name for name, _, _ in model_inputs(model)]


def probe_inputs(model, rng):
    """Seeded normal floats, small ints, or tokens from the model's own StringLookup vocabulary."""
    vocab = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if hasattr(layer, "get_vocabulary"):
            oov = getattr(layer, "oov_token", None)
            vocab += [str(t.decode() if isinstance(t, bytes) else t)
                      for t in layer.get_vocabulary() if t != oov]
    vocab = vocab or ["a", "b", "the", "zzz"]
    probes = []
    for _, full, kind in model_inputs(model):
        shape = [PROBE_BATCH] + [d if d is not None else 4 for d in full[1:]]
        if "string" in kind:
            probes.append(np.array([vocab[i % len(vocab)] for i in range(int(np.prod(shape)))])
                          .reshape(shape))
        elif "int" in kind:
            probes.append(rng.integers(0, 5, size=shape).astype(kind))
        else:
            probes.append(rng.normal(size=shape).astype("float32"))
    return probes


def outputs(model, probes, names=None):
    """The model's outputs; ``probes`` keyed by input name when ``names`` (the saving model's
    input names) are given: another process may have built its inputs in another order."""
    if names is not None:
        by_name = dict(zip(names, probes))
        mine = input_names(model)
        if set(mine) == set(by_name):
            probes = [by_name[n] for n in mine]
            try:
                structure = model.input
            except (AttributeError, ValueError):
                structure = None
            if isinstance(structure, dict):
                probes = [{k: by_name[k] for k in structure}]
    y = model(probes if len(probes) > 1 else probes[0], training=False)
    flat = []

    def walk(value):
        if isinstance(value, dict):
            for k in sorted(value):
                walk(value[k])
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        else:
            flat.append(value)

    walk(y)
    return [to_numpy(t).astype(np.float64) for t in flat]


def to_numpy(t):
    if hasattr(t, "detach"):  # PyTorch
        t = t.detach().cpu()
    return np.asarray(t.numpy() if hasattr(t, "numpy") else t)


def compile_model(model, framework, build=True):
    if getattr(model, "optimizer", None) is None:  # the factory may compile its own
        k = keras_module(framework)
        model.compile(optimizer=k.optimizers.Adam(), loss="mse")
    # Slots exist only for what is trainable *now*, under this process' freeze (training
    # builds them at its first step), unless the factory built its optimizer already.
    if build and not getattr(model.optimizer, "built", False):
        model.optimizer.build(model.trainable_variables)


# --------------------------------------------------------------------------- formats


def user_format(fmt):
    """A user's format ``module:attr``: the object, or an instance of the class."""
    module, _, attr = fmt.partition(":")
    found = importlib.import_module(module)
    for part in attr.split("."):
        found = getattr(found, part)
    return found() if isinstance(found, type) else found


def checkpoint_path(fmt, d, framework):
    if ":" in fmt:  # a user's format owns a folder
        return os.path.join(d, "ckpt")
    suffix = {"keras-weights": ".weights.h5", "keras-sharded": ".weights.json", "keras": ".keras",
              "keras-model": ".keras", "h5": ".h5", "h5-by-name": ".h5", "tf-checkpoint": "",
              "orbax": "", "orbax-model": "", "state-tree": ".npz", "keras-hub-preset": ""}
    return os.path.join(d, "ckpt" + suffix[fmt])


def save(model, fmt, path, framework):
    if ":" in fmt:
        from pathlib import Path

        os.makedirs(path, exist_ok=True)
        user_format(fmt).save(model, Path(path))
    elif fmt == "keras-weights":
        model.save_weights(path)
    elif fmt == "keras-sharded":
        sizes = [int(np.prod(v.shape)) * np.dtype(np.asarray(v.numpy()).dtype).itemsize
                 for v in model.weights]
        # A shard must hold the largest variable; beyond that aim for three shards.
        model.save_weights(path, max_shard_size=max(max(sizes), sum(sizes) / 3) / 1024**3)
    elif fmt in ("keras", "keras-model"):
        model.save(path)
    elif fmt in ("h5", "h5-by-name"):
        # Keras 3: the whole model in legacy HDF5; tf-keras: weights only in HDF5.
        (model.save_weights if framework == "tf-keras" else model.save)(path)
    elif fmt in ("orbax", "orbax-model"):
        import keras

        # As fit() drives the callback: one step at the end of an epoch, closed at the end.
        cb = keras.callbacks.OrbaxCheckpoint(directory=path, save_on_background=False)
        cb.set_model(model)
        cb.on_epoch_end(0)
        cb.on_train_end()
    elif fmt == "keras-hub-preset":
        model.save_to_preset(path)
    elif fmt == "state-tree":
        # A user's own checkpointer: the state tree's leaves, keyed by their path in the tree.
        leaves = {}

        def flatten(node, prefix):
            for k, v in node.items():
                if isinstance(v, dict):
                    flatten(v, prefix + k + "|")
                else:
                    leaves[prefix + k] = np.asarray(v)

        flatten(model.get_state_tree(value_format="numpy_array"), "")
        with open(path, "wb") as f:
            np.savez(f, **leaves)
    elif fmt == "tf-checkpoint":
        if framework == "tf-keras":
            model.save_weights(path, save_format="tf")
        else:
            import tensorflow as tf

            tf.train.Checkpoint(model=model).write(path)


def load(model, fmt, path, framework):
    """Load into ``model``; returns the model that holds the result (load_model makes a new one)."""
    if ":" in fmt:
        from pathlib import Path

        code = user_format(fmt)
        loaded = code.load(model, Path(path))
        return loaded if getattr(code, "loads_new_model", False) and loaded is not None else model
    if fmt == "keras-hub-preset":  # as its users load one: the model's class, from the folder
        return type(model).from_preset(path)
    if fmt in NEW_MODEL:
        return keras_module(framework).saving.load_model(path, safe_mode=True)
    if fmt == "state-tree":
        tree = {}
        with np.load(path) as z:
            for name in z.files:
                *groups, leaf = name.split("|")
                node = tree
                for g in groups:
                    node = node.setdefault(g, {})
                node[leaf] = z[name]
        model.set_state_tree(tree)
        return model
    if fmt == "h5-by-name":
        model.load_weights(path, by_name=True)
    elif fmt == "tf-checkpoint" and framework == "keras3":
        import tensorflow as tf

        # Values of objects created later (an optimizer built at the first step) are restored then.
        tf.train.Checkpoint(model=model).read(path).assert_existing_objects_matched()
    elif fmt == "tf-checkpoint":
        model.load_weights(path).assert_existing_objects_matched()
    else:
        model.load_weights(path)
    return model


# --------------------------------------------------------------------------- child phases


class Captured:
    """Python warnings and log records (Keras uses both) emitted inside the block."""

    def __enter__(self):
        self.messages = []
        self._w = warnings.catch_warnings(record=True)
        self.records = self._w.__enter__()
        warnings.simplefilter("always")
        self._handler = logging.Handler()
        self._handler.emit = lambda r: self.messages.append(r.getMessage()[:300])
        logging.getLogger().addHandler(self._handler)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self._handler)
        self.messages += [str(w.message)[:300] for w in self.records
                          if not issubclass(w.category, DeprecationWarning)]
        self._w.__exit__(*exc)


def error_text(e):
    return f"{type(e).__name__}: {str(e)[:400]}"


def build(args):
    module, name = args.factory.split(":")
    model = getattr(importlib.import_module(module), name)()
    return model, framework_of(model)


def phase_save(args):
    rng = np.random.default_rng(args.seed)
    model, framework = build(args)
    apply_freeze(model, paths(args.save_freeze))
    keyed = named_variables(model)
    opt_keyed = {}
    if args.compile:
        compile_model(model, framework)
        opt_keyed = optimizer_variables(model, keyed)
    values, opt_values = {}, {}
    if args.fill:
        used = set()
        values = fill(keyed, rng, used)
        opt_values = fill(opt_keyed, rng, used)
    else:
        values = {k: read(v) for k, v in keyed.items()}
    probes = probe_inputs(model, np.random.default_rng(args.seed + 1))
    meta = {"framework": framework, "save_error": None, "warnings": []}
    path = checkpoint_path(args.format, args.dir, framework)
    with Captured() as cap:
        try:
            for _ in range(args.saves):
                save(model, args.format, path, framework)
        except Exception as e:  # reported, not judged
            meta["save_error"] = error_text(e)
    meta["warnings"] = cap.messages
    meta["shards"] = sum(f.endswith(".h5") for f in os.listdir(args.dir)) \
        if args.format == "keras-sharded" else None
    meta["positions"] = {str(i): k for i, v in enumerate(model.weights)
                         for k, kv in keyed.items() if kv is v}
    try:
        meta_out = outputs(model, probes, input_names(model))
    except Exception as e:
        meta_out, meta["outputs_error"] = [], error_text(e)
    by_pos = {f"pos:{i}": values[k] for i, k in meta["positions"].items() if k in values}
    np.savez(os.path.join(args.dir, "saved.npz"),
             **{f"var:{k}": a for k, a in values.items()},
             **by_pos,
             **{f"opt:{k}": a for k, a in opt_values.items()})
    np.savez(os.path.join(args.dir, "probe.npz"), *probes)
    meta["input_names"] = input_names(model)
    np.savez(os.path.join(args.dir, "outputs_saved.npz"), *meta_out)
    with open(os.path.join(args.dir, "save.json"), "w") as f:
        json.dump(meta, f)


def phase_load(args):
    rng = np.random.default_rng(args.seed + 2)
    with open(os.path.join(args.dir, "save.json")) as f:
        framework = json.load(f)["framework"]
    z = np.load(os.path.join(args.dir, "saved.npz"))
    saved = {k[4:]: z[k] for k in z.files if k.startswith("var:")}
    opt_saved = {k[4:]: z[k] for k in z.files if k.startswith("opt:")}
    probe_file = np.load(os.path.join(args.dir, "probe.npz"))
    probes = [probe_file[k] for k in sorted(probe_file.files, key=lambda s: int(s.split("_")[1]))]
    with open(os.path.join(args.dir, "save.json")) as f:
        names = json.load(f).get("input_names")
    result = {"load_error": None, "note": None}
    if args.format in NEW_MODEL:
        # load_model rebuilds from the saved config (trainable flags included): no factory build,
        # no load freeze, and no pre-load values to tell "not_loaded" from "changed".
        importlib.import_module(args.factory.split(":")[0])  # as users import their own code
        model, before, opt_before = None, {}, {}
        if args.format == "keras-hub-preset":  # only its class is used: from_preset makes the model
            model = build(args)[0]
        result["note"] = "keras-model: load freeze not applied; not_loaded shows as changed"
    else:
        model, framework = build(args)
        apply_freeze(model, paths(args.load_freeze))
        keyed = named_variables(model)
        opt_keyed = {}
        if args.compile:
            compile_model(model, framework, build=args.build_before_load)
            opt_keyed = optimizer_variables(model, keyed)  # unbuilt: iterations and the rate only
        before, opt_before = {}, {}
        if args.fill:
            for group, prev, vals in ((keyed, before, saved), (opt_keyed, opt_before, opt_saved)):
                for k, v in group.items():
                    if random_value(v, rng, set()) is not None:
                        write(v, different_from_saved(v, vals.get(k), rng))
                        prev[k] = read(v)
    path = checkpoint_path(args.format, args.dir, framework)
    with Captured() as cap:
        try:
            model = load(model, args.format, path, framework)
        except Exception as e:  # reported; a partial load is still classified below
            result["load_error"] = error_text(e)
    result["warnings"] = cap.messages
    if model is None:  # load_model failed: nothing to look at
        result.update(variables={}, optimizer={}, outputs=None)
    else:
        keyed = named_variables(model)
        now = {k: read(v) for k, v in keyed.items() if k in saved or k in before}
        result["variables"] = classify(now, saved, before)
        result["optimizer"] = {}
        if args.compile and getattr(model, "optimizer", None) is not None:
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)  # as the first training step does
            opt_now = {k: read(v) for k, v in optimizer_variables(model, keyed).items()}
            result["optimizer"] = classify(opt_now, opt_saved, opt_before,
                                           created_after=args.format not in NEW_MODEL)
        try:
            result["outputs"] = [a.tolist() for a in outputs(model, probes, names)]
        except Exception as e:
            result["outputs"], result["outputs_error"] = None, error_text(e)
    with open(os.path.join(args.dir, "load.json"), "w") as f:
        json.dump(result, f)


# --------------------------------------------------------------------------- parent


def run_child(argv, phase, d, fill):
    cmd = [sys.executable, os.path.abspath(__file__), *argv, "--phase", phase, "--dir", d]
    cmd += ["--fill"] if fill else []
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    out = os.path.join(d, f"{phase}.json")
    if not os.path.exists(out):
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"crash": f"{phase} child exited {proc.returncode}: {tail[-600:]}"}
    with open(out) as f:
        return json.load(f)


def max_diff(a, b):
    if a is None or b is None or len(a) != len(b):
        return None
    if any(np.shape(x) != np.shape(y) for x, y in zip(a, b)):
        return "shape mismatch"
    return float(max((np.max(np.abs(np.asarray(x) - np.asarray(y))) for x, y in zip(a, b)),
                     default=0.0))


def main(argv):
    args = parse_args(argv)
    if args.phase == "save":
        return phase_save(args)
    if args.phase == "load":
        return phase_load(args)
    work = tempfile.mkdtemp(prefix="ckpt-truth-")
    # The project's known-bad cases that vary between builds read it: the load child's
    # build differs from the save child's as a second build in one process would.
    os.environ["CASES_BUILD_MEMORY"] = os.path.join(work, "builds.json")
    report = {"factory": args.factory, "format": args.format,
              "save_freeze": paths(args.save_freeze), "load_freeze": paths(args.load_freeze),
              "compile": args.compile}
    # Values pass: distinct random values in every variable and optimizer slot.
    d = os.path.join(work, "values")
    os.makedirs(d)
    saved = run_child(argv, "save", d, fill=True)
    loaded = run_child(argv, "load", d, fill=True) if not saved.get("save_error") and \
        "crash" not in saved else {}
    report.update(framework=saved.get("framework"),
                  save_error=saved.get("save_error") or saved.get("crash"),
                  load_error=loaded.get("load_error") or loaded.get("crash"))
    report["counts"] = counts(loaded.get("variables", {}))
    report["optimizer_counts"] = counts(loaded.get("optimizer", {}))
    report["variables"] = loaded.get("variables", {})
    report["optimizer"] = loaded.get("optimizer", {})
    report["warnings"] = [f"save: {m}" for m in dict.fromkeys(saved.get("warnings", []))] + \
        [f"load: {m}" for m in dict.fromkeys(loaded.get("warnings", []))]
    if saved.get("shards") is not None:
        report["shards"] = saved["shards"]
    if loaded.get("note"):
        report["note"] = loaded["note"]
    # Outputs pass: the factory's own state, saved and loaded into a fresh build.
    d = os.path.join(work, "outputs")
    os.makedirs(d)
    plain_saved = run_child(argv, "save", d, fill=False)
    plain_loaded = run_child(argv, "load", d, fill=False) if not plain_saved.get("save_error") \
        and "crash" not in plain_saved else {}
    reference = None
    if os.path.exists(os.path.join(d, "outputs_saved.npz")):
        z = np.load(os.path.join(d, "outputs_saved.npz"))
        reference = [z[k] for k in sorted(z.files, key=lambda s: int(s.split("_")[1]))]
    report["outputs_max_diff"] = max_diff(reference, plain_loaded.get("outputs"))
    problems = [plain_saved.get("save_error"), plain_saved.get("crash"),
                plain_saved.get("outputs_error"), plain_loaded.get("load_error"),
                plain_loaded.get("crash"), plain_loaded.get("outputs_error")]
    if any(problems):
        report["outputs_pass_errors"] = [p for p in problems if p]
    if args.keep:
        report["workdir"] = work
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
