"""The checkpoint inspector (``pytest-ckpt inspect`` / ``diff``) on files written by real Keras.

HDF5-based files are read in-process through ``cli.main`` (which forks its reading child);
anything that imports TensorFlow runs in one subprocess, so that TF never loads into this one.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import pytest_ckpt
from pytest_ckpt.framework.detection import configured_backend
from pytest_ckpt.inspect.cli import main

ROOT = str(Path(pytest_ckpt.__file__).parents[1])
needs_tf = pytest.mark.skipif(configured_backend() != "tensorflow",
                              reason="TensorFlow checkpoints are written and read with TensorFlow")

KERAS_FILES = """
import os
import keras
import numpy as np
from pytest_ckpt import models

m = models.swap_prone_nested()
m.save_weights("a.weights.h5")
m.save("legacy.h5")
m.save("m.keras")
os.mkdir("sharded")
m.save_weights("sharded/s.weights.json", max_shard_size=1e-7)
if keras.backend.backend() == "tensorflow":  # TF checkpoints exist only there
    import tensorflow as tf

    tf.train.Checkpoint(model=m).write("tf/ckpt")
    tf.train.Checkpoint(model=m).write("sm/variables/variables")  # a SavedModel's variables/ layout
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=m), "managed", max_to_keep=3)
    manager.save()
    manager.save()
models.swap_prone_nested().save_weights("b.weights.h5")

nested = models.classic_nested()
nested.save("unfrozen.h5")
nested.save("unfrozen_again.h5")
for layer in nested.layers[0].layers[1:4]:  # conv1_conv, conv1_bn, conv1_relu of the nested base
    layer.trainable = False
nested.save("frozen.h5")

keras.Sequential([keras.Input((2,))] + [keras.layers.Dense(2) for _ in range(12)]).save_weights(
    "many.weights.h5")

# Over 64 KiB of layer names: the legacy saver splits them into layer_names0, layer_names1, ...
inputs = x = keras.Input((1,))
for i in range(300):
    x = keras.layers.Dense(1, name=f"layer_{i:03d}_" + "x" * 240)(x)
keras.Model(inputs, x).save("chunked.h5")

# Trained with Adam: legacy files keep its slots under optimizer_weights, Keras 3 files under
# optimizer/vars.
keras.backend.clear_session()  # the layer names the tests expect, without _4, _21 suffixes
trained = models.compiled_swap_prone_nested()
trained.fit(np.ones((4, 4)), np.zeros((4, 2)), epochs=1, verbose=0)
trained.save("trained.h5")
trained.save_weights("trained.weights.h5")
trained.save("trained.keras")
"""

# Runs cli.main once per argv list in one process; TF, once imported, stays for the next calls.
BATCH = """
import contextlib, io, json, sys
from pytest_ckpt.inspect import cli
results = []
for argv in json.loads(sys.stdin.read()):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    results.append({"rc": rc, "out": out.getvalue(), "err": err.getvalue(),
                    "tf_loaded": "tensorflow" in sys.modules})
with open(sys.argv[1], "w") as f:
    json.dump(results, f)
"""


def python(cwd, code, *args, stdin="", **env):
    """``python -c code args...`` importing this checkout's pytest_ckpt; ``code=None``: ``-m``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
           **env}
    command = ["-m", "pytest_ckpt"] if code is None else ["-c", code]
    return subprocess.run([sys.executable, *command, *args], cwd=cwd, input=stdin, env=env,
                          capture_output=True, text=True)


