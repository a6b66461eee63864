"""Golden-checkpoint regression tests end to end (pytester, real Keras files)."""

import hashlib
import importlib.util
import os
import subprocess
import sys

# Imported before pytester snapshots sys.modules (see test_plugin.py).
import hypothesis  # noqa: F401
import keras
import pytest

import pytest_ckpt.golden.check
import pytest_ckpt.search.driver  # noqa: F401
from tests.conftest import BACKEND, failure_report, needs_tensorflow_installed
from tests.test_plugin import make_read_only

MODEL = """
import os
import keras

VARIANT = os.environ.get("VARIANT", "base")


def build():
    first, second = ("alpha", "second") if VARIANT == "renamed" else ("first", "second")
    units = 4 if VARIANT == "shape" else 3
    inp = keras.Input((4,))
    a = keras.layers.Dense(4, name=first)
    b = keras.layers.Dense(4, name=second)
    x = a(b(inp)) if VARIANT == "reorder" else b(a(inp))
    return keras.Model(inp, keras.layers.Dense(units, name="head")(x))


def test_model(ckpt_regression):
    ckpt_regression.check(build())
    ckpt_regression.check(build(), format="h5-by-name")
"""


def digest(root):
    """Every golden file and its checksum: proof that nothing was modified."""
    folder = root / "ckpt_golden"
    if not folder.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def run(pytester, monkeypatch):
    def run(*args, variant="base"):
        monkeypatch.setenv("VARIANT", variant)
        return pytester.runpytest_inprocess("-p", "no:cacheprovider", "--hypothesis-seed=7",
                                            "--ckpt-examples=3", *args)

    return run


def test_golden_lifecycle(pytester, run):
    pytester.makepyfile(test_reg=MODEL)
    # Missing golden: fails, writes nothing.
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no golden checkpoint at *ckpt_golden/test_reg/test_model/check-1 "
                                 "for this check; create it with pytest --ckpt-update*"])
    assert digest(pytester.path) == {}
    # --ckpt-update writes one file set per check, atomically (no temp files left).
    run("--ckpt-update").assert_outcomes(passed=1)
    golden = digest(pytester.path)
    assert sorted(golden) == [
        "ckpt_golden/test_reg/test_model/check-1/checkpoint.weights.h5",
        "ckpt_golden/test_reg/test_model/check-1/manifest.txt",
        "ckpt_golden/test_reg/test_model/check-1/outputs.npz",
        "ckpt_golden/test_reg/test_model/check-2/checkpoint.h5",
        "ckpt_golden/test_reg/test_model/check-2/manifest.txt",
        "ckpt_golden/test_reg/test_model/check-2/outputs.npz",
    ]
    manifest = (pytester.path / "ckpt_golden/test_reg/test_model/check-1/manifest.txt").read_text()
    for line in ("framework: keras3", f"backend: {BACKEND}", "format: keras-weights",
                 "values: distinct", "keras_version: 3."):
        assert line in manifest
    # Keyed as the format loads: by path in the file (h5-by-name: layer name, then position).
    assert "layers/dense/vars/0\t4x4\tfloat32\t" in manifest
    # Unchanged model: passes.
    run().assert_outcomes(passed=1)
    # A renamed layer: keras-weights keys by path and still loads; by name it is not loaded.
    renamed = run(variant="renamed")
    renamed.assert_outcomes(failed=1)
    renamed.stdout.fnmatch_lines(["golden checkpoint check failed: *test_model/check-2",
                                  "*format:    h5-by-name*",
                                  "*in the golden, not in the model (2):*",
                                  "*first/weight0 (first/kernel) (4, 4)*",
                                  "*in the model, not in the golden (2):*",
                                  "*alpha/weight0 (alpha/kernel) (4, 4)*"])
    # Two same-shaped layers applied in the other order: keras-weights pairs them
    # by their place in model.layers, which computes the same (plain Keras agrees);
    # by name each gets its own weights back, and the computation changed.
    reordered = run(variant="reorder")
    reordered.assert_outcomes(failed=1)
    reordered.stdout.fnmatch_lines(["golden checkpoint check failed: *test_model/check-2",
                                    "*outputs differ from the golden's: output: max |difference|*"])
    # A changed shape: reported before any load.
    reshaped = run(variant="shape")
    reshaped.assert_outcomes(failed=1)
    reshaped.stdout.fnmatch_lines(["*shape or dtype changed (2):*",
                                   "*layers/dense_2/vars/0 (head/kernel): (4, 3) float32 -> (4, 4) float32*"])
    # None of the failing runs touched a golden.
    assert digest(pytester.path) == golden
    # --ckpt-update accepts the change.
    run("--ckpt-update", variant="shape").assert_outcomes(passed=1)
    assert digest(pytester.path) != golden
    run(variant="shape").assert_outcomes(passed=1)


