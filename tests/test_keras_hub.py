"""keras-hub presets (format keras-hub-preset): ``save_to_preset`` then ``ModelClass.from_preset``.

A preset rebuilds the model from its config and loads the weights by path, so freeze masks
cannot move weights; what a preset does not carry is training: ``from_preset`` compiles a
Task afresh without building its optimizer, so the optimizer state the preset's task weights
hold is skipped.  Each verdict has its two-process plain-Keras truth in ``tests/test_truth.py``.
"""

import pytest

from pytest_ckpt.checks.comparison import VariableKind
from pytest_ckpt.checks.roundtrip import check_format
from pytest_ckpt.framework.formats import FormatNotApplicable, get_format
from pytest_ckpt.report.diagnosis import diagnose
from tests.conftest import HAS_KERAS_HUB, needs_keras_hub

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
