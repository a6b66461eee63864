"""tf-keras (Keras 2) models, TF checkpoints and tf-keras -> Keras 3 migrations, end to end."""

import pytest

pytest.importorskip("tf_keras", reason="the tf-keras tests need tf-keras (pip install tf-keras)")

from pytest_ckpt import models, tf_keras_models
from pytest_ckpt.checks.comparison import OUTPUTS_DIFFER, SWAPPED
from pytest_ckpt.checks.roundtrip import ModelPair, RoundTrip, check_format
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.framework.detection import framework_from_source
from pytest_ckpt.framework.tree import LayerTree
from pytest_ckpt.search.masks import FreezeMask

SEED = "--hypothesis-seed=20261128"
TFK = "pytest_ckpt.tf_keras_models"
K3 = "pytest_ckpt.models"
NOTHING = FreezeMask.nothing()


def pair_of(factory, load_factory=None):
    pair = ModelPair(factory, load_factory=load_factory)
    pair.fill()
    return pair


def test_tf_keras_keys_are_stable_and_match_keras3_positions():
    a, b = LayerTree(tf_keras_models.classic_nested()), LayerTree(tf_keras_models.classic_nested())
    assert [e.key for e in a.variables()] == [e.key for e in b.variables()]
    k3 = LayerTree(models.classic_nested())
    assert [e.shape for e in a.variables()] == [e.shape for e in k3.variables()]


def test_framework_is_known_before_building():
    assert framework_from_source(TFK) == "tf-keras"
    assert framework_from_source(K3) == "keras3"
    assert framework_from_source("no.such.module") is None


def test_tf_keras_h5_silent_swap_and_tf_checkpoint_survives(tmp_path):
    pair = pair_of(tf_keras_models.swap_prone_nested)
    assert pair.framework == "tf-keras"
    first = FreezeMask.from_paths(pair.saver, [(1, 1)])
    swapped = RoundTrip(pair, "h5", tmp_path).run(first, NOTHING)
    assert swapped.load_error is None
    assert {o.verdict for o in swapped.outcomes} == {SWAPPED} and len(swapped.outcomes) == 4
    assert RoundTrip(pair, "tf-checkpoint", tmp_path).run(first, NOTHING).ok


def test_keras3_tf_checkpoint_survives_any_freeze_state(tmp_path):
    pair = pair_of(models.classic_nested)
    everything = FreezeMask.everything(pair.saver)
    assert RoundTrip(pair, "tf-checkpoint", tmp_path).run(everything, NOTHING).ok


def test_tf_keras_preprocessing_layers_are_checked_not_crashed():
    assert check_format("tests.cases_tf_keras:string_lookup", "h5", examples=3, seed=0).passed
    failure = check_format("tests.cases_tf_keras:adapted_string_lookup", "tf-checkpoint",
                           examples=3, seed=0).failure
    assert failure is not None and set(failure.counts()) == {OUTPUTS_DIFFER}


def test_tf_keras_by_name_loads_an_auto_named_model_as_a_fresh_process_would():
    assert check_format(f"{TFK}:classic_functional", "h5-by-name", examples=3, seed=0).passed


def test_a_legacy_optimizer_is_a_clear_factory_error_not_a_traceback():
    with pytest.raises(FactoryError, match="legacy optimizer"):
        check_format("tests.cases_tf_keras:legacy_optimizer", "tf-checkpoint", examples=2, seed=0)


def test_migration_with_different_architectures_lists_first_differences():
    with pytest.raises(FactoryError, match=r"do not build the same architecture; first differences: "
                                           r"\d+ variables vs \d+; #0: "):
        ModelPair(tf_keras_models.classic_functional, load_factory=models.swap_prone_nested)


def run_ids(result):
    out = {}
    for line in result.outlines:
        if line.startswith("ckpt-") and (" PASSED" in line or " FAILED" in line or " SKIPPED" in line):
            out[line.split(" ")[0]] = line.split(" ")[1]
    return out


