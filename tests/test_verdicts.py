"""Known-bad cases fail with the right diagnosis on every seed; known-good ones pass.

Each case's truth comes from a plain-Keras script (tests/truth/); these run
the engine in-process, at 3 examples, to show that the fixed mask pairs
catch the classic bugs whatever Hypothesis draws.
"""

import pytest

from pytest_ckpt.checks.comparison import NOT_LOADED, OUTPUTS_DIFFER, SWAPPED
from pytest_ckpt.checks.isolation import Isolation
from pytest_ckpt.checks.roundtrip import check_format
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.report.diagnosis import diagnose, render
from tests.conftest import ON_TENSORFLOW, needs_tensorflow_backend, needs_tensorflow_installed

M = "pytest_ckpt.models"
C = "tests.cases"
SEEDS = range(5)


def check(factory, fmt, seed=0, **kw):
    return check_format(factory, fmt, examples=3, seed=seed, **kw)


# The deep case costs 10 s a seed (a loading process builds it per example):
# one seed here, the other four in the slow step.
@pytest.mark.parametrize("factory, seed", [
    *((factory, seed) for factory in (f"{M}:swap_prone_nested", f"{C}:nested_same_shaped",
                                      f"{C}:shared_top_and_nested") for seed in SEEDS),
    *(pytest.param(f"{C}:twins_after_many_blocks", seed, marks=[pytest.mark.slow] if seed >= 1 else [])
      for seed in SEEDS)])
def test_nested_same_shaped_pair_is_a_silent_swap_under_h5_on_every_seed(factory, seed):
    outcome = check(factory, "h5", seed)
    failure = outcome.failure
    assert failure is not None and failure.load_error is None
    assert failure.counts() == {SWAPPED: 4}
    # Minimal by construction: one layer frozen on one side, nothing on the other.
    assert sorted([len(failure.save_mask.frozen), len(failure.load_mask.frozen)]) == [0, 1]
    assert "by position" in diagnose(failure)[0]


@pytest.mark.parametrize("factory", ["classic_nested", "deep_nested", "shared_layer", "attention_model"])
def test_nested_models_fail_under_h5(factory):
    assert not check(f"{M}:{factory}", "h5").passed


@pytest.mark.parametrize("fmt", ["keras-weights", "keras", "keras-sharded", "keras-model"] +
                         (["tf-checkpoint"] if ON_TENSORFLOW else []))
def test_nested_twins_survive_formats_that_key_by_path(fmt):
    assert check(f"{M}:swap_prone_nested", fmt).passed


def test_a_wrapper_layer_under_h5_fails_without_advice_to_drop_nested_models():
    failure = check(f"{C}:bidirectional_lstm", "h5").failure
    assert failure is not None
    cause, remedy = diagnose(failure)
    assert "by position" in cause and "functional API" not in remedy and "keras-weights" in remedy


def test_same_masks_at_save_and_load_survive_h5():
    assert check(f"{M}:swap_prone_nested", "h5", masks="same").passed


def test_flat_functional_model_survives_h5():
    assert check(f"{M}:classic_functional", "h5").passed


def test_auto_named_flat_model_survives_h5_by_name_as_across_processes():
    assert check(f"{C}:two_dense_auto_named", "h5-by-name").passed


def test_a_reused_backbone_is_checked_in_a_fresh_process_and_refused_in_one():
    # Truth (tests/truth/README.md): in two processes legacy h5 swaps 4 of 6 variables.
    assert check(f"{C}:reused_backbone", "h5").failure.counts() == {SWAPPED: 4}
    assert check(f"{C}:reused_backbone", "keras-weights").passed
    # In one process both builds share the backbone: no honest round trip is possible.
    with pytest.raises(FactoryError, match="share layer"):
        check(f"{C}:reused_backbone", "h5", isolation=Isolation.INLINE)


@needs_tensorflow_backend
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_statistics_cached_at_adapt_are_not_restored_by_tf_checkpoint(seed):
    failure = check(f"{C}:adapted_normalization", "tf-checkpoint", seed).failure
    assert failure is not None and set(failure.counts()) == {OUTPUTS_DIFFER}
    assert not failure.outcomes  # every variable survived: the outputs tell
    assert "max |difference|" in render(failure)