COLLIDING = """
import keras
import pytest


def build(units):
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(units)])


@pytest.mark.parametrize("units", [2, 3], ids=["a/b", "a_b"])
def test_ids(ckpt_regression, units):
    ckpt_regression.check(build(units))


@pytest.mark.parametrize("units", [2, 4], ids=["x", "x-2"])
def test_repeat(ckpt_regression, units):
    ckpt_regression.check(build(units))
    ckpt_regression.check(build(units + 1))


class TestA:
    def test_x(self, ckpt_regression):
        ckpt_regression.check(build(5))


class TestB:
    def test_x(self, ckpt_regression):
        ckpt_regression.check(build(6))


def test_named(ckpt_regression):
    ckpt_regression.check(build(7), name="release 1.0/weights")
"""


def test_golden_folders_never_collide(pytester, run):
    pytester.makepyfile(test_col=COLLIDING)
    run("--ckpt-update").assert_outcomes(passed=7)
    folders = sorted({str(p.parent.relative_to(pytester.path / "ckpt_golden"))
                      for p in (pytester.path / "ckpt_golden").rglob("manifest.txt")})
    assert folders == [
        "test_col/TestA@0.4/test_x/check-1", "test_col/TestB@0.4/test_x/check-1",
        "test_col/test_ids[a%2Fb]/check-1", "test_col/test_ids[a_b]/check-1",
        "test_col/test_named/release%201.0%2Fweights",
        "test_col/test_repeat[x-2]/check-1", "test_col/test_repeat[x-2]/check-2",
        "test_col/test_repeat[x]/check-1", "test_col/test_repeat[x]/check-2",
    ]
    run().assert_outcomes(passed=7)  # each test reads back its own golden


def test_two_checks_mapping_to_one_folder_are_an_error_naming_both(pytester, run):
    pytester.makepyfile(test_dup="""
        import keras

        def test_dup(ckpt_regression):
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
            ckpt_regression.check(model)
            ckpt_regression.check(model, name="check-1")
    """)
    result = run("--ckpt-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*two golden checks map to one folder *test_dup/test_dup/check-1: "
                                 "test_dup.py::test_dup, check 1 and test_dup.py::test_dup, check 2 "
                                 "(name='check-1')*"])


def test_a_format_other_than_the_goldens_asks_for_an_update(pytester, run):
    pytester.makepyfile(test_fmt="""
        import os, keras

        def test_fmt(ckpt_regression):
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
            ckpt_regression.check(model, format=os.environ.get("FMT", "keras-weights"))
    """)
    run("--ckpt-update").assert_outcomes(passed=1)
    os.environ["FMT"] = "h5"
    try:
        result = run()
    finally:
        del os.environ["FMT"]
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*was written in format 'keras-weights' and this check asks for 'h5': "
                                 "run pytest --ckpt-update*"])


SWAPS = """
import os
import keras

def test_nested(ckpt_regression):
    block = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(),
                              keras.layers.BatchNormalization()], name="block")
    model = keras.Sequential([keras.Input((4,)), block, keras.layers.Dense(2)])
    if os.environ.get("VARIANT") == "frozen":
        block.layers[0].trainable = False  # under h5, every BatchNorm variable moves
    ckpt_regression.check(model, format="h5", values=os.environ.get("VALUES", "distinct"))
"""


