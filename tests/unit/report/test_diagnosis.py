"""Failure reports from typed results (no TensorFlow: results are built by hand)."""

from pytest_ckpt.checks.comparison import NOT_LOADED, SWAPPED, VariableOutcome
from pytest_ckpt.checks.outcomes import AdapterLoss, Facts, RoundTripResult
from pytest_ckpt.framework.probe import OutputDifference
from pytest_ckpt.report.diagnosis import diagnose, render
from pytest_ckpt.search.masks import FreezeMask

NOTHING = FreezeMask.nothing()
ONE = FreezeMask(frozenset({(1, 1)}), ("block/dense",))


def result(fmt="h5", save=ONE, load=NOTHING, outcomes=(), **kw):
    return RoundTripResult(factory="m:f", format=fmt, framework="keras3", save_mask=save,
                           load_mask=load, variable_count=6, outcomes=list(outcomes), **kw)


def swap(key, source, kind="model"):
    return VariableOutcome(key=key, display=key.upper(), shape=(4,), dtype="float32",
                           verdict=SWAPPED, source_key=source, source_display=source.upper(),
                           candidates=1, kind=kind)


def test_positional_swap_report_names_both_variables_cause_remedy_seed_and_command():
    text = render(result(outcomes=[swap("a", "b"), swap("b", "a")]), seed=7,
                  reproduce="pytest --ckpt-only ...")
    assert "2 of 6 variables did not survive (2 swapped)" in text
    assert any(line.split() == ["A", "a", "(4,)", "swapped", "B", "(b)"] for line in text.splitlines()), text
    assert "cause:  legacy HDF5 matches weights by position" in text
    assert "seed:   7" in text and "reproduce: pytest --ckpt-only ..." in text


def test_failure_with_nothing_frozen_does_not_blame_freeze_state():
    cause, _ = diagnose(result(save=NOTHING, outcomes=[swap("a", "b")]))
    assert "even with nothing frozen on either side" in cause and "position" not in cause


def test_outputs_differ_has_its_own_verdict_and_cause():
    r = result(fmt="tf-checkpoint", save=NOTHING,
               output_differences=[OutputDifference("output", "max |difference| 0.37")])
    text = render(r)
    assert "outputs on a probe input differ (outputs_differ)" in text
    assert "output: max |difference| 0.37" in text
    assert "state outside the variables" in diagnose(r)[0]


def test_optimizer_rows_are_labelled_and_explained():
    skipped = result(fmt="keras-weights", save=NOTHING, load=ONE,
                     outcomes=[VariableOutcome(key="opt/iteration", display="iteration", shape=(),
                                               dtype="int64", verdict=NOT_LOADED, kind="optimizer")],
                     warnings=["Skipping variable loading for optimizer 'adam', because it has 6 "
                               "variables whereas the saved optimizer has 10 variables."])
    text = render(skipped)
    assert "1 optimizer variables did not survive (1 not_loaded)" in text
    assert "optimizer: iteration" in text
    assert "Keras warned: Skipping variable loading for optimizer" in text
    assert "optimizer's saved state was skipped" in text and "keras.saving.load_model" in text
    unbuilt = result(fmt="keras-weights", save=NOTHING, outcomes=skipped.outcomes, warnings=skipped.warnings,
                     facts=Facts(optimizer_unbuilt_at_load=True))
    cause, remedy = diagnose(unbuilt)
    assert "was not built when the checkpoint was loaded" in cause
    assert "model.optimizer.build(model.trainable_variables)" in remedy
    transplant = result(fmt="keras-weights", save=ONE, load=FreezeMask(frozenset({(1, 2)}), ("x",)),
                        outcomes=[swap("b/momentum", "a/momentum", kind="optimizer")])
    assert "by position in the list of trainable variables" in diagnose(transplant)[0]


def test_not_reproducible_failure_says_so():
    text = render(result(outcomes=[swap("a", "b")]), not_reproducible=True)
    assert "failed once, passed on replay: the save or load is not deterministic" in text
    assert "not deterministic" in diagnose(result(outcomes=[swap("a", "b")]), not_reproducible=True)[0]


def test_by_name_cause_uses_real_layer_names():
    r = result(fmt="h5-by-name", save=NOTHING, outcomes=[VariableOutcome(
        key="1:Dense/kernel", display="classifier/kernel", shape=(3, 3), dtype="float32",
        verdict=NOT_LOADED)])
    assert "nothing was loaded into classifier" in diagnose(r)[0]


def test_new_model_report_explains_the_missing_load_mask():
    text = render(result(fmt="keras-model", save=ONE, new_model=True, outcomes=[swap("a", "b")]))
    assert "load mask: none: load_model builds a new model" in text


def test_a_skipped_optimizer_with_the_same_trainable_set_does_not_blame_freeze_state():
    # Seen with a mixed-precision factory under keras-model: load_model rebuilt
    # a plain Adam where the saver had a LossScaleOptimizer (14 vs 18 variables).
    skipped = result(fmt="keras-model", save=NOTHING, load=NOTHING, new_model=True,
                     outcomes=[VariableOutcome(key="opt/iteration", display="iteration", shape=(),
                                               dtype="int64", verdict=NOT_LOADED, kind="optimizer")],
                     warnings=["Skipping variable loading for optimizer 'adam', because it has 14 "
                               "variables whereas the saved optimizer has 18 variables."])
    cause, remedy = diagnose(skipped)
    assert "same layers are frozen" in cause and "different set of variables is trainable" not in cause
    assert "mixed-precision" in remedy


