"""Optimizer state in round trips, and resume equivalence, with real Keras files.

The loading model is the factory's as returned: an optimizer left unbuilt by compile() meets
load_weights unbuilt, and Keras skips its saved state (tests/truth/README.md).
"""

import pytest

from pytest_ckpt import models
from pytest_ckpt.checks.comparison import NOT_LOADED, SWAPPED
from pytest_ckpt.checks.resume import NotCompiled, check_resume
from pytest_ckpt.checks.roundtrip import ModelPair, RoundTrip, check_format
from pytest_ckpt.report.diagnosis import diagnose, render, render_resume
from pytest_ckpt.search.masks import FreezeMask
from tests.conftest import BACKEND, ON_TENSORFLOW, needs_tensorflow_backend

C = "tests.cases"
NOTHING = FreezeMask.nothing()


@pytest.fixture(scope="module")
def twin():
    with ModelPair(f"{C}:compiled_twin") as pair:
        pair.fill()
        yield pair


@pytest.fixture(scope="module")
def built_twin():
    with ModelPair(f"{C}:prebuilt_compiled_twin") as pair:
        pair.fill()
        yield pair


def masks(pair, *names):
    return FreezeMask.from_names(pair.saver, names)


@pytest.mark.parametrize("fmt", ["keras-weights", "keras", "keras-sharded"])
def test_an_optimizer_compile_left_unbuilt_loses_its_saved_state_whatever_is_frozen(twin, fmt, tmp_path):
    result = RoundTrip(twin, fmt, tmp_path).run(NOTHING, NOTHING)
    assert {(o.kind, o.verdict) for o in result.outcomes} == {("optimizer", NOT_LOADED)}
    assert any("Skipping variable loading for optimizer" in w for w in result.warnings)
    cause, remedy = diagnose(result)
    assert "was not built when the checkpoint was loaded" in cause
    assert "model.optimizer.build(model.trainable_variables)" in remedy and "load_model" in remedy
    assert "optimizer variables did not survive" in render(result)


@needs_tensorflow_backend
def test_a_checkpoint_restores_an_optimizer_built_after_the_load_by_position(twin, tmp_path):
    # tf.train.Checkpoint restores the slots when the first step builds the optimizer: by
    # position, so with b frozen at save and a at load, a's slots land in b's, silently.
    assert RoundTrip(twin, "tf-checkpoint", tmp_path).run(NOTHING, NOTHING).ok
    result = RoundTrip(twin, "tf-checkpoint", tmp_path).run(masks(twin, "block/b"), masks(twin, "block/a"))
    swapped = {o.display: o.source_display for o in result.outcomes if o.verdict == SWAPPED}
    assert swapped == {"block/b/kernel momentum": "block/a/kernel momentum",
                       "block/b/kernel velocity": "block/a/kernel velocity",
                       "block/b/bias momentum": "block/a/bias momentum",
                       "block/b/bias velocity": "block/a/bias velocity"}
    assert "by position in the list of trainable variables" in diagnose(result)[0]


@pytest.mark.parametrize("fmt", ["keras-weights", "keras"] + (["tf-checkpoint"] if ON_TENSORFLOW else []))
def test_an_optimizer_built_before_the_load_keeps_every_variable_whatever_is_frozen(built_twin, fmt, tmp_path):
    # Truth (tests/test_truth.py): its slot set is fixed when it is built, so Keras restores
    # it by position in that one list.
    assert RoundTrip(built_twin, fmt, tmp_path).run(masks(built_twin, "block/b"), masks(built_twin, "block/a")).ok
    assert check_format(f"{C}:prebuilt_compiled_twin", fmt, examples=3, seed=0).passed


def test_load_model_builds_its_optimizer_for_what_is_trainable_in_the_file(built_twin, tmp_path):
    # Saved with b frozen by an optimizer built for every variable: load_model builds one for
    # what the file has trainable (fewer variables), and Keras skips the saved state.
    result = RoundTrip(built_twin, "keras-model", tmp_path).run(masks(built_twin, "block/b"), NOTHING)
    assert result.outcomes and {o.kind for o in result.outcomes} == {"optimizer"}
    assert "built for another set of variables" in diagnose(result)[0]


def test_load_model_restores_flags_then_optimizer(twin, tmp_path):
    assert RoundTrip(twin, "keras-model", tmp_path).run(masks(twin, "block/b"), masks(twin, "block/a")).ok


