"""The state-tree formats: Orbax directories (orbax, orbax-model) and the state tree itself.

Keras restores all three through ``Model.set_state_tree``, which matches by path inside the
trainable / non-trainable / optimizer group a variable was saved in and silently ignores what
it cannot match.  Each known-bad case here has its two-process plain-Keras truth in
``tests/test_truth.py`` (``tests/truth/roundtrip.py`` with the same format).
"""

import os
import subprocess
import sys

import hypothesis  # noqa: F401  (imported once here: pytester's in-process runs would re-import it)
import keras  # noqa: F401  (and JAX with it: a second import of jaxlib aborts the process)
import pytest

import pytest_ckpt.golden.check
import pytest_ckpt.search.driver  # noqa: F401
from pytest_ckpt.checks.comparison import Verdict
from pytest_ckpt.checks.resume import check_resume
from pytest_ckpt.checks.roundtrip import ModelPair, RoundTrip, check_format
from pytest_ckpt.framework.formats import FormatNotApplicable, get_format
from pytest_ckpt.report.diagnosis import diagnose
from pytest_ckpt.search.masks import FreezeMask
from tests.conftest import HAS_ORBAX, ROOT, needs_orbax

C = "tests.cases"
M = "pytest_ckpt.models"
GROUP_FORMATS = [pytest.param("orbax", marks=needs_orbax), "state-tree"]


@pytest.mark.parametrize("fmt", GROUP_FORMATS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_layer_frozen_on_one_side_is_silently_not_restored(fmt, seed):
    failure = check_format(f"{C}:prebuilt_optimizer_twin", fmt, examples=4, seed=seed).failure
    assert failure is not None
    assert Verdict.NOT_LOADED in failure.counts() and failure.load_error is None
    cause, remedy = diagnose(failure)
    assert "changed group" in cause and "silently ignores" in cause
    assert "freeze the same layers" in remedy


@pytest.mark.parametrize("fmt", GROUP_FORMATS)
def test_the_same_freeze_state_with_a_built_optimizer_survives(fmt):
    assert check_format(f"{C}:prebuilt_optimizer_twin", fmt, examples=3, seed=0, masks="same").passed


def unbuilt_round_trip(fmt, tmp_path):
    """compiled_twin (compile() alone: the optimizer unbuilt), nothing frozen, one round trip."""
    with ModelPair(f"{C}:compiled_twin") as pair:
        pair.fill()
        return RoundTrip(pair, fmt, tmp_path).run(FreezeMask.nothing(), FreezeMask.nothing())


@pytest.mark.parametrize("fmt", GROUP_FORMATS)
def test_an_unbuilt_optimizer_loses_its_state_without_a_warning(fmt, tmp_path):
    result = unbuilt_round_trip(fmt, tmp_path)
    slots = [o for o in result.outcomes if o.kind == "optimizer"]
    assert slots and {o.verdict for o in slots} == {Verdict.NOT_LOADED}
    assert not [o for o in result.outcomes if o.kind == "model"]
    cause, remedy = diagnose(result)
    assert "restores only variables that exist, silently" in cause and "model.optimizer.build" in remedy


@needs_orbax
def test_load_model_of_a_sequential_directory_restores_nothing_and_says_why():
    failure = check_format(f"{C}:compiled_twin", "orbax-model", examples=2, seed=0, masks="same").failure
    assert failure is not None and failure.facts.unmatched_paths
    assert {o.verdict for o in failure.outcomes} == {Verdict.CHANGED}
    cause, remedy = diagnose(failure)
    assert "saved variable paths do not exist" in cause and "format orbax" in remedy


@needs_orbax
def test_load_model_of_a_functional_directory_restores_everything():
    assert check_format(f"{M}:compiled_classic_functional", "orbax-model", examples=3, seed=0).passed


@pytest.mark.parametrize("fmt", GROUP_FORMATS)
def test_an_uncompiled_model_is_skipped_with_the_reason(fmt):
    with pytest.raises(FormatNotApplicable, match="not compiled"):
        check_format(f"{M}:classic_functional", fmt, examples=1, seed=0)


@pytest.mark.skipif(HAS_ORBAX, reason="orbax-checkpoint is installed here")
def test_the_orbax_formats_without_orbax_name_the_extra():
    with pytest.raises(FormatNotApplicable, match=r"pytest-ckpt\[orbax\]"):
        get_format("orbax")


@pytest.mark.parametrize("fmt", GROUP_FORMATS)
def test_resuming_from_the_same_freeze_state_equals_not_stopping(fmt):
    outcome = check_resume(f"{M}:fine_tuning_resumable", fmt, examples=2, seed=0, masks="same")
    assert outcome.failure is None, outcome.failure and outcome.failure.summary()


@pytest.mark.parametrize("fmt", GROUP_FORMATS)
def test_resuming_after_compile_alone_diverges_and_names_the_unbuilt_optimizer(fmt):
    outcome = check_resume(f"{M}:compiled_classic_functional", fmt, examples=1, seed=0, masks="same")
    assert outcome.failure is not None


@pytest.mark.parametrize("fmt", GROUP_FORMATS)
def test_nadams_automatic_name_is_the_saving_process_own_whatever_ran_before(fmt):
    # Nadam's product is keyed by its automatic name ("variable", counted per process): a
    # saving side named after every earlier check in this process was a false alarm.
    for factory in (f"{C}:nadam_unbuilt", f"{C}:nadam_prebuilt", f"{C}:nadam_unbuilt"):
        check_format(factory, "keras-weights", examples=1, seed=0, masks="same")
    assert check_format(f"{C}:nadam_prebuilt", fmt, examples=2, seed=0, masks="same").passed


@pytest.mark.parametrize("fmt", GROUP_FORMATS)
def test_the_unbuilt_optimizer_cause_says_what_came_back(fmt, tmp_path):
    result = unbuilt_round_trip(fmt, tmp_path)
    cause, remedy = diagnose(result)
    assert "iterations and the learning rate" in cause and "came back" in cause
    assert "orbax-model" not in remedy and "load_weights" not in remedy


@needs_orbax
def test_a_resume_from_a_directory_load_model_cannot_rebuild_blames_the_load_not_training():
    from pytest_ckpt.report.diagnosis import render_resume

    outcome = check_resume(f"{C}:prebuilt_optimizer_twin", "orbax-model", examples=1, seed=0, masks="same")
    assert outcome.failure is not None and outcome.failure.load_lost_state
    text = render_resume(outcome.failure)
    assert "two loads of the same checkpoint" in text and "not deterministic" not in text


# -- the inspector and goldens on Orbax directories -------------------------------------------------

ORBAX_FILES = """
import sys
import keras
from tests import cases
from pytest_ckpt.framework.formats import get_format

fmt = get_format("orbax")
model = cases.prebuilt_optimizer_twin()
fmt.save(model, sys.argv[1] + "/a")
fmt.save(model, sys.argv[1] + "/a")  # a second step: the latest is read
model = cases.prebuilt_optimizer_twin()
model.get_layer("block").get_layer("a").trainable = False
fmt.save(model, sys.argv[1] + "/b")
"""


def cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "pytest_ckpt", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)


