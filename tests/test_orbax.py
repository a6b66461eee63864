"""The state-tree formats: Orbax directories (orbax, orbax-model) and the state tree itself.

Keras restores all three through ``Model.set_state_tree``, which matches by path inside the
trainable / non-trainable / optimizer group a variable was saved in and silently ignores what
it cannot match.  Each known-bad case here has its two-process plain-Keras truth in
``tests/test_truth.py`` (``tests/truth/roundtrip.py`` with the same format).
"""

import pytest

from pytest_ckpt.checks.comparison import Verdict
from pytest_ckpt.checks.resume import check_resume
from pytest_ckpt.checks.roundtrip import ModelPair, RoundTrip, check_format
from pytest_ckpt.framework.formats import FormatNotApplicable, get_format
from pytest_ckpt.report.diagnosis import diagnose
from pytest_ckpt.search.masks import FreezeMask
from tests.conftest import HAS_ORBAX, needs_orbax

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
