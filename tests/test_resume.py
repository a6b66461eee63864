"""Optimizer state in round trips, and resume equivalence, with real Keras files."""

import pytest

from pytest_ckpt import models
from pytest_ckpt.comparison import NOT_LOADED, SWAPPED
from pytest_ckpt.engine import ModelPair, RoundTrip, check_format
from pytest_ckpt.masks import FreezeMask
from pytest_ckpt.report import diagnose, render, render_resume
from pytest_ckpt.resume import NotCompiled, check_resume

from tests.conftest import ON_TENSORFLOW

C = "tests.cases"
NOTHING = FreezeMask.nothing()


@pytest.fixture(scope="module")
def twin():
    pair = ModelPair(f"{C}:compiled_twin")
    pair.fill()
    return pair


def masks(pair, *names):
    return FreezeMask.from_names(pair.saver, names)


@pytest.mark.parametrize("fmt", ["keras-weights", "keras", "keras-sharded"])
def test_slots_are_transplanted_when_the_trainable_set_changes_but_not_its_size(twin, fmt, tmp_path):
    result = RoundTrip(twin, fmt, tmp_path).run(masks(twin, "block/b"), masks(twin, "block/a"))
    assert [o.kind for o in result.outcomes] == ["optimizer"] * 4
    swapped = {o.display: o.source_display for o in result.outcomes if o.verdict == SWAPPED}
    assert swapped == {"block/b/kernel momentum": "block/a/kernel momentum",
                       "block/b/kernel velocity": "block/a/kernel velocity",
                       "block/b/bias momentum": "block/a/bias momentum",
                       "block/b/bias velocity": "block/a/bias velocity"}
    assert "by position in the list of trainable variables" in diagnose(result)[0]


def test_optimizer_state_is_skipped_when_the_trainable_count_changes(twin, tmp_path):
    result = RoundTrip(twin, "keras-weights", tmp_path).run(NOTHING, masks(twin, "block/a"))
    assert any("Skipping variable loading for optimizer" in w for w in result.warnings)
    lost = {o.display for o in result.outcomes if o.verdict == NOT_LOADED}
    assert "iteration" in lost and "head/kernel momentum" in lost
    text = render(result)
    assert "optimizer variables did not survive" in text and "Keras warned: Skipping" in text
    assert "optimizer's saved state was skipped" in text


@pytest.mark.parametrize("fmt", ["keras-weights", "keras", "keras-model"] + (["tf-checkpoint"] if ON_TENSORFLOW else []))
def test_same_freeze_state_restores_every_optimizer_variable(twin, fmt, tmp_path):
    a = masks(twin, "block/a")
    assert RoundTrip(twin, fmt, tmp_path).run(a, a).ok


@pytest.mark.parametrize("fmt", ["keras-weights", "keras"])
def test_an_optimizer_the_factory_built_keeps_every_slot_whatever_is_frozen_later(fmt, tmp_path):
    # Truth (tests/test_truth.py): plain Keras restores all of it; the same
    # model with its optimizer left unbuilt loses it (the test above).
    assert check_format(f"{C}:prebuilt_optimizer_twin", fmt, examples=3, seed=0).passed
    pair = ModelPair(f"{C}:prebuilt_optimizer_twin")
    pair.fill()
    assert RoundTrip(pair, fmt, tmp_path).run(masks(pair, "block/b"), masks(pair, "block/a")).ok
    # ...with slots for the frozen layers too: 6 weights x (momentum, velocity) + iterations, rate.
    assert len(pair.loader.model.optimizer.variables) == 14


def test_load_model_restores_flags_then_optimizer(twin, tmp_path):
    assert RoundTrip(twin, "keras-model", tmp_path).run(masks(twin, "block/b"), masks(twin, "block/a")).ok


def test_legacy_h5_restores_no_optimizer_state(twin, tmp_path):
    result = RoundTrip(twin, "h5", tmp_path).run(NOTHING, NOTHING)
    assert {o.verdict for o in result.outcomes} == {NOT_LOADED}
    assert all(o.kind == "optimizer" for o in result.outcomes)
    assert "restores the model's weights only" in diagnose(result)[0]