def test_legacy_h5_restores_no_optimizer_state(built_twin, tmp_path):
    result = RoundTrip(built_twin, "h5", tmp_path).run(NOTHING, NOTHING)
    assert {o.verdict for o in result.outcomes} == {NOT_LOADED}
    assert all(o.kind == "optimizer" for o in result.outcomes)
    assert "restores the model's weights only" in diagnose(result)[0]


@pytest.mark.parametrize("seed", range(3))
def test_compiled_nested_model_fails_on_every_seed(seed):
    failure = check_format(f"{C}:compiled_twin", "keras-weights", examples=3, seed=seed).failure
    assert failure is not None and any(o.kind == "optimizer" for o in failure.outcomes)


def test_resume_of_a_safe_setup_equals_not_stopping():
    assert check_resume(f"{C}:prebuilt_compiled_twin", "keras-weights", examples=3, seed=0).passed
    assert check_resume(f"{C}:compiled_functional", "keras-model", examples=3, seed=0).passed


def test_resume_after_the_optimizer_was_skipped_diverges_and_says_where():
    failure = check_resume(f"{C}:compiled_twin", "keras-weights", examples=3, seed=0).failure
    assert failure.divergence is not None and failure.divergence.step == 1
    text = render_resume(failure)
    assert "resumed training differs from training that never stopped" in text
    assert "first difference: after resumed step 1 of 3" in text
    assert "was not built when the checkpoint was loaded" in text


@needs_tensorflow_backend
def test_resume_after_a_slot_transplant_names_the_transplant():
    scenario = (["block/b"], ["block/a"])  # same count trainable: slots moved when the optimizer is built
    failure = check_resume(f"{C}:compiled_twin", "tf-checkpoint", examples=1, scenario=scenario).failure
    assert failure is not None and not failure.warnings
    assert "moved each slot to another variable" in render_resume(failure)


def test_resume_from_legacy_h5_loses_the_optimizer():
    failure = check_resume(f"{C}:prebuilt_compiled_twin", "h5", examples=3, seed=0).failure
    assert failure is not None and "restores the model's weights only" in render_resume(failure)


def test_fine_tuning_story_resumes_only_with_a_built_optimizer_and_the_phase_one_freeze_state():
    same = (["resnet_small"], ["resnet_small"])
    assert check_resume(models.fine_tuning_resumable, "keras-weights", examples=1, scenario=same).passed
    failure = check_resume(models.fine_tuning, "keras-weights", examples=1, scenario=same).failure
    assert failure is not None and "was not built when the checkpoint was loaded" in render_resume(failure)
    unfreeze_top = (["resnet_small"], models.FINE_TUNING_PHASE_TWO_FROZEN)
    failure = check_resume(models.fine_tuning_resumable, "keras-weights", examples=1, scenario=unfreeze_top).failure
    # The optimizer built for phase one cannot train what phase two unfroze: Keras refuses it.
    assert failure is not None and failure.train_error is not None
    assert "Unknown variable" in failure.train_error[1] or "1:1" in failure.train_error[1]


def test_an_uncompiled_model_cannot_be_resumed():
    with pytest.raises(NotCompiled, match="not compiled"):
        check_resume("pytest_ckpt.models:swap_prone_nested", "keras-weights", examples=1)


def test_data_that_the_model_cannot_train_on_is_one_clear_error():
    import numpy as np

    from pytest_ckpt.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data must be a list of at least 6 \(x, y\) batches"):
        check_resume(f"{C}:compiled_twin", "keras-weights", examples=1, steps=3, batches=[(1, 2)])
    wrong_shape = [(np.ones((2, 7), "float32"), np.ones((2, 2), "float32"))] * 6
    with pytest.raises(ConfigError, match="data: the model cannot train on the first"):
        check_resume(f"{C}:compiled_twin", "keras-weights", examples=1, steps=3, batches=wrong_shape)


def test_your_own_data_is_used_when_it_trains():
    from pytest_ckpt.checks.resume import synthetic_batches
    from tests import cases

    data = synthetic_batches(cases.prebuilt_compiled_twin(), 6)
    outcome = check_resume(f"{C}:prebuilt_compiled_twin", "keras-weights", examples=1, steps=3, batches=data)
    assert outcome.passed