@pytest.mark.parametrize("factory, fmt", [
    (f"{C}:adapted_normalization", "keras-weights"),
    (f"{C}:adapted_normalization", "h5"),
    pytest.param(f"{C}:fixed_normalization", "tf-checkpoint", marks=needs_tensorflow_backend),
    pytest.param(f"{C}:fixed_string_lookup", "keras-weights", marks=needs_tensorflow_installed),
    pytest.param(f"{C}:adapted_string_lookup", "keras-model", marks=needs_tensorflow_installed),
    (f"{C}:data_dependent_constant", "keras-model"),
    (f"{C}:fixed_discretization", "keras-weights"),
    (f"{C}:bfloat16_dense", "keras-weights"),
    (f"{C}:declared_wider_than_stored", "keras-weights"),
    (f"{C}:declared_wider_than_stored", "keras"),
])
def test_state_outside_variables_that_is_restored_or_identical_passes(factory, fmt):
    outcome = check(factory, fmt)
    assert outcome.passed and outcome.outputs_note is None


@pytest.mark.parametrize("fmt", ["keras-weights", "keras", "h5"])
def test_a_constant_that_differs_between_builds_is_caught_on_every_backend(fmt):
    failure = check(f"{C}:data_dependent_constant", fmt).failure
    assert failure is not None and set(failure.counts()) == {OUTPUTS_DIFFER}
    assert "state outside the variables" in diagnose(failure)[0]


def test_bfloat16_outputs_that_differ_between_builds_are_caught_on_every_backend():
    failure = check(f"{C}:bfloat16_data_dependent_constant", "keras-weights").failure
    assert failure is not None and set(failure.counts()) == {OUTPUTS_DIFFER}


@needs_tensorflow_installed  # Keras's Discretization.adapt() runs on tf.data
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_bin_boundaries_that_differ_between_builds_are_caught_by_a_probe_of_many_samples(seed):
    failure = check(f"{C}:adapted_discretization", "keras-weights", seed).failure
    assert failure is not None and set(failure.counts()) == {OUTPUTS_DIFFER}


@needs_tensorflow_installed
@pytest.mark.parametrize("fmt", ["keras-weights", "h5"] + (["tf-checkpoint"] if ON_TENSORFLOW else []))
def test_a_vocabulary_that_differs_between_builds_is_never_restored_by_load_weights(fmt):
    failure = check(f"{C}:adapted_string_lookup", fmt).failure
    assert failure is not None and set(failure.counts()) == {OUTPUTS_DIFFER}


def test_forgotten_int8_variable_late_in_a_long_model_is_not_loaded():
    failure = check(f"{C}:forgetful_int8_late", "keras-weights").failure
    assert [(o.display.rsplit("/", 1)[-1], o.dtype, o.verdict) for o in failure.outcomes] == \
        [("counter", "int8", NOT_LOADED)]


@needs_tensorflow_backend
def test_slots_that_share_a_name_are_told_apart_by_the_variable_they_serve():
    # Both towers' kernels are "proj/kernel": Keras names both momentum slots
    # "proj_kernel_momentum".  tf.train.Checkpoint restores an optimizer built after the
    # load by position (truth: tests/truth/README.md), so tower_b's slots land in tower_a's.
    from tests.test_truth import roundtrip_towers

    failure = roundtrip_towers("tower_a", "tower_b", "tf-checkpoint")
    assert {(o.display, o.verdict, o.source_display) for o in failure.outcomes} == {
        ("tower_a/proj/kernel momentum", SWAPPED, "tower_b/proj/kernel momentum"),
        ("tower_a/proj/bias momentum", SWAPPED, "tower_b/proj/bias momentum")}
    # load_model puts every slot back where it was, however the towers are named after the load.
    assert check(f"{C}:same_named_towers", "keras-model").passed