@pytest.mark.parametrize("values", ["distinct", "model"])
def test_an_h5_golden_loaded_under_another_freeze_names_the_moved_values_whatever_they_are(
        pytester, run, monkeypatch, values):
    monkeypatch.setenv("VALUES", values)
    pytester.makepyfile(test_swaps=SWAPS)
    run("--ckpt-update").assert_outcomes(passed=1)
    run().assert_outcomes(passed=1)  # the nested model as built loads its own h5 golden
    # Legacy h5 assigns by position: with one BatchNorm frozen, the two exchange gamma
    # and beta.  Positions alone would call that a match; the golden records which
    # variable each position held, so the move is named even where the values are
    # equal (a fresh model's gammas are all ones).
    result = run(variant="frozen")
    result.assert_outcomes(failed=1)
    rows = [line for line in failure_report(result) if " swapped " in line]
    assert len(rows) == 4, rows
    assert all("holds the golden value of layer0/weight" in r for r in rows), rows


ANY_MODEL = """
import keras
import numpy as np
import pytest


def dict_outputs():
    inputs = {"x": keras.Input((3,), name="x"), "ids": keras.Input((2,), dtype="int32", name="ids")}
    emb = keras.layers.Flatten()(keras.layers.Embedding(5, 2)(inputs["ids"]))
    joined = keras.layers.Concatenate()([inputs["x"], emb])
    return keras.Model(inputs, {"logits": keras.layers.Dense(2)(joined),
                                "score": keras.layers.Dense(1)(joined)})


def list_outputs():
    inputs = keras.Input((3,))
    return keras.Model(inputs, [keras.layers.Dense(2)(inputs), keras.layers.Dense(1)(inputs)])


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(4)
        self.out = keras.layers.Dense(2)

    def call(self, x):
        return self.out(self.hidden(x))


def subclassed():
    model = Subclassed()
    model.build((None, 5))
    return model


def strings():
    inputs = keras.Input((1,), dtype="string")
    x = keras.layers.StringLookup(vocabulary=["a", "b", "c"])(inputs)
    x = keras.layers.Flatten()(keras.layers.Embedding(5, 2)(x))
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def test_dict(ckpt_regression):
    ckpt_regression.check(dict_outputs())


def test_list(ckpt_regression):
    ckpt_regression.check(list_outputs())


def test_subclassed(ckpt_regression):
    ckpt_regression.check(subclassed())


def test_strings(ckpt_regression):
    pytest.importorskip("tensorflow", reason="Keras's StringLookup needs TensorFlow installed")
    ckpt_regression.check(strings())


def test_flags_and_values_are_put_back(ckpt_regression):
    model = list_outputs()
    kernel = model.layers[1].kernel
    kernel.trainable = False
    model.layers[2].trainable = False
    before = [np.array(w.numpy()) for w in model.weights]
    ckpt_regression.check(model)
    assert kernel.trainable is False and model.layers[1].trainable is True
    assert model.layers[2].trainable is False
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights))


def test_by_name(ckpt_regression):
    # Auto-named: passes whatever ran before it in the process.
    ckpt_regression.check(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
                                            keras.layers.Dense(2)]), format="h5-by-name")
"""


def test_any_keras_model_updates_and_then_passes(pytester, run):
    pytester.makepyfile(test_any=ANY_MODEL)
    strings = int(importlib.util.find_spec("tensorflow") is not None)
    run("--ckpt-update").assert_outcomes(passed=5 + strings, skipped=1 - strings)
    run().assert_outcomes(passed=5 + strings, skipped=1 - strings)
    run("-k", "by_name").assert_outcomes(passed=1, deselected=5)


@pytest.fixture
def golden(pytester, run):
    pytester.makepyfile(test_reg=MODEL)
    run("--ckpt-update").assert_outcomes(passed=1)
    return pytester.path / "ckpt_golden/test_reg/test_model/check-1"