def test_training_that_blows_up_is_named_not_called_a_divergence():
    # Both runs reach NaN alike: they "agree" whatever the checkpoint restored, which proves nothing.
    failure = check_resume(f"{C}:exploding_training", "keras-model", examples=1, seed=0, masks="same").failure
    assert failure is not None and failure.blew_up is not None and failure.divergence is None
    report = render_resume(failure)
    assert "reached NaN or inf" in report and "blow up" in report


@pytest.mark.skipif(BACKEND == "jax", reason="JAX refuses unseeded random ops inside a traced step: "
                                             "such a model cannot train there at all")
def test_training_that_is_not_deterministic_is_named_not_blamed_on_the_checkpoint():
    failure = check_resume(f"{C}:unseeded_noise", "keras-weights", examples=1, seed=0).failure
    assert failure is not None and failure.nondeterministic
    text = render_resume(failure)
    assert "training is not deterministic" in text and "SeedGenerator" in text
    assert "does not carry all the state" not in text


@needs_tensorflow_backend
def test_a_train_step_written_as_the_guide_writes_it_resumes_exactly():
    # fit() hands train_step (x, y); the check once used train_on_batch, which hands (x, y, None).
    assert check_resume("tests.cases_tf:guide_train_step", "keras-weights", examples=1, seed=0).passed


def test_no_resume_pair_leaves_nothing_trainable():
    from pytest_ckpt.checks.resume import _has_trainable
    from pytest_ckpt.framework.tree import LayerTree
    from tests import cases

    tree = LayerTree(cases.compiled_twin())
    assert not _has_trainable(tree)(FreezeMask.from_paths(tree, [()]))
    outcome = check_resume(f"{C}:compiled_twin", "keras-model", examples=3, seed=0)
    assert outcome.passed  # every pair it ran trained something


@pytest.mark.parametrize("fmt", ["model-checkpoint", "backup-and-restore"])
def test_training_callbacks_resume_as_if_never_stopped(fmt):
    from pytest_ckpt.checks.resume import check_resume

    outcome = check_resume("pytest_ckpt.models:fine_tuning_resumable", fmt, examples=2, seed=0, masks="same")
    assert outcome.failure is None, outcome.failure and outcome.failure.summary()


# BackupAndRestore restores where training stands: fit then goes on from the epoch it saved.
# Truth: tests/truth/resume.py with the same formats (tests/test_truth.py).
@pytest.mark.parametrize("seed", [0, 1])
def test_an_epoch_counter_left_behind_is_caught_before_any_step(seed):
    from pytest_ckpt.checks.resume import check_resume
    from pytest_ckpt.report.diagnosis import render_resume

    outcome = check_resume("pytest_ckpt.models:fine_tuning_resumable", "tests.user_formats:WeightsOnlyBackup",
                           examples=2, seed=seed, masks="same")
    failure = outcome.failure
    assert failure is not None and failure.epoch_mismatch == (None, 1)
    text = render_resume(failure)
    assert "fit should go on from epoch 1; after the load it goes on from its initial_epoch" in text
    assert "restore the training metadata with the weights" in text


def test_a_freeze_change_under_backup_and_restore_is_not_blamed_on_an_unbuilt_optimizer():
    # BackupAndRestore builds the optimizer before it loads: what skips the saved state is the
    # changed trainable set (Keras counts the optimizer's variables and finds fewer).
    failure = check_resume(f"{C}:compiled_twin", "backup-and-restore", examples=1,
                           scenario=([], ["block/a"])).failure
    assert failure is not None and not failure.optimizer_unbuilt_at_load
    text = render_resume(failure)
    assert "was not built when the checkpoint was loaded" not in text
    assert "a different set of variables is trainable at load than at save" in text


@pytest.mark.parametrize("seed", [0, 1])
def test_a_resumed_fit_that_trains_nothing_is_not_a_pass(seed):
    from pytest_ckpt.checks.resume import check_resume
    from pytest_ckpt.report.diagnosis import render_resume

    outcome = check_resume("pytest_ckpt.models:fine_tuning_resumable", "tests.user_formats:UndeclaredBackup",
                           examples=2, seed=seed, masks="same")
    failure = outcome.failure
    assert failure is not None and failure.steps_run == 0 and failure.divergence is None
    assert "the resumed fit trained 0 of the" in render_resume(failure)