def batch(cwd, calls, prelude="", **env):
    out = Path(cwd) / "batch-results.json"
    done = python(cwd, prelude + BATCH, str(out), stdin=json.dumps(calls), **env)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    done = python(root, KERAS_FILES)
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def work(saved, tmp_path, monkeypatch):
    """A private copy of the saved files, as the current directory."""
    shutil.copytree(saved, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTEST_CKPT_STALL_SECONDS", "3")
    return tmp_path


def cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_error(rc, err, path, message=""):
    assert rc == 2, err
    assert err.startswith(f"error: {path}: {message}"), err
    assert err.count("\n") == 1 and "Traceback" not in err and "internal error" not in err, err


# --- every format -----------------------------------------------------------------------------


@pytest.mark.parametrize("name, fmt", [
    ("a.weights.h5", "keras-weights"), ("legacy.h5", "h5"), ("m.keras", "keras"),
    ("sharded/s.weights.json", "keras-sharded"), ("sharded", "keras-sharded"),
])
def test_inspect_reads_every_hdf5_format(work, capsys, name, fmt):
    rc, out, err = cli(capsys, "inspect", name)
    assert (rc, err) == (0, "")
    assert out.startswith(f"{name}: format {fmt}, 6 variables, 200 bytes\n")
    if fmt == "h5":
        assert "assigns each layer group's list by position" in out
        assert "    #3 twin_dense/dense_1/bias  (4,) float32\n" in out
    else:
        assert "  [layers/sequential/layers/dense_1/vars]\n    0  (4, 4) float32\n" in out


@needs_tf
def test_tensorflow_checkpoints_and_tensorflow_only_when_needed(work):
    hdf5 = [["inspect", "a.weights.h5"], ["inspect", "legacy.h5"], ["inspect", "m.keras"],
            ["inspect", "sharded"], ["diff", "a.weights.h5", "m.keras"]]
    tf = [["inspect", "tf/ckpt"], ["inspect", "tf/ckpt.index"], ["inspect", "tf"],
          ["inspect", "sm"], ["inspect", "managed"], ["diff", "tf", "managed"],
          ["diff", "tf/ckpt", "a.weights.h5"]]
    # The diff of a TF checkpoint with an HDF5 file imports TF in the reading child: no progress
    # is reported during that import.
    results = batch(work, hdf5 + tf, PYTEST_CKPT_STALL_SECONDS="120")
    assert [r["rc"] for r in results] == [0] * 5 + [0] * 5 + [1, 1]
    assert not any(r["tf_loaded"] for r in results[:5]) and results[5]["tf_loaded"]
    assert all(r["err"] == "" for r in results)
    for r in results[5:9]:
        assert ": format tf-checkpoint, 6 variables, 200 bytes\n" in r["out"]
        # Keras's own variable names, from the checkpoint's object graph.
        assert "  twin_dense/dense_1/kernel\n" in r["out"]
    assert "note: TensorFlow checkpoint sm/variables/variables" in results[8]["out"]
    assert results[9]["out"].startswith(
        "managed: format tf-checkpoint, 7 variables, 208 bytes\n"
        "  note: latest checkpoint named by checkpoint: managed/ckpt-2")
    assert "only in B (1):\n  save_counter\n6 of 7 variables" in results[10]["out"]


@needs_tf
def test_missing_tensorflow_is_one_clear_error(work):
    # What a JAX or PyTorch install looks like to the inspector.
    results = batch(work, [["inspect", "tf/ckpt"], ["inspect", "a.weights.h5"]],
                    prelude="import sys; sys.modules['tensorflow'] = None\n")
    assert_error(results[0]["rc"], results[0]["err"], "tf/ckpt",
                 "a TensorFlow checkpoint, and TensorFlow cannot be imported")
    assert results[1]["rc"] == 0


# What the full tensorflow wheel writes to file descriptor 2 on import, whatever
# TF_CPP_MIN_LOG_LEVEL says (tensorflow-cpu writes nothing).
TF_IMPORT_NOISE = """
import builtins, os, sys
real_import = builtins.__import__

def noisy_import(name, *args, **kwargs):
    if name == "tensorflow" and "tensorflow" not in sys.modules:
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\\nI0000 00:00:1795935359.145778   14151 cudart_stub.cc:31] "
                    b"Could not find cuda drivers on your machine, GPU will not be used.\\n")
    return real_import(name, *args, **kwargs)

builtins.__import__ = noisy_import
from pytest_ckpt.inspect.cli import main
sys.exit(main(sys.argv[1:]))
"""


@needs_tf
@pytest.mark.slow
def test_tensorflow_start_up_noise_is_not_shown(work):
    shutil.copytree("tf", "cut")
    Path("cut/ckpt.index").write_bytes(Path("cut/ckpt.index").read_bytes()[:20])
    done = python(work, TF_IMPORT_NOISE, "inspect", "cut/ckpt")
    assert_error(done.returncode, done.stderr, "cut/ckpt", "not a readable TensorFlow checkpoint")
    done = python(work, TF_IMPORT_NOISE, "inspect", "tf/ckpt")
    assert (done.returncode, done.stderr) == (0, "")


def test_python_dash_m_and_json(work, capsys):
    done = python(work, None, "inspect", "a.weights.h5")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("a.weights.h5: format keras-weights, 6 variables, 200 bytes\n")
    done = python(work, None, "inspect")
    assert done.returncode == 2 and done.stderr.startswith("usage: pytest-ckpt inspect")
    rc, out, _ = cli(capsys, "inspect", "--json", "legacy.h5")
    tree = json.loads(out)
    assert rc == 0 and tree["format"] == "h5"
    assert tree["variables"][3] == {
        "key": "twin_dense/twin_dense/dense_1/bias", "group": "twin_dense",
        "name": "twin_dense/dense_1/bias", "position": 3, "shape": [4], "dtype": "float32",
        "bytes": 16, "optimizer": False}


@pytest.mark.parametrize("args", [["inspect", "chunked.h5"], ["diff", "legacy.h5", "m.keras"],
                                  ["inspect", "tf/ckpt"]])
def test_output_cut_short_by_the_reader_is_no_error(work, args):
    if args[1] == "tf/ckpt" and configured_backend() != "tensorflow":
        pytest.skip("TensorFlow checkpoints are written and read with TensorFlow")
    # `pytest-ckpt inspect chunked.h5 | head -1` once head has exited: every write fails.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "pytest_ckpt", *args], stdout=write_end,
                              stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": ROOT})
    finally:
        os.close(write_end)
    # 128 + SIGPIPE, what a shell reports for a command cut short by head; never 1 (differ).
    assert (done.returncode, done.stderr) == (141, b"")


def test_groups_in_natural_order(work, capsys):
    rc, out, _ = cli(capsys, "inspect", "many.weights.h5")
    groups = [line.strip() for line in out.splitlines() if line.startswith("  [")]
    assert rc == 0
    assert groups == ["[layers/dense/vars]"] + [f"[layers/dense_{i}/vars]" for i in range(1, 12)]


# --- diff -------------------------------------------------------------------------------------


def test_diff_by_key_and_value(work, capsys):
    assert cli(capsys, "diff", "a.weights.h5", "m.keras")[:2] == (
        0, "6 of 6 variables identical by key and value\n")
    rc, out, _ = cli(capsys, "diff", "a.weights.h5", "b.weights.h5")
    # Fresh biases are zeros in both: only the three kernels differ.
    assert rc == 1 and "values differ (3):\n  layers/dense/vars/0: max |A-B| = " in out
    assert out.endswith("3 of 6 variables identical by key and value\n")


def test_diff_reports_the_positional_load_order_of_legacy_files(work, capsys):
    rc, out, _ = cli(capsys, "diff", "unfrozen.h5", "frozen.h5")
    assert rc == 1
    assert "load order differs (legacy load_weights assigns by position) (20):\n" in out
    assert ("  group resnet_small, position #0: A has conv1_conv/kernel, "
            "B has conv2_block1_1_conv/kernel\n") in out
    assert out.endswith("32 of 32 variables identical by key and value, but the positional "
                        "load order differs in 20 places\n")
    assert cli(capsys, "diff", "unfrozen.h5", "unfrozen_again.h5")[:2] == (
        0, "32 of 32 variables identical by key and value\n")
    # Layer groups are assigned to the model's layers by position too.
    shutil.copy("legacy.h5", "reordered.h5")
    edit_h5("reordered.h5",
            lambda f: f["model_weights"].attrs.create("layer_names", [b"dense_2", b"twin_dense"]))
    rc, out, _ = cli(capsys, "diff", "legacy.h5", "reordered.h5")
    assert rc == 1 and "  layer group position #0: A has twin_dense, B has dense_2\n" in out


def set_first_element(name, value):
    def edit(f):
        data = f[name][()]
        data.flat[0] = value
        f[name][...] = data
    return edit


@pytest.mark.parametrize("name, optimizer_key", [
    ("trained.h5", None),  # the slot's name depends on the backend: read from the file
    ("trained.weights.h5", "optimizer/vars/2"),
    ("trained.keras", "optimizer/vars/2"),
])
def test_optimizer_state_is_listed_and_compared(work, capsys, name, optimizer_key):
    rc, out, _ = cli(capsys, "inspect", name)
    # 6 model variables, then Adam's iteration, learning rate and 2 slots for each of the 6.
    assert rc == 0 and out.startswith(f"{name}: format ") and ", 20 variables, " in out
    if name == "trained.h5":
        # iterations is int64 on TensorFlow, int32 on JAX and PyTorch.
        assert "  [optimizer_weights] optimizer state\n    #0 adam/iteration  () int" in out
        with h5py.File(name, "r") as f:
            first = str(f["optimizer_weights"].attrs["weight_names"][2], "utf-8") \
                if isinstance(f["optimizer_weights"].attrs["weight_names"][2], bytes) \
                else str(f["optimizer_weights"].attrs["weight_names"][2])
        assert f"    #2 {first.split(':')[0]}  (4, 4) float32\n" in out
        optimizer_key = f"optimizer_weights/{first.split(':')[0]}"
    copy = f"changed.{name.partition('.')[2]}"
    shutil.copy(name, copy)
    if name.endswith(".keras"):
        with zipfile.ZipFile(name) as old, zipfile.ZipFile(copy, "w") as new:
            for member in old.namelist():
                new.writestr(member, old.read(member))
            with old.open("model.weights.h5") as weights:
                Path("inner.h5").write_bytes(weights.read())
        edit_h5("inner.h5", set_first_element(optimizer_key, 123.0))
        with zipfile.ZipFile(name) as old, zipfile.ZipFile(copy, "w") as new:
            for member in old.namelist():
                new.writestr(member, Path("inner.h5").read_bytes() if member == "model.weights.h5"
                             else old.read(member))
    else:
        edit_h5(copy, set_first_element(optimizer_key, 123.0))
    assert cli(capsys, "diff", name, name)[:2] == (
        0, "20 of 20 variables identical by key and value\n")
    rc, out, _ = cli(capsys, "diff", name, copy)
    assert rc == 1 and f"values differ (1):\n  {optimizer_key}: max |A-B| = " in out


def test_optimizer_load_order_of_legacy_files(work, capsys):
    # load_model() hands optimizer_weights to optimizer.set_weights() as a list, by position.
    def swap(f):
        names = list(f["optimizer_weights"].attrs["weight_names"])
        names[2], names[3] = names[3], names[2]
        f["optimizer_weights"].attrs["weight_names"] = names
    shutil.copy("trained.h5", "swapped.h5")
    edit_h5("swapped.h5", swap)
    rc, out, _ = cli(capsys, "diff", "trained.h5", "swapped.h5")
    assert rc == 1 and ("  optimizer_weights, position #2: A has "
                        "adam/twin_dense_dense_kernel_momentum, B has "
                        "adam/twin_dense_dense_kernel_velocity\n") in out


def test_diff_of_strings_bools_and_nan_without_casting(tmp_path, capsys):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path, last in ((a, b"x"), (b, b"y")):
        with h5py.File(path, "w") as f:
            f["vlen"] = np.array([b"keep", last], dtype=object)
            f["text"] = ["same", last.decode()]
            f["fixed"] = np.array([b"ab", last])
            f["flags"] = np.array([True, last == b"x"])
            f["nan"] = np.array([1.0, np.nan])
            f["bytes"] = np.array([1, 200 if last == b"x" else 7], dtype="u1")
    rc, out, _ = cli(capsys, "diff", a, b)
    assert rc == 1
    assert out == ("values differ (5):\n  bytes: max |A-B| = 193\n  fixed\n  flags\n  text\n"
                   "  vlen\n1 of 6 variables identical by key and value\n")


def test_diff_of_ragged_and_reference_datasets(tmp_path, capsys):
    def write(path, last):
        with h5py.File(path, "w") as f:
            ragged = f.create_dataset("vars/ragged", (3,), dtype=h5py.vlen_dtype(np.int32))
            ragged[0], ragged[1], ragged[2] = [1, 2, 3], [4], [last]
            floats = f.create_dataset("vars/floats", (2,), dtype=h5py.vlen_dtype(np.float32))
            floats[0], floats[1] = [np.nan, 1.0], [2.0]
            scalar = f.create_dataset("vars/scalar", (), dtype=h5py.vlen_dtype(np.int32))
            scalar[()] = [1, 2, 3 + last]
            f.create_dataset("vars/null_refs", (2,), dtype=h5py.ref_dtype)  # all null
            refs = f.create_dataset("vars/refs", (2,), dtype=h5py.ref_dtype)
            refs[1] = f["vars/ragged" if last == 0 else "vars/floats"].ref

    a, b = tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"
    write(a, 0)
    write(b, 1)
    assert cli(capsys, "diff", a, a) == (0, "5 of 5 variables identical by key and value\n", "")
    rc, out, err = cli(capsys, "diff", a, b)
    assert (rc, err) == (1, "")
    assert out == ("values differ (3):\n  vars/ragged\n  vars/refs\n  vars/scalar\n"
                   "2 of 5 variables identical by key and value\n")
    rc, out, _ = cli(capsys, "inspect", a)
    assert rc == 0 and "    ragged  (3,) variable-length int32\n" in out
    assert "    refs  (2,) object reference\n" in out


def test_diff_lists_at_most_40_rows_per_section(tmp_path, capsys):
    for name, value in (("a.h5", 0.0), ("b.h5", 1.0)):
        with h5py.File(tmp_path / name, "w") as f:
            for i in range(45):
                f[f"w{i}"] = np.full(3, value)
    rc, out, _ = cli(capsys, "diff", tmp_path / "a.h5", tmp_path / "b.h5")
    assert rc == 1 and "values differ (45):\n" in out and "  ... and 5 more\n" in out
    assert len(out.splitlines()) == 1 + 40 + 1 + 1


# --- hostile and broken files -----------------------------------------------------------------

MEASURE = """
import resource, subprocess, sys
# ru_maxrss of the largest descendant, the CLI's reading child included.
done = subprocess.run([sys.executable, "-m", "pytest_ckpt", *sys.argv[1:]], capture_output=True,
                      text=True)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
print(done.stdout + done.stderr)
"""


def peak_rss_mib(cwd, *args):
    done = python(cwd, MEASURE, *args)
    first, _, output = done.stdout.partition("\n")
    rc, mib = map(int, first.split())
    return rc, mib, output


def test_huge_declared_datasets_cost_no_memory(tmp_path):
    with h5py.File(tmp_path / "huge.h5", "w") as f:
        f.create_dataset("x", shape=(2_000_000, 2_000_000), dtype="f4")  # 16 TB, no chunk stored
    with h5py.File(tmp_path / "two_gib.h5", "w") as f:
        f.create_dataset("x", shape=(2**29,), dtype="f4", chunks=(2**20,))
    with h5py.File(tmp_path / "quarter_gib.h5", "w") as f:
        f.create_dataset("x", shape=(2**12, 2**14), dtype="f4", chunks=(64, 2**14))
    assert (tmp_path / "huge.h5").stat().st_size < 10_000
    rc, mib, out = peak_rss_mib(tmp_path, "inspect", "huge.h5")
    assert rc == 0 and "16,000,000,000,000 bytes" in out and mib < 400, (mib, out)
    rc, mib, out = peak_rss_mib(tmp_path, "inspect", "two_gib.h5")
    assert rc == 0 and "2,147,483,648 bytes" in out and mib < 400, (mib, out)
    # diff reads values, a few MiB at a time: 2 x 256 MiB never sits in memory.
    rc, mib, out = peak_rss_mib(tmp_path, "diff", "quarter_gib.h5", "quarter_gib.h5")
    assert rc == 0 and "1 of 1 variables identical" in out and mib < 250, (mib, out)


def test_diff_of_unallocated_datasets_compares_fill_values(tmp_path, capsys):
    for name, fill in (("a.h5", 0.0), ("same.h5", 0.0), ("filled.h5", 0.5)):
        with h5py.File(tmp_path / name, "w") as f:
            f.create_dataset("x", shape=(2_000_000, 2_000_000), dtype="f4", fillvalue=fill)
            f.create_dataset("two_gib", shape=(2**29,), dtype="f4", chunks=(2**20,))
    started = time.monotonic()
    assert cli(capsys, "diff", tmp_path / "a.h5", tmp_path / "same.h5")[:2] == (
        0, "2 of 2 variables identical by key and value\n")
    rc, out, _ = cli(capsys, "diff", tmp_path / "a.h5", tmp_path / "filled.h5")
    assert rc == 1 and out.startswith("values differ (1):\n  x: max |A-B| = 0.5\n"), out
    assert time.monotonic() - started < 5


def test_fifo_in_a_folder_is_refused(tmp_path, capsys):
    os.mkfifo(tmp_path / "s.weights.json")
    rc, _, err = cli(capsys, "inspect", tmp_path)
    assert_error(rc, err, tmp_path, "s.weights.json is not a regular file")
    rc, _, err = cli(capsys, "inspect", tmp_path / "s.weights.json")
    assert_error(rc, err, tmp_path / "s.weights.json", "not a regular file")


def test_chunked_layer_names_are_followed(work, capsys):
    with h5py.File("chunked.h5") as f:
        attrs = f["model_weights"].attrs
        assert "layer_names" not in attrs and {"layer_names0", "layer_names1"} <= set(attrs)
    rc, out, _ = cli(capsys, "inspect", "chunked.h5")
    groups = [line for line in out.splitlines() if line.startswith("  [layer_")]
    assert rc == 0 and len(groups) == 300 and groups[-1].startswith("  [layer_299_xxx")
    assert cli(capsys, "diff", "chunked.h5", "chunked.h5")[0] == 0


def test_bad_inputs_are_one_line_errors(work, capsys):
    Path("cut.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    Path("notes.txt").write_text("hello")
    Path("empty").mkdir()
    Path("two").mkdir()
    for name in ("ckpt-1", "ckpt-2"):
        for suffix in (".index", ".data-00000-of-00001"):
            Path(f"two/{name}{suffix}").write_bytes(b"")  # which one? decided before any read
    Path("stale").mkdir()
    Path("stale/checkpoint").write_text('model_checkpoint_path: "ckpt-9"\n')
    cases = [
        ("cut.h5", "not a readable HDF5 file"),
        ("notes.txt", "unknown checkpoint format"),
        ("missing.h5", "no such file"),
        ("empty", "a folder with no sharded weights indexes, no TensorFlow checkpoint"),
        ("two", "holds 2 TensorFlow checkpoints (ckpt-1.index, ckpt-2.index) and no 'checkpoint'"),
        ("stale", "checkpoint names ckpt-9, which has no .index file"),
    ]
    for name, message in cases:
        assert_error(*cli(capsys, "inspect", name)[::2], name, message)
    rc, _, err = cli(capsys, "diff", "legacy.h5", "missing.h5")
    assert_error(rc, err, "missing.h5", "no such file")


def edit_h5(path, edit):
    with h5py.File(path, "a") as f:
        edit(f)


@pytest.mark.parametrize("edit, message", [
    (lambda f: f["model_weights"].attrs.create("layer_names", [b"twin_dense", b"ghost"]),
     "layer group ghost (from layer_names) is missing"),
    (lambda f: f["model_weights/twin_dense"].attrs.create("weight_names", [b"twin_dense/no"]),
     "weight twin_dense/no of layer group twin_dense (from weight_names) is missing"),
    (lambda f: f["model_weights"].attrs.create("layer_names", np.array([b"twin_dense", b"\xff"])),
     r"layer group \xff (from layer_names) is missing"),
    (lambda f: f["model_weights/dense_2"].attrs.create("weight_names", [1.5, 2.5]),
     "attribute weight_names of /model_weights/dense_2 holds non-string values"),
    (lambda f: f["model_weights"].move("dense_2", "layer_names_target_gone"),
     "layer group dense_2 (from layer_names) is missing"),
])
def test_names_pointing_at_missing_objects(work, capsys, edit, message):
    edit_h5("legacy.h5", edit)
    assert_error(*cli(capsys, "inspect", "legacy.h5")[::2], "legacy.h5", message)


def test_non_utf8_names_that_exist_are_shown_escaped(work, capsys):
    def rename(f):
        f["model_weights"].move("dense_2", b"dense_\xff")
        f["model_weights"].attrs["layer_names"] = np.array([b"twin_dense", b"dense_\xff"])

    edit_h5("legacy.h5", rename)
    rc, out, _ = cli(capsys, "inspect", "legacy.h5")
    assert rc == 0 and "  [dense_\\xff]\n    #0 sequential/dense_2/kernel  (4, 2) float32\n" in out


def test_libhdf5_infinite_loop_is_stopped(work, capsys):
    # Zeroing the global-heap object that holds a weight name makes libhdf5 1.14 spin forever
    # reading weight_names (h5py#2088): the watched child is stopped after the stall limit.
    data = bytearray(Path("legacy.h5").read_bytes())
    at = data.index(b"twin_dense/dense/kernel") + 1
    data[at:at + 256] = bytes(256)
    Path("legacy.h5").write_bytes(bytes(data))
    assert_error(*cli(capsys, "inspect", "legacy.h5")[::2], "legacy.h5")


# --- fuzz -------------------------------------------------------------------------------------

# What each checkpoint needs on disk, and which of its files get their bytes corrupted.
NEEDS = {"a.weights.h5": ["a.weights.h5"], "legacy.h5": ["legacy.h5"], "m.keras": ["m.keras"],
         "sharded/s.weights.json": ["sharded"]}
TARGETS = {"a.weights.h5": ["a.weights.h5"], "legacy.h5": ["legacy.h5"], "m.keras": ["m.keras"],
           "sharded/s.weights.json": ["sharded/s.weights.json", "sharded/s_00000.weights.h5",
                                      "sharded/s_00002.weights.h5"]}


def byte_corruptions(rng, data: bytes):
    """(kind, corrupted bytes, certainly broken?) for one file's contents."""
    n = len(data)
    yield "truncated to 7 bytes", data[:7], True
    for cut in sorted(rng.sample(range(8, n), 4)):
        yield f"truncated at {cut}", data[:cut], False
    for _ in range(4):
        start, length = rng.randrange(n), rng.randint(1, 64)
        noise = bytes(rng.randrange(256) for _ in range(length))
        yield f"overwritten at {start}", (data[:start] + noise + data[start + length:])[:n], False
    flipped = bytearray(data)
    for _ in range(8):
        flipped[rng.randrange(n)] ^= 1 << rng.randrange(8)
    yield "8 bit flips", bytes(flipped), False


def structural_corruptions(rng):
    """(checkpoint, kind, edit(path), certainly broken?): edits with h5py, zipfile, plain writes."""
    def h5(edit):
        return lambda path: edit_h5(path, edit)

    def any_dataset(f):
        names = []
        f.visit(names.append)
        return rng.choice([name for name in names if isinstance(f[name], h5py.Dataset)])

    def group_in_place_of_a_dataset(f):
        name = any_dataset(f)
        del f[name]
        f.create_group(name)

    def strings_in_place_of_a_dataset(f):
        del f["layers/dense/vars/1"]
        f["layers/dense/vars/1"] = np.array([b"a", b"b"], dtype=object)

    def weights_member(payload, name="model.weights.h5"):
        def edit(path):
            with zipfile.ZipFile(path) as old:
                members = {i.filename: old.read(i) for i in old.infolist()}
            del members["model.weights.h5"]
            if payload is not None:
                members[name] = payload
            with zipfile.ZipFile(path, "w") as new:
                for member, content in members.items():
                    new.writestr(member, content)
        return edit

    def write(content):
        return lambda path: Path(path).write_bytes(content)

    def bad_superblock(path):
        with open(path, "r+b") as f:
            f.write(b"\0BAD\0HDF")

    group = rng.choice(["twin_dense", "dense_2"])
    legacy, weights, sharded = "legacy.h5", "a.weights.h5", "sharded/s.weights.json"
    return [
        (legacy, "superblock overwritten", bad_superblock, True),
        (legacy, f"layer group {group} deleted", h5(lambda f: f["model_weights"].pop(group)), True),
        (legacy, "a weight renamed", h5(lambda f: f.move(any_dataset(f), "renamed")), True),
        (legacy, "a weight replaced by a group", h5(group_in_place_of_a_dataset), True),
        (legacy, "weight_names not strings",
         h5(lambda f: f[f"model_weights/{group}"].attrs.create("weight_names", [3, 4])), True),
        (legacy, "layer_names deleted",
         h5(lambda f: f["model_weights"].attrs.pop("layer_names")), False),
        (legacy, "links made into a cycle",
         h5(lambda f: f["model_weights/twin_dense"].update(up=f["model_weights"])), False),
        (weights, "superblock overwritten", bad_superblock, True),
        (weights, "a vars group deleted", h5(lambda f: f.pop("layers/dense/vars")), False),
        (weights, "links made into a cycle",
         h5(lambda f: f["layers/dense"].update(up=f["layers"])), False),
        (weights, "a dataset retyped to strings", h5(strings_in_place_of_a_dataset), False),
        ("m.keras", "weights member missing", weights_member(None), True),
        ("m.keras", "weights member garbage", weights_member(b"garbage"), True),
        ("m.keras", "weights stored as npz", weights_member(b"PK", "model.weights.npz"), True),
        ("m.keras", "not a zip", write(b"PK\x03\x04 not really a zip"), True),
        (sharded, "empty index", write(b""), True),
        (sharded, "a list", write(b"[1, 2]"), True),
        (sharded, "weight_map a number", write(b'{"weight_map": 5}'), True),
        (sharded, "shard names numbers", write(b'{"weight_map": {"a": [1]}}'), True),
        (sharded, "not UTF-8", write(b'{"weight_map": {"\xff": ["\xfe"]}}'), True),
        (sharded, "nested 100000 deep", write(b"[" * 100_000), True),
        (sharded, "a shard missing", lambda _: os.remove("sharded/s_00001.weights.h5"), True),
        (sharded, "a shard path out of the folder",
         write(b'{"weight_map": {"a": ["../x.h5"]}}'), True),
    ]


def check_outcome(rc, err, path, broken, what):
    assert rc in (0, 1, 2), what
    if rc == 2:
        assert err.startswith(f"error: {path}: ") and err.count("\n") == 1, (what, err)
        assert "Traceback" not in err and "internal error" not in err, (what, err)
    else:
        assert err == "" and not broken, (what, rc, err)


def test_fuzz_hdf5_and_zip_formats(saved, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYTEST_CKPT_STALL_SECONDS", "3")
    rng = random.Random(20261129)
    outcomes = {}

    def attempt(entry, kind, corrupt, broken):
        case = tmp_path / f"case{len(outcomes)}"
        case.mkdir()
        for need in NEEDS[entry]:
            (shutil.copytree if (saved / need).is_dir() else shutil.copy)(saved / need, case / need)
        monkeypatch.chdir(case)
        corrupt(entry)
        rc, _, err = cli(capsys, "inspect", entry)
        check_outcome(rc, err, entry, broken, (entry, kind))
        # diff reads every value: a file that inspects fine may still fail here, never crash.
        rc_diff, _, err_diff = cli(capsys, "diff", entry, saved / entry)
        check_outcome(rc_diff, err_diff, entry, broken, (entry, kind, "diff"))
        assert rc == 0 or rc_diff == 2  # what inspect cannot read, diff cannot either
        outcomes[(entry, kind)] = (rc, rc_diff)

    for entry, targets in TARGETS.items():
        for target in targets:
            for kind, corrupted, broken in byte_corruptions(rng, (saved / target).read_bytes()):
                attempt(entry, f"{target} {kind}",
                        lambda _, t=target, c=corrupted: Path(t).write_bytes(c), broken)
    for entry, kind, edit, broken in structural_corruptions(rng):
        attempt(entry, kind, edit, broken)
    for (entry, kind), (rc, rc_diff) in outcomes.items():  # shown with -s
        print(f"inspect {rc}, diff {rc_diff}: {entry}: {kind}")
    assert len(outcomes) > 80


@needs_tf
def test_fuzz_tensorflow_checkpoints(saved, tmp_path):
    rng = random.Random(20261129)
    calls, expected = [], []
    for target in ("tf/ckpt.index", "tf/ckpt.data-00000-of-00001"):
        data = (saved / target).read_bytes()
        for i, (kind, corrupted, broken) in enumerate(byte_corruptions(rng, data)):
            case = tmp_path / f"{Path(target).name}-{i}"
            shutil.copytree(saved / "tf", case)
            (case / Path(target).name).write_bytes(corrupted)
            prefix = str(case / "ckpt")
            calls += [["inspect", prefix], ["diff", prefix, str(saved / "tf/ckpt")]]
            expected += [(prefix, broken and target.endswith(".index"), kind)] * 2
    results = batch(tmp_path, calls)
    for (prefix, broken, kind), r in zip(expected, results):
        check_outcome(r["rc"], r["err"], prefix, broken, (prefix, kind))
    print("\n".join(f"{r['rc']}  {p}: {kind}" for (p, _, kind), r in zip(expected, results)))