@pytest.mark.parametrize("damage", ["truncated", "directory", "non-utf8", "nonsense-line", "no-probe"])
def test_a_damaged_golden_is_named_and_never_modified(pytester, golden, run, damage):
    ckpt = golden / "checkpoint.weights.h5"
    manifest = golden / "manifest.txt"
    if damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:200])
        message = f"*golden file {ckpt} does not match its manifest*"
    elif damage == "directory":
        ckpt.unlink()
        ckpt.mkdir()
        message = f"*golden file {ckpt} is not a file*"
    elif damage == "non-utf8":
        manifest.write_bytes(manifest.read_bytes().replace(b"keras3", b"k\xe9ras3"))
        message = f"*cannot read golden manifest {manifest}*"
    elif damage == "nonsense-line":
        lines = manifest.read_text().splitlines()
        lines[-1] = "1:Dense/kernel\tfour by four\tfloat32\tnot-a-checksum"
        manifest.write_text("\n".join(lines) + "\n")
        message = f"*{manifest}, line {len(lines)}: cannot parse*"
    else:
        import numpy as np

        from pytest_ckpt.golden.store import file_checksum

        outputs = golden / "outputs.npz"
        np.savez(outputs, output=np.zeros(2))
        manifest.write_text(manifest.read_text().replace(
            next(l for l in manifest.read_text().splitlines() if l.startswith("outputs_sha256")),
            f"outputs_sha256: {file_checksum(outputs)}"))
        message = "*the golden probe in * is unreadable*run pytest --ckpt-update*"
    before = digest(pytester.path)
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str() and digest(pytester.path) == before


def test_read_only_golden_folder_with_update_is_a_clear_error(pytester, golden, run):
    make_read_only(golden)
    result = run("--ckpt-update", variant="shape")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*cannot write golden folder {golden}: *"])


@pytest.mark.slow
def test_concurrent_updates_of_the_same_goldens_leave_complete_sets(pytester, monkeypatch):
    """Two processes write two different models to the same goldens at once:
    every set is whole, and passes with the model it was written from."""
    body = "\n".join(f"""
def test_m{i}(ckpt_regression):
    ckpt_regression.check(build(), format={fmt!r})
""" for i, fmt in enumerate(["keras-weights", "h5"] * 4))
    pytester.makepyfile(test_many=MODEL.split("def test_model")[0] + body)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--ckpt-update", "-q"]
    procs = [subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env={**os.environ, "VARIANT": variant})
             for variant in ("base", "shape")]
    for p in procs:
        with p:  # closes the pipe: an open one is an unraisable ResourceWarning, an error here
            out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out.decode()[-2000:]
    files = digest(pytester.path)
    assert len(files) == 8 * 3 and not any("/." in f for f in files)
    passed = []
    for variant in ("base", "shape"):
        monkeypatch.setenv("VARIANT", variant)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ckpt-examples=2", "-rA")
        passed += [line.split("::")[1].split()[0] for line in result.outlines if line.startswith("PASSED ")]
    assert sorted(passed) == sorted(f"test_m{i}" for i in range(8)), passed


ONE_CHECK = MODEL.split("def test_model")[0] + """
def test_model(ckpt_regression):
    ckpt_regression.check(build())
"""

# Fault injection in the --ckpt-update process: the real rename of a golden,
# then the process dies (KILL=after) or dies instead of renaming (KILL=before);
# or (OTHER=path) another writer's checkpoint lands right after ours is renamed.
FAULTS = """
import os
import shutil

import pytest_ckpt.golden.store as golden

KILL, OTHER = os.environ.get("KILL"), os.environ.get("OTHER")


def _wrap(real):
    def wrapped(src, dst, *args, **kwargs):
        if "ckpt_golden" not in str(dst):
            return real(src, dst, *args, **kwargs)
        if KILL == "before":
            os._exit(3)
        result = real(src, dst, *args, **kwargs)
        if KILL == "after":
            os._exit(3)
        if OTHER and os.path.basename(str(dst)).startswith("checkpoint"):
            shutil.copyfile(OTHER, dst)
        return result
    return wrapped


os.replace, os.rename = _wrap(os.replace), _wrap(os.rename)
if hasattr(golden, "_exchange"):
    golden._exchange = _wrap(golden._exchange)
"""


def test_the_manifest_checksums_the_checkpoint_it_wrote_not_what_is_there_after(pytester, run, monkeypatch):
    """Another writer's checkpoint landing right after ours: the set must not
    pass its integrity check while describing another model."""
    pytester.makepyfile(test_reg=ONE_CHECK)
    pytester.makeconftest(FAULTS)
    run("--ckpt-update", variant="shape").assert_outcomes(passed=1)
    other = pytester.path / "other.weights.h5"
    other.write_bytes((pytester.path / "ckpt_golden/test_reg/test_model/check-1/checkpoint.weights.h5")
                      .read_bytes())
    monkeypatch.setenv("OTHER", str(other))
    run("--ckpt-update").assert_outcomes(passed=1)
    monkeypatch.delenv("OTHER")
    result = run()
    if result.parseoutcomes().get("failed"):
        result.stdout.fnmatch_lines(["*does not match its manifest*"])


