"""keras-hub presets (format keras-hub-preset): ``save_to_preset`` then ``ModelClass.from_preset``.

A preset rebuilds the model from its config and loads the weights by path, so freeze masks
cannot move weights; what a preset does not carry is training: ``from_preset`` compiles a
Task afresh without building its optimizer, so the optimizer state the preset's task weights
hold is skipped.  Each verdict has its two-process plain-Keras truth in ``tests/test_truth.py``.
"""

import pytest

from pytest_ckpt.checks.comparison import VariableKind
from pytest_ckpt.checks.outcomes import AdapterLoss
from pytest_ckpt.checks.roundtrip import check_format
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.framework.formats import FormatNotApplicable, get_format
from pytest_ckpt.report.diagnosis import diagnose
from tests.conftest import BACKEND, HAS_KERAS_HUB, needs_keras_hub

H = "tests.cases_hub"


@needs_keras_hub
@pytest.mark.parametrize("factory", ["bert_backbone", "bert_classifier_uncompiled"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_preset_keeps_every_weight_whatever_is_frozen(factory, seed):
    assert check_format(f"{H}:{factory}", "keras-hub-preset", examples=3, seed=seed).passed


@needs_keras_hub
@pytest.mark.parametrize("seed", [0, 1])
def test_a_compiled_task_loses_its_optimizer_state_and_the_cause_says_presets_ship_models(seed):
    failure = check_format(f"{H}:bert_classifier", "keras-hub-preset", examples=2, seed=seed,
                           masks="same").failure
    assert failure is not None and failure.load_error is None
    assert {o.kind for o in failure.outcomes} == {VariableKind.OPTIMIZER}
    cause, remedy = diagnose(failure)
    assert "ships a model, it does not resume training" in cause
    assert "compile=False" in remedy and "model.optimizer.build" in remedy


@needs_keras_hub
def test_a_plain_keras_model_is_skipped_with_the_reason():
    with pytest.raises(FormatNotApplicable, match="has no save_to_preset"):
        check_format("pytest_ckpt.models:classic_functional", "keras-hub-preset", examples=1, seed=0)


@pytest.mark.skipif(HAS_KERAS_HUB, reason="keras-hub is installed here")
def test_without_keras_hub_the_format_says_how_to_install_it():
    with pytest.raises(FormatNotApplicable, match="--no-deps keras-hub"):
        get_format("keras-hub-preset")


@needs_keras_hub
def test_a_preset_of_a_lora_backbone_rebuilds_it_without_adapters_and_says_so():
    failure = check_format(f"{H}:bert_backbone_lora", "keras-hub-preset", examples=1, seed=0,
                           masks="same").failure
    assert failure is not None and failure.load_error is not None
    assert "the load built a new model with other variables" in failure.load_error[1]
    assert failure.facts.lora  # the adapted query and value layers
    cause, remedy = diagnose(failure)
    assert "which the saved config does not record" in cause and "model factory" not in cause
    assert "save_lora_weights" in remedy


@needs_keras_hub
def test_keras_weights_of_a_lora_backbone_name_keras_hubs_own_adapter_files():
    failure = check_format(f"{H}:bert_backbone_lora", "keras-weights", examples=1, seed=0,
                           masks="same").failure
    assert failure is not None and failure.facts.lora
    cause, remedy = diagnose(failure)
    assert "merges the adapter into the kernel" in cause and "save_lora_weights" in remedy


# keras-hub's adapter files (format keras-hub-lora): save_lora_weights / load_lora_weights.
# The rest of the model reaches the loading model from the base both start from; the file
# must hold everything fine-tuning changes under the flags the factory (enable_lora) set.
# Truths: tests/truth/lora_adapters.py, which fine-tunes for real (test_truth.py).


@needs_keras_hub
@pytest.mark.parametrize("seed", [0, 1])
def test_an_adapter_file_holds_everything_lora_fine_tuning_changes(seed):
    outcome = check_format(f"{H}:bert_backbone_lora_frozen_biases", "keras-hub-lora", examples=3, seed=seed)
    assert outcome.passed and outcome.examples_run == 1  # one example: the factory's own flags


@needs_keras_hub
@pytest.mark.parametrize("seed", [0, 1])
def test_the_biases_enable_lora_leaves_trainable_are_not_in_the_adapter_file(seed):
    failure = check_format(f"{H}:bert_backbone_lora", "keras-hub-lora", examples=3, seed=seed).failure
    assert failure is not None and failure.load_error is None
    assert {(o.display.rsplit("/", 2)[-2:][1], o.verdict) for o in failure.outcomes} == {("bias", "not_loaded")}
    assert len(failure.outcomes) == 4  # query and value of both blocks
    cause, remedy = diagnose(failure)
    assert "not in the adapter file" in cause and "the adapted layers' biases" in cause
    assert "enable_lora leaves them trainable" in cause and "layer.bias.trainable = False" in remedy


@needs_keras_hub
def test_a_tasks_head_is_not_in_its_backbones_adapter_file():
    failure = check_format(f"{H}:bert_classifier_lora", "keras-hub-lora", examples=1, seed=0).failure
    assert failure is not None
    assert {(o.display, o.verdict) for o in failure.outcomes} == {("logits/kernel", "not_loaded"),
                                                                  ("logits/bias", "not_loaded")}
    cause, _ = diagnose(failure)
    assert "a task's head" in cause and "biases" not in cause


@needs_keras_hub
def test_adapters_keyed_by_layer_index_land_in_other_layers_when_a_process_orders_layers_otherwise():
    failure = check_format(f"{H}:set_ordered_lora", "keras-hub-lora", examples=1, seed=0).failure
    assert failure is not None and failure.outcomes
    assert {o.verdict for o in failure.outcomes} == {"swapped"}
    assert {o.display.split("/")[1] for o in failure.outcomes} == {"lora_kernel_a", "lora_kernel_b"}
    cause, _ = diagnose(failure)
    assert "restores the weights into other layers" in cause


@needs_keras_hub
@pytest.mark.parametrize("factory, why", [("bert_backbone", "has none: call backbone.enable_lora"),
                                          ("bert_classifier_uncompiled", "has none")])
def test_a_model_without_adapters_is_skipped_with_the_reason(factory, why):
    with pytest.raises(FormatNotApplicable, match=why):
        check_format(f"{H}:{factory}", "keras-hub-lora", examples=1, seed=0)


@needs_keras_hub
def test_checks_that_need_the_whole_state_refuse_an_adapter_file(tmp_path):
    from pytest_ckpt.checks.crash import check_crash
    from pytest_ckpt.checks.resume import check_resume
    from pytest_ckpt.errors import CkptError
    from pytest_ckpt.golden.check import write_golden
    from pytest_ckpt.golden.store import GoldenFolder
    from tests.cases_hub import bert_backbone_lora_frozen_biases

    with pytest.raises(FormatNotApplicable, match="killed-save check cannot read the whole state"):
        check_crash(f"{H}:bert_backbone_lora_frozen_biases", "keras-hub-lora", tmp_root=tmp_path)
    model = bert_backbone_lora_frozen_biases()
    with pytest.raises(CkptError, match="must be a format the golden check loads into the test's model"):
        write_golden(model, GoldenFolder(tmp_path / "golden"), "keras-hub-lora")
    with pytest.raises(FormatNotApplicable, match="a resume check cannot read the whole state"):
        check_resume(f"{H}:bert_backbone_lora_compiled", "keras-hub-lora", examples=1, seed=0, tmp_root=tmp_path)


@needs_keras_hub
def test_the_plugin_reports_an_adapter_file_that_drops_what_trains(pytester):
    pytester.makeini("[pytest]\nckpt_models =\n    tests.cases_hub:bert_backbone_lora\n"
                     "    tests.cases_hub:bert_backbone_lora_frozen_biases\n    pytest_ckpt.models:classic_functional\n"
                     "ckpt_formats = keras-hub-lora\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--ckpt-roundtrip", "-rs")
    result.assert_outcomes(failed=1, passed=1, skipped=1)
    text = result.stdout.str()
    assert "save mask: none drawn: the flags the factory set" in text
    assert "4 of 47 variables did not survive (4 not_loaded)" in text and "not in the adapter file" in text
    assert "classic_functional is a Functional, which has no save_lora_weights" in text



@needs_keras_hub
@pytest.mark.parametrize("factory, lost", [
    # a non-trainable cache that follows the adapters: seen only once they differ from it
    ("cached_merge_lora", {AdapterLoss.STATE: ["query/merged_cache"]}),
    # a running maximum that moves only on far-out data
    ("running_max_lora", {AdapterLoss.STATE: ["clip/amax"]}),
    ("unfrozen_statistics_lora", {AdapterLoss.STATE: ["bn/moving_mean", "bn/moving_variance"]}),
    ("pooler_adapted_by_hand_lora", {AdapterLoss.ADAPTER: ["pooled_dense/lora_kernel_a",
                                                           "pooled_dense/lora_kernel_b"]}),
    ("bert_classifier_frozen_head_lora", {AdapterLoss.OUTSIDE_BASE: ["logits/kernel", "logits/bias"]}),
])
def test_what_an_adapter_file_does_not_hold_is_found_and_named_by_why(factory, lost):
    failure = check_format(f"{H}:{factory}", "keras-hub-lora", examples=1, seed=0).failure
    assert failure is not None and failure.load_error is None
    assert {(o.display, o.verdict) for o in failure.outcomes} == {
        (name, "not_loaded") for names in lost.values() for name in names}
    assert failure.facts.adapter_losses == lost
    cause, _ = diagnose(failure)
    assert "not in the adapter file" in cause


@needs_keras_hub
@pytest.mark.parametrize("factory", ["one_query_lora", "frozen_statistics_lora"])
def test_an_adapter_file_of_a_model_where_only_adapters_train_passes(factory):
    assert check_format(f"{H}:{factory}", "keras-hub-lora", examples=1, seed=0).passed


@needs_keras_hub
@pytest.mark.skipif(BACKEND != "jax", reason="the factories' train_step has JAX's signature")
@pytest.mark.parametrize("factory", ["step_counting_lora", "loss_counting_lora"])
def test_state_only_a_models_own_training_code_advances_is_found_by_a_real_fit_step(factory):
    failure = check_format(f"{H}:{factory}", "keras-hub-lora", examples=1, seed=0).failure
    assert failure is not None and failure.facts.adapter_losses == {AdapterLoss.STATE: ["anneal/steps"]}


@needs_keras_hub
def test_own_training_code_the_check_cannot_run_uncompiled_is_skipped_with_the_reason():
    with pytest.raises(FormatNotApplicable, match=r"its own code .*train_step.* compile the model in the factory"):
        check_format(f"{H}:step_counting_uncompiled_lora", "keras-hub-lora", examples=1, seed=0)


@needs_keras_hub
def test_a_compiled_model_passes_on_its_weights_and_says_the_optimizer_is_not_in_the_file():
    outcome = check_format(f"{H}:bert_backbone_lora_compiled", "keras-hub-lora", examples=1, seed=0)
    assert outcome.passed
    assert [why for what, why in outcome.excluded if what == "the optimizer's state"] == [
        "format keras-hub-lora ships adapters: it never holds the optimizer's state, so it cannot resume "
        "training (a resume check refuses it)"]


@needs_keras_hub
def test_an_embedding_adapter_save_lora_weights_cannot_save_is_named():
    failure = check_format(f"{H}:embedding_adapted_lora", "keras-hub-lora", examples=1, seed=0).failure
    assert failure is not None and failure.save_error is not None
    assert failure.facts.unsavable_adapters == ["token_embedding"]
    cause, remedy = diagnose(failure)
    assert "cannot save the adapters of token_embedding" in cause and "Dense and EinsumDense" in remedy


@needs_keras_hub
def test_a_model_that_refuses_training_calls_is_one_clear_factory_error():
    with pytest.raises(FactoryError) as caught:
        check_format(f"{H}:inference_only_lora", "keras-hub-lora", examples=1, seed=0)
    message = str(caught.value)
    assert "in training mode on a probe input, which raised RuntimeError: " in message
    assert "this layer is never called in training mode" in message
    assert "\x1b" not in message and "inference_only_lora" in message
