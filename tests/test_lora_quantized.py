"""LoRA adapters, quantized models and sublayers hidden in self._layers, in Keras's formats.

Truth (``tests/truth/roundtrip.py``, two processes, Keras 3.15.1): Keras merges a LoRA adapter
into the kernel when it saves and zeroes the adapter on load (3 changed, outputs equal) in
keras-weights, keras and keras-model, while legacy h5 writes every variable as it is; int8,
int4 and float8 models survive every format; a layer that assigns ``self._layers`` hides its
sublayers from keras-weights and keras (4 not_loaded), not from legacy h5.  The agreement
tests are in ``tests/test_truth.py``.
"""

import pytest

from pytest_ckpt.checks.comparison import Verdict
from pytest_ckpt.checks.roundtrip import check_format
from pytest_ckpt.framework.formats import applicable, get_format
from pytest_ckpt.report.diagnosis import diagnose
from tests.conftest import BACKEND, needs_orbax

C = "tests.cases"
# The formats a plain (uncompiled) model gets here: the state-tree ones need a compiled model.
PLAIN = [f for f in applicable("keras3", BACKEND) if not get_format(f).needs_compiled]


@pytest.mark.parametrize("fmt", ["keras-weights", "keras", "keras-model"])
def test_a_lora_adapter_merged_at_save_is_named_not_blamed_on_the_format(fmt):
    failure = check_format(f"{C}:lora_dense", fmt, examples=2, seed=0, masks="same").failure
    assert failure is not None and failure.facts.lora == ["adapted"]
    assert {o.display.rsplit("/", 1)[1] for o in failure.outcomes} == {"kernel", "lora_kernel_a", "lora_kernel_b"}
    assert not failure.output_differences  # the merged kernel computes what kernel + adapter did
    cause, remedy = diagnose(failure)
    assert "merges the adapter into the kernel" in cause and "bug" not in cause
    assert "lora_kernel_a" in remedy


def test_legacy_h5_keeps_a_lora_adapter_as_it_is():
    assert check_format(f"{C}:lora_dense", "h5", examples=2, seed=0, masks="same").passed


@pytest.mark.parametrize("fmt", PLAIN)
@pytest.mark.parametrize("factory", ["int8_dense", "int4_dense", "float8_dense"])
def test_quantized_models_survive_every_format(factory, fmt):
    outcome = check_format(f"{C}:{factory}", fmt, examples=3, seed=0)
    assert outcome.failure is None, outcome.failure and outcome.failure.summary()


@pytest.mark.parametrize("fmt", [pytest.param("orbax", marks=needs_orbax),
                                 pytest.param("orbax-model", marks=needs_orbax), "state-tree"])
@pytest.mark.parametrize("factory", ["compiled_int8_dense", "compiled_int4_dense", "compiled_float8_dense"])
def test_compiled_quantized_models_survive_the_state_tree_formats(factory, fmt):
    outcome = check_format(f"{C}:{factory}", fmt, examples=3, seed=0, masks="same")
    assert outcome.failure is None, outcome.failure and outcome.failure.summary()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantized_twins_moved_by_a_freeze_in_legacy_h5_are_named_as_quantized(seed):
    failure = check_format(f"{C}:quantized_twin", "h5", examples=8, seed=seed).failure
    assert failure is not None and set(failure.counts()) == {Verdict.SWAPPED}
    assert failure.facts.quantized == ["block/a (int8)", "block/b (int8)"]
    cause, _ = diagnose(failure)
    assert "matches weights by position" in cause and "quantized layers (block/a (int8)" in cause


def test_quantized_twins_keep_their_places_by_path():
    assert check_format(f"{C}:quantized_twin", "keras-weights", examples=8, seed=0).passed


@pytest.mark.parametrize("fmt", ["keras-weights", "keras"])
@pytest.mark.parametrize("seed", [0, 1])
def test_sublayers_in_self_layers_are_lost_and_the_cause_says_so(fmt, seed):
    failure = check_format(f"{C}:own_layers_list", fmt, examples=3, seed=seed).failure
    assert failure is not None and failure.counts() == {Verdict.NOT_LOADED: 4}
    cause, remedy = diagnose(failure)
    assert "self._layers is the list Keras keeps" in cause and "#20260" in cause
    assert "never assign self._layers" in remedy and "save_own_variables" not in cause


def test_legacy_h5_saves_sublayers_in_self_layers():
    assert check_format(f"{C}:own_layers_list", "h5", examples=3, seed=0, masks="same").passed