@pytest.mark.parametrize("kill", ["before", "after"])
def test_an_update_killed_at_any_rename_leaves_the_old_set_or_the_new_one(pytester, run, monkeypatch, kill):
    pytester.makepyfile(test_reg=ONE_CHECK)
    pytester.makeconftest(FAULTS)
    run("--ckpt-update").assert_outcomes(passed=1)
    old = digest(pytester.path)
    monkeypatch.setenv("KILL", kill)
    monkeypatch.setenv("VARIANT", "shape")
    killed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ckpt-update")
    assert killed.ret == 3
    monkeypatch.delenv("KILL")
    golden = {k: v for k, v in digest(pytester.path).items() if "/." not in k}  # leftovers aside
    if kill == "before":
        assert golden == old
    # Whichever set is there is whole: it passes with the model it was written from.
    outcomes = [run(variant=v).parseoutcomes().get("passed", 0) for v in ("base", "shape")]
    assert sorted(outcomes) == [0, 1], outcomes


def test_the_next_update_removes_what_a_killed_update_left_behind_once_it_is_old(pytester, run, monkeypatch):
    pytester.makepyfile(test_reg=ONE_CHECK)
    pytester.makeconftest(FAULTS)
    run("--ckpt-update").assert_outcomes(passed=1)
    monkeypatch.setenv("KILL", "before")
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ckpt-update").ret == 3
    monkeypatch.delenv("KILL")
    folder = pytester.path / "ckpt_golden/test_reg/test_model"
    left = [p for p in folder.iterdir() if p.name.startswith(".")]
    assert left, "the kill left no staged set: the test no longer tests anything"
    for p in left:
        os.utime(p, (0, 0))
    recent = folder / f".tmp-{'0' * 32}-check-1"  # perhaps a concurrent update's: kept
    recent.mkdir()
    unrelated = folder / ".tmp-mine"
    unrelated.mkdir()
    os.utime(unrelated, (0, 0))
    run("--ckpt-update").assert_outcomes(passed=1)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["check-1", recent.name, unrelated.name])


COMPILED = """
import os
import keras


def test_compiled(ckpt_regression):
    block = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="a"), keras.layers.Dense(4, name="b")],
                             name="block")
    model = keras.Sequential([keras.Input((4,)), block, keras.layers.Dense(2, name="head")])
    if os.environ.get("VARIANT") == "frozen":
        block.layers[0].trainable = False
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    if os.environ.get("BUILT"):
        model.optimizer.build(model.trainable_variables)  # as a resumed training run has it
    ckpt_regression.check(model)
"""


@pytest.mark.parametrize("built", ["", "1"])
def test_a_compiled_models_golden_passes_as_built_and_a_freeze_change_that_skips_its_optimizer_fails(
        pytester, run, monkeypatch, built):
    monkeypatch.setenv("BUILT", built)
    pytester.makepyfile(test_compiled=COMPILED)
    run("--ckpt-update").assert_outcomes(passed=1)
    run().assert_outcomes(passed=1)  # nothing changed: passes, optimizer built or not
    result = run(variant="frozen")
    if not built:  # an unbuilt optimizer holds only its iterations and learning rate: nothing moves
        result.assert_outcomes(passed=1)
        return
    # One layer fewer to train: the optimizer has 4 variables fewer, Keras skips the golden's state.
    result.assert_outcomes(failed=1)
    report = "\n".join(failure_report(result))
    assert "Keras skips the golden's optimizer state" in report
    assert "optimizer variables that changed (" in report and "model variables that changed" not in report


PER_VARIABLE_FREEZE = """
import keras


def build():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    return keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(2)])


def test_frozen_kernel(ckpt_regression):
    model = build()
    model.layers[0].layers[0].kernel.trainable = False
    ckpt_regression.check(model, format="h5", masks="same")
"""