@pytest.mark.parametrize("seed", range(3))
def test_compiled_nested_model_fails_with_independent_masks_on_every_seed(seed):
    failure = check_format(f"{C}:compiled_twin", "keras-weights", examples=3, seed=seed).failure
    assert failure is not None and any(o.kind == "optimizer" for o in failure.outcomes)


@pytest.mark.parametrize("fmt", ["keras-weights", "keras", "keras-model"])
def test_compiled_models_pass_with_the_same_masks(fmt):
    assert check_format(f"{C}:compiled_twin", fmt, examples=3, seed=0, masks="same").passed


def test_resume_of_a_safe_setup_equals_not_stopping():
    assert check_resume(f"{C}:compiled_twin", "keras-weights", examples=3, seed=0, masks="same").passed
    assert check_resume(f"{C}:compiled_functional", "keras-model", examples=3, seed=0).passed


def test_resume_after_the_optimizer_was_skipped_diverges_and_says_where():
    failure = check_resume(f"{C}:compiled_twin", "keras-weights", examples=3, seed=0).failure
    assert failure.divergence is not None and failure.divergence.step == 1
    text = render_resume(failure)
    assert "resumed training differs from training that never stopped" in text
    assert "first difference: after resumed step 1 of 3" in text and "optimizer" in text


def test_resume_after_a_slot_transplant_names_the_transplant():
    scenario = (["block/b"], ["block/a"])  # same count trainable: no warning, slots moved
    failure = check_resume(f"{C}:compiled_twin", "keras-weights", examples=1, scenario=scenario).failure
    assert failure is not None and not failure.warnings
    assert "moved each slot to another variable" in render_resume(failure)


def test_resume_from_legacy_h5_loses_the_optimizer():
    failure = check_resume(f"{C}:compiled_twin", "h5", examples=3, seed=0, masks="same").failure
    assert failure is not None and "restores the model's weights only" in render_resume(failure)


def test_fine_tuning_story_resumes_only_with_the_phase_one_freeze_state():
    unfreeze_top = (["resnet_small"], models.FINE_TUNING_PHASE_TWO_FROZEN)
    failure = check_resume(models.fine_tuning, "keras-weights", examples=1, scenario=unfreeze_top).failure
    assert failure is not None and "Skipping variable loading for optimizer" in render_resume(failure)
    same = (["resnet_small"], ["resnet_small"])
    assert check_resume(models.fine_tuning, "keras-weights", examples=1, scenario=same).passed


def test_an_uncompiled_model_cannot_be_resumed():
    with pytest.raises(NotCompiled, match="not compiled"):
        check_resume("pytest_ckpt.models:swap_prone_nested", "keras-weights", examples=1)


def test_data_that_the_model_cannot_train_on_is_one_clear_error():
    from pytest_ckpt.errors import ConfigError
    import numpy as np

    with pytest.raises(ConfigError, match=r"data must be a list of at least 6 \(x, y\) batches"):
        check_resume(f"{C}:compiled_twin", "keras-weights", examples=1, steps=3, batches=[(1, 2)])
    wrong_shape = [(np.ones((2, 7), "float32"), np.ones((2, 2), "float32"))] * 6
    with pytest.raises(ConfigError, match="data: the model cannot train on the first"):
        check_resume(f"{C}:compiled_twin", "keras-weights", examples=1, steps=3, batches=wrong_shape)


def test_your_own_data_is_used_when_it_trains():
    from pytest_ckpt.resume import synthetic_batches

    pair = ModelPair(f"{C}:compiled_twin")
    data = synthetic_batches(pair.saver.model, 6)
    outcome = check_resume(f"{C}:compiled_twin", "keras-weights", examples=1, steps=3, batches=data,
                           masks="same")
    assert outcome.passed


def test_training_that_blows_up_is_named_not_called_a_divergence():
    # Both runs reach NaN alike: they "agree" whatever the checkpoint restored, which proves nothing.
    failure = check_resume(f"{C}:exploding_training", "keras-weights", examples=1, seed=0, masks="same").failure
    assert failure is not None and failure.blew_up is not None and failure.divergence is None
    report = render_resume(failure)
    assert "reached NaN or inf" in report and "blow up" in report