@needs_orbax
def test_inspect_and_diff_read_the_latest_step_of_an_orbax_directory(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", ORBAX_FILES, str(tmp_path)], check=True, env=env, cwd=ROOT,
                   capture_output=True, timeout=600)
    shown = cli("inspect", tmp_path / "a")
    assert shown.returncode == 0, shown.stderr
    assert "format orbax" in shown.stdout
    assert "Orbax step 1, the latest of 1 (the one load_weights reads)" in shown.stdout
    assert "[trainable_variables]" in shown.stdout and "[optimizer_variables] optimizer state" in shown.stdout
    # a's two variables changed group between the saves: the state tree no longer matches them.
    diff = cli("diff", tmp_path / "a", tmp_path / "b")
    assert diff.returncode == 1, diff.stderr
    assert "trainable_variables/block/a/kernel" in diff.stdout
    assert "non_trainable_variables/block/a/kernel" in diff.stdout


@needs_orbax
def test_the_inspector_reads_the_step_keras_loads(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", ORBAX_FILES, str(tmp_path)], check=True, env=env, cwd=ROOT,
                   capture_output=True, timeout=600)
    step = tmp_path / "a" / "1"
    (step / "_CHECKPOINT_METADATA").unlink()  # Keras's load takes the latest step by its name anyway
    (tmp_path / "a" / "007").mkdir()  # not a step name: Orbax writes 7
    shown = cli("inspect", tmp_path / "a")
    assert "Orbax step 1, the latest of 1" in shown.stdout, shown.stdout + shown.stderr
    uncommitted = tmp_path / "a" / "2.orbax-checkpoint-tmp"
    step.rename(uncommitted)
    refused = cli("inspect", uncommitted)
    assert refused.returncode == 2 and "an uncommitted Orbax step" in refused.stdout + refused.stderr