def test_masks_same_loads_a_per_variable_freeze_as_the_model_has_it(pytester, run):
    pytester.makepyfile(test_pv=PER_VARIABLE_FREEZE)
    run("--ckpt-update").assert_outcomes(passed=1)
    result = run()
    result.assert_outcomes(passed=1)


BUILT_BY_A_FIXTURE = """
import keras
import pytest


@pytest.fixture
def model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(2)])


def test_first():
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(2)])


def test_by_name(model, ckpt_regression):
    ckpt_regression.check(model, format="h5-by-name")
"""


def test_a_by_name_golden_of_a_fixtures_model_passes_under_k(pytester, run):
    pytester.makepyfile(test_fx=BUILT_BY_A_FIXTURE)
    run("--ckpt-update").assert_outcomes(passed=2)
    run().assert_outcomes(passed=2)
    run("-k", "by_name").assert_outcomes(passed=1, deselected=1)


def test_the_name_reset_hook_imports_no_framework(pytester):
    pytester.makepyfile(test_plain="""
        import sys

        def test_plain():
            assert "keras" not in sys.modules and "tensorflow" not in sys.modules
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_parametrize_ids_differing_in_case_get_their_own_goldens(pytester, run):
    pytester.makepyfile(test_case="""
        import keras
        import pytest

        @pytest.mark.parametrize("units", [2, 3], ids=["A", "a"])
        def test_ids(ckpt_regression, units):
            ckpt_regression.check(keras.Sequential([keras.Input((3,)), keras.layers.Dense(units)]))
    """)
    run("--ckpt-update").assert_outcomes(passed=2)
    run().assert_outcomes(passed=2)


def test_the_output_tolerance_follows_the_compute_dtype_the_depth_and_each_outputs_scale():
    import numpy as np

    from pytest_ckpt.checks.tolerance import ROUNDING_UNITS, output_tolerance, rounding_steps
    from pytest_ckpt.framework.tree import LayerTree

    plain = LayerTree(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    # One kernel of fan-in 4: 1 + ceil(log2(5)) roundings, plus the output's.
    assert rounding_steps(plain) == ("float32", float(np.finfo(np.float32).eps), 1 + 1 + 3)
    tolerance, why = output_tolerance(plain, {"output": np.array([[-10.0, 2.0]])}, None, None)
    relative = ROUNDING_UNITS * float(np.finfo(np.float32).eps) * 5
    assert tolerance["output"] == (relative, relative * 10.0) and "rounding steps" in why
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, dtype="mixed_bfloat16")(inputs)
    mixed = LayerTree(keras.Model(inputs, keras.layers.Dense(2)(hidden)))
    assert rounding_steps(mixed)[:2] == ("bfloat16", 2.0 ** -7)
    assert output_tolerance(plain, {"output": np.ones((1, 2))}, 0, 0) == ({"output": (0, 0)}, "as passed")


BFLOAT16_MODEL = """
import os
import keras


def test_model(ckpt_regression):
    keras.utils.set_random_seed(0)
    activation = "relu" if os.environ.get("VARIANT") == "relu" else None
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, dtype="bfloat16", activation=activation)(inputs)
    ckpt_regression.check(keras.Model(inputs, keras.layers.Dense(3, dtype="bfloat16")(hidden)))