def test_tf_keras_and_migrations_end_to_end(pytester, project_on_path):
    pytester.makeini(f"""
        [pytest]
        ckpt_models =
            {TFK}:classic_nested
            {TFK}:swap_prone_nested
            {TFK}:classic_functional
        ckpt_migrations =
            {TFK}:classic_functional -> {K3}:classic_functional
        ckpt_formats = h5, tf-checkpoint, keras-weights
        ckpt_examples = 5
    """)
    result = pytester.runpytest_subprocess("--ckpt-roundtrip", "-v", "-p", "no:cacheprovider", SEED)
    got = run_ids(result)
    mig = f"ckpt-migration::{TFK}:classic_functional::{K3}:classic_functional::h5"
    assert got == {
        f"ckpt-roundtrip::{TFK}:classic_nested::h5": "FAILED",
        f"ckpt-roundtrip::{TFK}:classic_nested::tf-checkpoint": "PASSED",
        f"ckpt-roundtrip::{TFK}:swap_prone_nested::h5": "FAILED",
        f"ckpt-roundtrip::{TFK}:swap_prone_nested::tf-checkpoint": "PASSED",
        f"ckpt-roundtrip::{TFK}:classic_functional::h5": "PASSED",
        f"ckpt-roundtrip::{TFK}:classic_functional::tf-checkpoint": "PASSED",
        mig: "PASSED",  # tf-checkpoint and keras-weights are not read by both frameworks
    }
    # keras-weights is not collected for tf-keras factories, and the run says so.
    result.stdout.fnmatch_lines(["*--ckpt-formats: keras-weights do(es) not apply to tf-keras model "
                                 f"factory {TFK}:classic_nested on the tensorflow backend; formats "
                                 "for it: keras-model, h5, h5-by-name, tf-checkpoint*"])
    result.stdout.fnmatch_lines(["checkpoint round trip failed: pytest_ckpt.tf_keras_models:swap_prone_nested",
                                 "*format:    h5 (tf-keras)*"])
    selected = pytester.runpytest_subprocess("--ckpt-roundtrip", "--collect-only", "-q",
                                             "-k", "ckpt-migration and h5")
    selected.stdout.fnmatch_lines([mig, "1/7 tests collected (6 deselected)*"])


def test_migration_fixture_reports_like_the_round_trip(pytester, project_on_path):
    pytester.makepyfile(test_port="""
        from pytest_ckpt import models, tf_keras_models

        def test_functional_port_is_clean(ckpt_migration):
            ckpt_migration.check(tf_keras_models.classic_functional, models.classic_functional,
                                 examples=3)

        def test_nested_port_under_h5(ckpt_migration):
            ckpt_migration.check(tf_keras_models.swap_prone_nested, models.swap_prone_nested,
                                 formats="h5", examples=3)

        def test_port_to_other_architecture(ckpt_migration):
            ckpt_migration.check(tf_keras_models.classic_functional, models.lstm_model)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", SEED)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random([
        f"checkpoint round trip failed: {TFK}:swap_prone_nested -> {K3}:swap_prone_nested",
        "*format:    h5 (tf-keras -> keras3)*",
        "*(4 swapped)*",
        f"*{TFK}:classic_functional -> {K3}:lstm_model do not build the same architecture; "
        "first differences: 32 variables vs 6*",
    ])


def test_factory_whose_framework_is_not_installed(pytester):
    # Shadow the installed tf-keras with one that cannot be imported, as on a
    # machine without it.
    pytester.mkpydir("tf_keras").joinpath("__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'tf_keras'\", name='tf_keras')\n")
    pytester.makepyfile(old_models="""
        import tf_keras

        def build():
            return tf_keras.Sequential([tf_keras.Input((3,)), tf_keras.layers.Dense(2)])
    """)
    pytester.makeini("[pytest]\nckpt_models = old_models:build\nckpt_formats = h5\n")
    result = pytester.runpytest_subprocess("--ckpt-roundtrip", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*model factory 'old_models:build': cannot import module "
                                 "'old_models': ModuleNotFoundError: No module named 'tf_keras'; "
                                 "this factory needs tf-keras: pip install tf-keras*"])