@needs_orbax
def test_a_half_written_orbax_step_is_named(tmp_path):
    step = tmp_path / "ckpt" / "0"
    step.mkdir(parents=True)
    (step / "_CHECKPOINT_METADATA").write_text("{}")
    shown = cli("inspect", tmp_path / "ckpt")
    assert shown.returncode != 0
    assert "Orbax step 0 has no pytree/_METADATA" in shown.stderr + shown.stdout


ORBAX_GOLDEN = """
import os
import keras

NAMED = os.environ.get("VARIANT") not in ("unnamed", "shifted")


def build():
    block = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="a"),
                              keras.layers.Dense(4, name="b")], name="block")
    model = keras.Sequential([keras.Input((4,)), block, keras.layers.Dense(2, name="head")],
                             name="model" if NAMED else None)
    model.compile(optimizer=keras.optimizers.Adam(name="adam" if NAMED else None), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_model(ckpt_regression):
    if os.environ.get("VARIANT") == "shifted":  # as a process that built another model first
        build()
    model = build()
    if os.environ.get("VARIANT") == "frozen":
        model.get_layer("block").get_layer("a").trainable = False
    ckpt_regression.check(model, format="orbax")
"""


@pytest.fixture
def orbax_loaded():
    """Orbax imported before pytester snapshots the modules, as keras is above."""
    import orbax.checkpoint  # noqa: F401


@needs_orbax
@pytest.mark.usefixtures("orbax_loaded")
def test_an_orbax_golden_is_one_packed_folder_and_catches_a_changed_freeze_state(pytester, monkeypatch):
    pytester.makepyfile(test_reg=ORBAX_GOLDEN)

    def run(*args, variant="base"):
        monkeypatch.setenv("VARIANT", variant)
        return pytester.runpytest_inprocess("-p", "no:cacheprovider", "--hypothesis-seed=7",
                                            "--ckpt-examples=2", *args)

    run("--ckpt-update").assert_outcomes(passed=1)
    folder = pytester.path / "ckpt_golden/test_reg/test_model/check-1"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.tar", "manifest.txt", "outputs.npz"]
    manifest = (folder / "manifest.txt").read_text()
    assert "format: orbax" in manifest and "checkpoint: checkpoint.tar" in manifest
    assert "trainable_variables/block/a/kernel\t4x4\tfloat32" in manifest
    run().assert_outcomes(passed=1)
    # Frozen at load: set_state_tree finds a's variables in another group and skips them.
    frozen = run(variant="frozen")
    frozen.assert_outcomes(failed=1)
    frozen.stdout.fnmatch_lines(["*golden checkpoint check failed*",
                                 "*non_trainable_variables/block/a/kernel*",
                                 "*cause:*2 variables changed trainable group since the golden was written*"])
    # A tampered archive is named, not unpacked.
    (folder / "checkpoint.tar").write_bytes(b"not a tar")
    damaged = run()
    damaged.assert_outcomes(failed=1)
    damaged.stdout.fnmatch_lines(["*checkpoint.tar does not match its manifest*"])


@needs_orbax
@pytest.mark.usefixtures("orbax_loaded")
def test_an_orbax_golden_of_an_auto_named_model_says_the_paths_depend_on_the_process(pytester, monkeypatch):
    pytester.makepyfile(test_reg=ORBAX_GOLDEN)
    monkeypatch.setenv("VARIANT", "unnamed")
    args = ("-p", "no:cacheprovider", "--hypothesis-seed=7", "--ckpt-examples=2")
    pytester.runpytest_inprocess(*args, "--ckpt-update").assert_outcomes(passed=1)
    pytester.runpytest_inprocess(*args).assert_outcomes(passed=1)
    # Built after another model: the automatic names moved on (sequential_1, adam_1).
    monkeypatch.setenv("VARIANT", "shifted")
    result = pytester.runpytest_inprocess(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cause:*differ only by Keras's automatic name counters*",
                                 "*remedy: name the model, its nested models and layers, and its optimizer*"])