"""


def test_a_bfloat16_golden_checks_its_outputs_and_catches_a_changed_computation(pytester, run):
    # NumPy stores bfloat16 as raw bytes in .npz: the outputs are kept as float32, which holds them exactly.
    pytester.makepyfile(test_bf16=BFLOAT16_MODEL)
    run("--ckpt-update").assert_outcomes(passed=1)
    run().assert_outcomes(passed=1)
    result = run(variant="relu")
    result.assert_outcomes(failed=1)
    assert "outputs differ from the golden's" in "\n".join(failure_report(result))


def test_a_failure_is_reported_once(pytester, golden, run):
    (golden / "checkpoint.weights.h5").write_bytes(b"garbage")
    result = run()
    result.assert_outcomes(failed=1)
    report = "\n".join(failure_report(result))  # the short summary repeats it when CI is set
    assert "During handling of the above exception" not in report
    assert report.count("does not match its manifest") == 1


@pytest.mark.parametrize("call, message", [
    ('format="bogus"', "format='bogus'"),
    ('values="bogus"', "values='bogus'"),
    ("examples=0", "examples=0"),
    ('masks="weird"', "masks='weird'"),
    ("rtol=-1", "rtol=-1"),
    ('atol=float("nan")', "atol=nan"),
])
@pytest.mark.parametrize("update", [False, True])
def test_bad_arguments_are_named_before_anything_else(pytester, run, call, message, update):
    pytester.makepyfile(test_args=f"""
        import keras

        def test_args(ckpt_regression):
            ckpt_regression.check(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), {call})
    """)
    result = run(*(["--ckpt-update"] if update else []))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*ckpt_regression.check: {message}*"])
    assert "no golden" not in result.stdout.str() and digest(pytester.path) == {}


def test_a_file_where_a_golden_folder_should_be_is_named(pytester, run):
    pytester.makepyfile(test_reg=MODEL)
    (pytester.path / "ckpt_golden").mkdir()
    (pytester.path / "ckpt_golden/test_reg").write_text("not a folder")
    for args in ((), ("--ckpt-update",)):
        result = run(*args)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"*{pytester.path / 'ckpt_golden/test_reg'} is a file, "
                                     "where the golden folder should be*"])


AS_FOUND = """
import os
import keras
import numpy as np


class Noisy(keras.layers.Layer):
    def call(self, x):
        return x + keras.random.normal(keras.ops.shape(x))  # unseeded: differs on every call


def build():
    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(0).normal(3, 2, (64, 3)).astype("float32"))
    look = keras.layers.StringLookup()
    look.adapt(np.array([["a"], ["b"], ["c"], ["a"]]))
    num = keras.Input((3,), name="num")
    tok = keras.Input((1,), dtype="string", name="tok")
    x = keras.layers.Concatenate()([norm(num), keras.layers.Flatten()(keras.layers.Embedding(5, 2)(look(tok)))])
    x = keras.layers.BatchNormalization()(keras.layers.Dense(4)(x))
    if os.environ.get("VARIANT") == "noisy":
        x = Noisy()(x)
    return keras.Model({"num": num, "tok": tok}, keras.layers.Dense(2)(x))


def test_left_as_found(ckpt_regression):
    model = build()
    probe = {"num": np.array([[1.0, 2.0, 3.0]], "float32"), "tok": np.array([["b"]])}
    before = keras.ops.convert_to_numpy(model(probe))
    flags = [layer.trainable for layer in model.layers]
    ckpt_regression.check(model, format=os.environ.get("FORMAT", "keras-weights"))
    assert np.array_equal(keras.ops.convert_to_numpy(model(probe)), before)
    assert [layer.trainable for layer in model.layers] == flags
"""


@needs_tensorflow_installed
@pytest.mark.parametrize("fmt", ["keras-weights", "keras"])
def test_the_model_is_left_exactly_as_found_by_an_update_and_by_a_check(pytester, run, monkeypatch, fmt):
    # Adapted Normalization (statistics cached beside its variables), StringLookup, BatchNorm.
    monkeypatch.setenv("FORMAT", fmt)
    pytester.makepyfile(test_found=AS_FOUND)
    run("--ckpt-update").assert_outcomes(passed=1)
    run().assert_outcomes(passed=1)


@needs_tensorflow_installed
def test_the_remedy_offers_an_update_only_when_a_fresh_golden_would_pass(pytester, run):
    pytester.makepyfile(test_found=AS_FOUND)
    run("--ckpt-update").assert_outcomes(passed=1)
    # A new layer with weights: a golden written now would pass, so an update is the remedy.
    changed = pytester.makepyfile(test_found=AS_FOUND.replace("keras.layers.Dense(4)(x)",
                                                               "keras.layers.Dense(4)(keras.layers.Dense(7)(x))"))
    assert changed
    result = run()
    result.assert_outcomes(failed=1)
    assert "accept it with pytest --ckpt-update" in "\n".join(failure_report(result))
    # Outputs that differ on every call: no golden can pass, and the remedy says so.
    pytester.makepyfile(test_found=AS_FOUND)
    result = run(variant="noisy")
    result.assert_outcomes(failed=1)
    report = "\n".join(failure_report(result))
    assert "an update would not help" in report and "--ckpt-update" not in report.split("remedy:")[1]