@pytest.mark.parametrize("fmt", ["keras-weights", "keras"])
def test_an_unregistered_optimizer_subclass_and_schedule_are_checked_like_any_optimizer(fmt):
    # Fresh copies (each save, each load as compile() leaves it) are made with the class's own
    # from_config and the schedule object: the check runs, and finds what plain Keras does.
    assert check(f"{C}:prebuilt_custom_optimizer_and_schedule", fmt).passed
    failure = check(f"{C}:custom_optimizer_and_schedule", fmt, masks="same").failure
    assert failure is not None and {o.kind for o in failure.outcomes} == {"optimizer"}
    assert "was not built when the checkpoint was loaded" in diagnose(failure)[0]


@needs_tensorflow_backend
def test_slots_of_a_multi_optimizer_are_told_apart_too():
    # Truth (tests/truth/same_named_slots.py): restored on creation, a MultiOptimizer's inner
    # optimizers get nothing back (tower_a's slots do not receive tower_b's momentum).
    from pytest_ckpt import FreezeMask, roundtrip
    from pytest_ckpt.framework.tree import LayerTree
    from tests import cases

    tree = LayerTree(cases.multi_optimizer_towers())
    failure = roundtrip(f"{C}:multi_optimizer_towers", "tf-checkpoint", FreezeMask.from_names(tree, ["tower_a"]),
                        FreezeMask.from_names(tree, ["tower_b"]))
    assert {o.verdict for o in failure.outcomes} == {NOT_LOADED}
    assert {o.display for o in failure.outcomes} == {"iteration", "learning_rate"}
    assert "moved each slot" not in diagnose(failure)[0]


@pytest.mark.parametrize("factory", ["plain_sgd_one_dense", "prebuilt_loss_scale_with_schedule",
                                     "prebuilt_adafactor"])
def test_optimizers_whose_own_variables_are_no_slots_pass_with_the_same_freeze_state(factory):
    # An optimizer's own variable list as long as the model's, LossScaleOptimizer's wrapped copy
    # and schedule, Adafactor's factored slots: none is taken for a per-variable slot list.
    assert check(f"{C}:{factory}", "keras-weights", masks="same").passed


def test_an_optimizer_that_cannot_be_copied_is_the_factorys_error_not_a_traceback():
    with pytest.raises(FactoryError, match=r"optimizer ScaledSGD could not be made with from_config"):
        check(f"{C}:optimizer_without_config", "keras-weights")


def test_an_unregistered_layer_under_keras_model_is_named_with_its_remedy():
    failure = check(f"{C}:unregistered_custom_layer", "keras-model").failure
    cause, remedy = diagnose(failure)
    assert "'UnregisteredDouble' is registered nowhere" in cause and "register_keras_serializable" in remedy
    assert check(f"{C}:unregistered_custom_layer", "keras-weights").passed  # load_weights needs no class
    failure = check(f"{C}:unregistered_custom_layer_compiled", "keras-model").failure
    assert "'UnregisteredDouble' is registered nowhere" in diagnose(failure)[0]


def test_bfloat16_under_h5_names_the_dtype_not_freeze_state():
    failure = check(f"{C}:bfloat16_dense", "h5").failure
    cause = diagnose(failure)[0]
    assert "dtype bfloat16" in cause and "freeze" not in cause
    assert check(f"{C}:bfloat16_dense", "keras-weights").passed


def test_a_save_that_is_not_deterministic_is_reported_as_such():
    outcome = check(f"{C}:glitchy_save", "keras-weights")
    assert outcome.failure is not None and outcome.not_reproducible
    text = render(outcome.failure, not_reproducible=True)
    assert "failed once, passed on replay" in text and "1 changed" in text


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_nested_vgg16_in_h5_leads_with_its_silent_swap_and_counts_the_loud_failures(seed):
    outcome = check(f"{C}:vgg16_nested", "h5", seed)
    failure = outcome.failure
    assert failure is not None and failure.silent, failure.summary()
    swapped = {o.key for o in failure.outcomes if o.verdict == SWAPPED}
    assert any("block5_conv2" in o.display for o in failure.outcomes if o.verdict == SWAPPED), swapped
    assert any("block5_conv3" in o.display for o in failure.outcomes if o.verdict == SWAPPED), swapped
    assert any(o.load_error for o in outcome.others), "the loud failures are counted beside it"
    assert "failed silently, the most dangerous way" in render(failure, others=outcome.others)