def test_outputs_differ_after_load_model_points_at_get_config_not_at_load_model():
    r = result(fmt="keras-model", save=NOTHING, new_model=True,
               output_differences=[OutputDifference("output", "max |difference| 1.8")])
    cause, remedy = diagnose(r)
    assert "get_config()" in cause and "get_config()" in remedy and "format keras-model" not in remedy


def test_bfloat16_outputs_compare_as_floats_with_nan_equal_to_nan():
    import ml_dtypes
    import numpy as np

    from pytest_ckpt.framework.probe import differences

    out = np.array([np.nan, 1.0], dtype=ml_dtypes.bfloat16)
    assert differences({"o": out}, {"o": out.copy()}, rtol=1e-6, atol=1e-6) == []
    moved = out.copy()
    moved[1] = 2
    assert differences({"o": out}, {"o": moved}, rtol=1e-6, atol=1e-6)[0].detail == "max |difference| 1"


def test_a_build_that_depends_on_the_process_is_named():
    r = result(fmt="keras-weights", save=NOTHING, outcomes=[swap("a", "b"), swap("b", "a")],
               facts=Facts(layout_difference="at layer 1: tower_b here, tower_a there", layout_moved=True))
    cause, remedy = diagnose(r)
    assert "builds the model differently" in cause and "hash seed" in cause and "sorted(set(" in remedy


def test_layers_no_object_graph_reaches_are_named_never_custom_saving_code_the_model_lacks():
    lost = VariableOutcome(key="0:Dense/kernel", display="dense/kernel", shape=(4, 4), dtype="float32",
                           verdict=NOT_LOADED)
    r = result(fmt="tf-checkpoint", save=NOTHING, outcomes=[lost],
               facts=Facts(untracked=["dense (held in self.blocks, a list)"]))
    cause, _ = diagnose(r)
    assert "dense (held in self.blocks, a list)" in cause and "save_own_variables" not in cause
    plain = result(fmt="keras-weights", save=NOTHING, outcomes=[lost])
    assert "save_own_variables" not in diagnose(plain)[0]
    custom = result(fmt="keras-weights", save=NOTHING, outcomes=[lost], facts=Facts(custom_saving=["m.Forgetful"]))
    assert "m.Forgetful" in diagnose(custom)[0]


def test_a_flag_the_file_does_not_record_is_named():
    row = VariableOutcome(key="optimizer:#0", display="iteration", shape=(), dtype="int64",
                          verdict=NOT_LOADED, kind="optimizer")
    r = result(fmt="keras-model", save=ONE, new_model=True, outcomes=[row],
               facts=Facts(unrecorded_flags=["lstm/lstm_cell"]))
    assert "does not record the trainable flag of lstm/lstm_cell" in diagnose(r)[0]


def test_the_report_counts_the_other_failing_pairs_and_says_which_is_shown():
    loud = result(load_error=("ValueError", "Shape mismatch"))
    silent = result(outcomes=[swap("a", "b"), swap("b", "a")])
    text = render(silent, others=[loud, loud])
    assert "2 other mask pair(s) failed (2 raised ValueError); this one is shown: it failed silently" in text


def lost(key, kind="model"):
    return VariableOutcome(key=key, display=key, shape=(4,), dtype="float32", verdict=NOT_LOADED,
                           kind=kind)


def test_an_adapter_file_that_moved_adapters_blames_its_layer_index_keys():
    cause, remedy = diagnose(result(fmt="keras-hub-lora", save=NOTHING,
                                    outcomes=[swap("q/lora_kernel_a", "v/lora_kernel_a")]))
    assert "keys each adapter by its layer's index among the layers that hold weights" in cause
    assert "load_lora_weights" in remedy


def test_what_an_adapter_file_lost_is_named_by_why_with_one_remedy_each():
    losses = {AdapterLoss.OUTSIDE_BASE: ["logits/kernel"]}
    cause, remedy = diagnose(result(fmt="keras-hub-lora", save=NOTHING, outcomes=[lost("logits/kernel")],
                                    facts=Facts(adapter_losses=losses)))
    assert "1 variable of the fine-tuned model is not in the adapter file" in cause
    assert "outside the backbone (logits/kernel" in cause and "biases" not in cause
    assert "task.save_to_preset" in remedy
    losses = {AdapterLoss.BIAS: ["q/bias", "v/bias"], AdapterLoss.STATE: ["bn/moving_mean"],
              AdapterLoss.ADAPTER: ["pool/lora_kernel_a"]}
    cause, remedy = diagnose(result(fmt="keras-hub-lora", save=NOTHING,
                                    outcomes=[lost(k) for names in losses.values() for k in names],
                                    facts=Facts(adapter_losses=losses)))
    assert "4 variables" in cause and "leaves them trainable" in cause and "batch statistics" in cause
    assert "adapters of layers backbone.enable_lora did not adapt (pool/lora_kernel_a)" in cause
    assert "layer.bias.trainable = False" in remedy and "layer.trainable = False" in remedy
    assert "target_layer_names" in remedy


def test_an_adapter_file_that_cannot_save_an_embeddings_adapter_says_so():
    cause, remedy = diagnose(result(fmt="keras-hub-lora", save=NOTHING, save_error=("AttributeError", "..."),
                                    facts=Facts(unsavable_adapters=["token_embedding"])))
    assert "cannot save the adapters of token_embedding" in cause and "Dense and EinsumDense" in remedy


def test_an_adapter_file_report_says_no_mask_was_drawn():
    text = render(result(fmt="keras-hub-lora", save=NOTHING, outcomes=[lost("head/kernel")], factory_flags=True,
                         facts=Facts(adapter_losses={AdapterLoss.OUTSIDE_BASE: ["head/kernel"]})),
                  seed=1, reproduce="pytest ...")
    assert "save mask: none drawn: the flags the factory set" in text and "nothing frozen" not in text
