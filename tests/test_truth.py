"""The plugin's verdicts agree with plain Keras, saving in one process and loading in another.

``tests/truth/roundtrip.py`` is a plain-Keras script (no pytest_ckpt): it
saves in a fresh process and loads in another, as users do.  For each case
the plugin's check runs here; its minimal failing mask pair (or nothing
frozen, when it passes) is then replayed by the script, and the two
verdicts must agree.  Each replay starts four fresh interpreters, so all
but the by-name case are marked slow.
"""

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from pytest_ckpt.checks.comparison import OUTPUTS_DIFFER
from pytest_ckpt.checks.isolation import Isolation
from pytest_ckpt.checks.roundtrip import check_format
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.report.diagnosis import diagnose
from tests.conftest import BACKEND, ROOT, needs_keras_hub, needs_orbax, needs_tensorflow_backend

# Each case starts two to four fresh Keras processes: the truth step of CI, not the slow one.
pytestmark = pytest.mark.truth

TRUTH = ROOT / "tests" / "truth" / "roundtrip.py"
M = "pytest_ckpt.models"
C = "tests.cases"


def truth(factory, fmt, save=(), load=(), compile=False) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    args = [sys.executable, str(TRUTH), factory, fmt, "--save-freeze", ",".join(save),
            "--load-freeze", ",".join(load)] + (["--compile"] if compile else [])
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def agree(factory, fmt, *, compile=False, **kw):
    """Run the plugin's check, replay its verdict with the plain-Keras script, compare."""
    failure = check_format(factory, fmt, examples=3, seed=0, **kw).failure
    if failure is None:
        t = truth(factory, fmt, compile=compile)
        assert set(t["counts"]) == {"survived"} and not t["load_error"], t
        assert not (t["outputs_max_diff"] or 0) > 1e-5, t
        return None, t
    t = truth(factory, fmt, failure.save_mask.labels, failure.load_mask.labels, compile=compile)
    ours = Counter(o.verdict for o in failure.outcomes if o.kind == "model")
    theirs = Counter({k: v for k, v in t["counts"].items() if k != "survived"})
    assert ours == theirs, (failure.summary(), t)
    if compile:
        ours_opt = Counter(o.verdict for o in failure.outcomes if o.kind == "optimizer")
        theirs_opt = Counter({k: v for k, v in t["optimizer_counts"].items()
                              if k not in ("survived", "missing_in_loading_model")})
        assert ours_opt == theirs_opt, (failure.summary(), t)
    assert bool(failure.load_error) == bool(t["load_error"]), (failure.load_error, t["load_error"])
    if OUTPUTS_DIFFER in failure.counts():
        assert t["outputs_max_diff"] > 1e-5, t
    return failure, t


@pytest.mark.slow
def test_by_name_verdicts_match_a_real_two_process_save_and_load():
    agree(f"{C}:two_dense_auto_named", "h5-by-name")  # flat and auto-named: loads
    failure, t = agree(f"{M}:swap_prone_nested", "h5-by-name")  # nested: by position inside
    assert failure is not None and t["counts"].get("swapped") == 4


@pytest.mark.slow
@pytest.mark.parametrize("factory, fmt", [
    (f"{C}:nested_same_shaped", "h5"),
    (f"{C}:twins_after_many_blocks", "h5"),
    (f"{C}:shared_top_and_nested", "h5"),
    (f"{C}:bidirectional_lstm", "h5"),
    (f"{M}:classic_nested", "h5"),
    (f"{C}:adapted_normalization", "tf-checkpoint"),
    (f"{C}:fixed_normalization", "tf-checkpoint"),
    (f"{C}:adapted_discretization", "keras-weights"),
    (f"{C}:fixed_discretization", "keras-weights"),
    (f"{C}:adapted_string_lookup", "keras-weights"),
    (f"{C}:fixed_string_lookup", "keras-weights"),
    (f"{C}:forgetful_int8_late", "keras-weights"),
    (f"{C}:bfloat16_dense", "h5"),
    (f"{C}:bfloat16_dense", "keras-weights"),
    (f"{C}:bfloat16_data_dependent_constant", "keras-weights"),
    (f"{C}:declared_wider_than_stored", "keras-weights"),
    (f"{M}:classic_functional", "h5"),
])
def test_verdicts_match_plain_keras(factory, fmt):
    agree(factory, fmt)


@pytest.mark.slow
@pytest.mark.parametrize("fmt, masks", [("keras-weights", "independent"), ("keras", "independent"),
                                        ("keras-weights", "same"), ("keras-model", "independent")])
def test_optimizer_verdicts_match_plain_keras(fmt, masks):
    agree(f"{C}:compiled_twin", fmt, compile=True, masks=masks)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["keras-weights", "keras"])
def test_an_optimizer_the_factory_built_survives_as_in_plain_keras(fmt):
    agree(f"{C}:prebuilt_optimizer_twin", fmt, compile=True)
    t = truth(f"{C}:prebuilt_optimizer_twin", fmt, save=["block/b"], load=["block/a"], compile=True)
    assert set(t["optimizer_counts"]) == {"survived"} and not t["warnings"], t


@pytest.mark.slow
def test_same_named_slots_of_two_towers_are_told_apart_as_in_plain_keras(tmp_path):
    # Slot names cannot tell these towers' slots apart; a verdict keyed by name passed this.
    failure = roundtrip_towers("tower_a", "tower_b", "tf-checkpoint")
    assert {(o.display, o.verdict, o.source_display) for o in failure.outcomes} == {
        ("tower_a/proj/kernel momentum", "swapped", "tower_b/proj/kernel momentum"),
        ("tower_a/proj/bias momentum", "swapped", "tower_b/proj/bias momentum")}
    assert slots_truth(tmp_path, "same_named_towers", "tf-checkpoint") == {
        "tower_a_slots_hold_tower_b_momentum": True, "slots": 2}
    # load_weights of an optimizer compile() left unbuilt: skipped, no transplant.
    assert slots_truth(tmp_path, "same_named_towers", "keras-weights") == {
        "tower_a_slots_hold_tower_b_momentum": False, "slots": 2}
    # MultiOptimizer (the plugin's verdict: test_verdicts.py): its inner optimizers get nothing back.
    assert slots_truth(tmp_path, "multi_optimizer_towers", "tf-checkpoint") == {
        "tower_a_slots_hold_tower_b_momentum": False, "slots": 4}


def slots_truth(tmp_path, factory, fmt):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    path = str(tmp_path / (f"{factory}.weights.h5" if fmt == "keras-weights" else f"{factory}-ckpt"))
    results = []
    for mode in ("save", "load"):
        done = subprocess.run([sys.executable, str(ROOT / "tests/truth/same_named_slots.py"), mode, path, factory,
                               fmt],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results[1]


def roundtrip_towers(save_frozen, load_frozen, fmt):
    from pytest_ckpt import FreezeMask, roundtrip
    from pytest_ckpt.framework.tree import LayerTree
    from tests import cases

    tree = LayerTree(cases.same_named_towers())
    return roundtrip(f"{C}:same_named_towers", fmt, FreezeMask.from_names(tree, [save_frozen]),
                     FreezeMask.from_names(tree, [load_frozen]))


@pytest.mark.slow
def test_a_reused_backbone_swaps_silently_in_a_fresh_process_as_in_plain_keras():
    failure, t = agree(f"{C}:reused_backbone", "h5")
    assert failure is not None and t["counts"] == {"swapped": 4, "survived": 2} and not t["load_error"]
    with pytest.raises(FactoryError, match="share layer"):  # one process: no honest round trip
        check_format(f"{C}:reused_backbone", "h5", examples=3, seed=0, isolation=Isolation.INLINE)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["keras-weights", "h5", "h5-by-name", "keras-model"])
def test_a_build_that_depends_on_the_process_fails_where_plain_keras_does(fmt):
    # Which towers trade places depends on the two processes' hash seeds: compared are the
    # kinds of failure, not the counts.
    failure = check_format(f"{C}:tabular_towers", fmt, examples=3, seed=0).failure
    t = truth(f"{C}:tabular_towers", fmt)
    misplaced = t["counts"].get("swapped", 0) > 0 or (t["outputs_max_diff"] or 0) > 1e-5
    assert (failure is not None) == misplaced, (failure and failure.summary(), t)
    if fmt == "h5-by-name":  # every weight by name; Concatenate joins the towers in another order
        assert set(t["counts"]) == {"survived"} and set(failure.counts()) == {OUTPUTS_DIFFER}
    assert check_format(f"{C}:sorted_tabular_towers", fmt, examples=3, seed=0).passed


@pytest.mark.slow
@pytest.mark.parametrize("factory, fmt", [
    (f"{C}:nadam_unbuilt", "keras-weights"),
    (f"{C}:nadam_prebuilt", "keras-weights"),
    (f"{C}:nadam_prebuilt", "keras"),
])
def test_optimizers_meet_the_load_as_the_factory_left_them(factory, fmt):
    agree(factory, fmt, compile=True)


@pytest.mark.slow
@pytest.mark.parametrize("factory, fmt", [
    pytest.param(f"{C}:module_data_normalization", "tf-checkpoint", marks=needs_tensorflow_backend),
    (f"{C}:module_data_normalization", "keras-weights"),
    (f"{C}:module_data_normalization", "h5"),
    pytest.param(f"{C}:listed_blocks", "tf-checkpoint", marks=needs_tensorflow_backend),
    (f"{C}:listed_blocks", "keras-weights"),
])
def test_state_a_fresh_process_computes_differently_matches_plain_keras(factory, fmt):
    agree(factory, fmt)


@pytest.mark.slow
def test_a_flag_the_keras_file_does_not_record_is_named_as_plain_keras_fails():
    failure, _ = agree(f"{C}:compiled_lstm", "keras-model", compile=True)
    assert failure is not None and failure.facts.unrecorded_flags
    assert "does not record the trainable flag" in diagnose(failure)[0]


def resume_truth(factory, fmt) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "truth" / "resume.py"), factory, fmt],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("factory", [
    f"{C}:prebuilt_compiled_twin",  # resumes exactly
    f"{C}:compiled_twin",  # compile() left the optimizer unbuilt: its state is skipped
    f"{C}:unseeded_noise",  # two resumes from one checkpoint differ: not deterministic
    pytest.param("tests.cases_tf:guide_train_step", marks=needs_tensorflow_backend),  # x, y = data
])
def test_resume_verdicts_match_plain_keras_in_fresh_processes(factory):
    from pytest_ckpt.checks.resume import check_resume

    outcome = check_resume(factory, "keras-weights", examples=1, seed=0, masks="same")
    t = resume_truth(factory, "keras-weights")
    assert outcome.passed == all(t["equal_to_reference"].values()), (outcome.failure, t)
    if not outcome.passed:
        assert outcome.failure.nondeterministic == (not t["resumed_runs_agree"]), t


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["backup-and-restore", "tests.user_formats:WeightsOnlyBackup",
                                 "tests.user_formats:UndeclaredBackup"])
def test_resume_verdicts_of_epoch_restoring_formats_match_plain_keras(fmt):
    from pytest_ckpt.checks.resume import check_resume

    factory = "pytest_ckpt.models:fine_tuning_resumable"
    outcome = check_resume(factory, fmt, examples=1, seed=0, masks="same")
    t = resume_truth(factory, fmt)
    assert outcome.passed == all(t["equal_to_reference"].values()), (outcome.failure, t)


@pytest.mark.slow
def test_a_backup_killed_between_its_weights_and_its_epoch_is_mixed_as_in_plain_keras():
    from pytest_ckpt.checks.crash import CrashState, check_crash

    factory = f"{M}:compiled_swap_prone_nested"
    outcome = check_crash(factory, "backup-and-restore", points=12)
    between = [p for p in outcome.points if p.event == "about to open ckpt/training_metadata.json for writing"]
    t = crash_truth(factory, "backup-and-restore", "--kill-before", "training_metadata.json")
    assert t["state"] == "mixed" and t["killed_mid_save"], t
    assert [p.state for p in between] == [CrashState.MIXED]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["RawInPlace", "H5InPlace"])
def test_a_file_rewritten_in_place_killed_between_writes_is_mixed_as_in_plain_keras(fmt):
    from pytest_ckpt.checks.crash import CrashState, check_crash

    factory, spec = f"{M}:swap_prone_nested", f"tests.user_formats:{fmt}"
    outcome = check_crash(factory, spec, points=6)
    assert CrashState.MIXED in {p.state for p in outcome.points}
    t = crash_truth(factory, spec, "--kill-at-write", "3")
    assert t["state"] == "mixed" and t["killed_mid_save"], t


@pytest.mark.slow
@pytest.mark.parametrize("fmt, moment, state", [("MappedInPlace", "half", "mixed"),
                                                ("RenamedBeforeClose", "renamed", "lost")])
def test_saves_no_kill_point_splits_or_that_rename_early_fail_as_in_plain_python(fmt, moment, state, monkeypatch):
    from pytest_ckpt.checks.crash import check_crash

    factory, spec = f"{M}:swap_prone_nested", f"tests.user_formats:{fmt}"
    assert not check_crash(factory, spec, points=6).passed
    monkeypatch.setenv("CKPT_TRUTH_DIE", moment)  # the format kills its own save of B there
    t = crash_truth(factory, spec, "--kill-before", "no-such-file")
    assert t["state"] == state and t["killed_mid_save"], t


GOLDEN_CASES = [  # (written with, checked with, format, plain Keras loads it exactly)
    ("golden_mlp", "golden_mlp_gelu", "h5", False),
    ("golden_mlp", "golden_mlp_gelu", "keras-weights", False),
    ("golden_mlp", "golden_mlp_dropout", "keras-weights", True),
    ("golden_mlp", "golden_mlp_dropout", "h5", True),
    ("golden_subclassed", "golden_subclassed_reordered", "keras-weights", True),
    ("golden_four_frozen", "golden_three_frozen", "keras-weights", False),
    ("golden_four_frozen", "golden_four_frozen", "keras", True),
    ("golden_nested", "golden_nested", "h5", True),
    ("golden_a_frozen", "golden_b_frozen", "keras", False),
    ("golden_a_frozen", "golden_a_frozen", "keras", True),
]


@pytest.mark.slow
@pytest.mark.parametrize("written, checked, fmt, exact", GOLDEN_CASES)
def test_golden_verdicts_match_a_real_two_process_save_and_load(tmp_path, written, checked, fmt, exact):
    import tests.cases as cases
    from pytest_ckpt.golden.check import check_golden, write_golden
    from pytest_ckpt.golden.store import GoldenFolder

    done = subprocess.run([sys.executable, str(ROOT / "tests" / "truth" / "golden.py"), f"{C}:{written}",
                           f"{C}:{checked}", fmt], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    t = json.loads(done.stdout.strip().splitlines()[-1])
    truth_exact = (t["load_error"] is None and not t["optimizer_skipped"] and not t["optimizer_moved"]
                   and t["outputs_max_diff"] is not None and t["outputs_max_diff"] < 1e-5)
    assert truth_exact == exact, t
    folder = GoldenFolder(tmp_path / "golden")
    write_golden(getattr(cases, written)(), folder, fmt)
    failure = check_golden(getattr(cases, checked)(), folder, examples=3)
    assert (failure is None) == exact, failure.render() if failure else t


@pytest.mark.slow
@pytest.mark.parametrize("factory, fmt, masks, safe", [
    pytest.param(f"{C}:compiled_twin", "orbax", "independent", False, marks=needs_orbax),
    pytest.param(f"{C}:compiled_twin", "orbax", "same", False, marks=needs_orbax),  # optimizer unbuilt
    pytest.param(f"{C}:prebuilt_optimizer_twin", "orbax", "independent", False, marks=needs_orbax),
    pytest.param(f"{C}:prebuilt_optimizer_twin", "orbax", "same", True, marks=needs_orbax),
    pytest.param(f"{C}:compiled_twin", "orbax-model", "same", False, marks=needs_orbax),  # Sequential paths
    pytest.param(f"{M}:compiled_classic_functional", "orbax-model", "same", True, marks=needs_orbax),
    (f"{C}:compiled_twin", "state-tree", "independent", False),
    (f"{C}:prebuilt_optimizer_twin", "state-tree", "same", True),
    pytest.param(f"{C}:compiled_int8_dense", "orbax", "same", True, marks=needs_orbax),
    pytest.param(f"{C}:compiled_float8_dense", "orbax-model", "same", True, marks=needs_orbax),
    (f"{C}:compiled_int4_dense", "state-tree", "same", True),
])
def test_state_tree_verdicts_match_plain_keras(factory, fmt, masks, safe):
    failure, t = agree(factory, fmt, compile=True, masks=masks)
    assert (failure is None) == safe, failure and failure.summary()
    if failure is None:
        assert set(t["optimizer_counts"]) == {"survived"}, t


@pytest.mark.slow
@pytest.mark.parametrize("factory, fmt, safe", [
    (f"{C}:lora_dense", "keras-weights", False),  # adapter merged into the kernel at save
    (f"{C}:lora_dense", "keras-model", False),
    (f"{C}:lora_dense", "h5", True),
    (f"{C}:own_layers_list", "keras-weights", False),  # self._layers hidden from Keras's saving
    (f"{C}:own_layers_list", "h5", True),
    (f"{C}:int8_dense", "keras-weights", True),
    (f"{C}:int4_dense", "keras", True),
    (f"{C}:float8_dense", "keras-model", True),
    (f"{C}:int8_dense", "h5", True),
])
def test_lora_quantized_and_hidden_sublayer_verdicts_match_plain_keras(factory, fmt, safe):
    failure, _ = agree(factory, fmt, masks="same")
    assert (failure is None) == safe, failure and failure.summary()


@pytest.mark.slow
@pytest.mark.parametrize("fmt, safe", [("h5", False), ("keras-weights", True)])
def test_quantized_twins_under_independent_masks_match_plain_keras(fmt, safe):
    failure, _ = agree(f"{C}:quantized_twin", fmt)
    assert (failure is None) == safe, failure and failure.summary()


@pytest.mark.slow
@needs_keras_hub
@pytest.mark.parametrize("factory, compile, safe", [
    ("bert_backbone", False, True),
    ("bert_classifier_uncompiled", False, True),
    ("bert_classifier", True, False),  # from_preset compiles afresh: the optimizer state is skipped
])
def test_keras_hub_preset_verdicts_match_plain_keras(factory, compile, safe):
    failure, _ = agree(f"tests.cases_hub:{factory}", "keras-hub-preset", compile=compile)
    assert (failure is None) == safe, failure and failure.summary()


@pytest.mark.slow
@needs_keras_hub
@pytest.mark.parametrize("fmt", ["keras-hub-preset", "keras-weights"])
def test_a_lora_backbone_loses_its_adapters_in_plain_keras_too(fmt):
    factory = "tests.cases_hub:bert_backbone_lora"
    assert check_format(factory, fmt, examples=1, seed=0, masks="same").failure is not None
    t = truth(factory, fmt)
    lost = {k: v for k, v in t["counts"].items() if k != "survived"}
    assert lost and not t["load_error"], t  # adapters merged away (changed) or absent from the rebuilt model


LORA_TRUTH = ROOT / "tests" / "truth" / "lora_adapters.py"


def lora_truth(factory, *extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, str(LORA_TRUTH), factory, *extra], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# How the plugin's verdicts are compared with the truth's: EXACT (the same variables, the same
# verdicts), KINDS (the same verdicts: which layers trade places follows each process's hash
# seed), COVERS (the plugin's ⊇ the truth's: the truth cannot see a variable that was not
# restored but holds the same value anyway, a zero-initialized bias).
EXACT, KINDS, COVERS = "exact", "kinds", "covers"


@pytest.mark.slow
@needs_keras_hub
@pytest.mark.parametrize("factory, safe, compare, extra", [
    ("bert_backbone_lora_frozen_biases", True, EXACT, ()),
    ("bert_backbone_lora_compiled", True, EXACT, ()),  # the optimizer is not an adapter file's
    ("one_query_lora", True, EXACT, ()),
    ("frozen_statistics_lora", True, EXACT, ()),
    ("bert_backbone_lora", False, EXACT, ()),  # the adapted layers' biases train, not in the file
    ("bert_classifier_lora", False, EXACT, ()),  # the task's head: not in the backbone's file
    ("bert_classifier_frozen_head_lora", False, COVERS, ()),  # nor in the backbone's preset
    ("cached_merge_lora", False, EXACT, ()),
    ("running_max_lora", False, EXACT, ("--scale", "100")),
    ("unfrozen_statistics_lora", False, EXACT, ()),
    ("pooler_adapted_by_hand_lora", False, EXACT, ()),
    ("set_ordered_lora", False, KINDS, ()),  # another process numbers the layers otherwise
    pytest.param("step_counting_lora", False, EXACT, (), marks=pytest.mark.skipif(
        BACKEND != "jax", reason="its train_step has JAX's signature")),
    pytest.param("loss_counting_lora", False, EXACT, (), marks=pytest.mark.skipif(
        BACKEND != "jax", reason="measured on JAX")),
])
def test_keras_hub_adapter_file_verdicts_match_plain_keras_fine_tuning(factory, safe, compare, extra):
    failure = check_format(f"tests.cases_hub:{factory}", "keras-hub-lora", examples=1, seed=0).failure
    t = lora_truth(f"tests.cases_hub:{factory}", *extra)
    assert (failure is None) == safe == (set(t["counts"]) == {"survived"}), (failure and failure.summary(), t)
    assert not t["load_error"] and (failure is None or failure.load_error is None), t
    if safe:
        assert t["outputs_max_diff"] <= 1e-5, t
        return
    ours = {o.display: o.verdict for o in failure.outcomes}
    theirs = {path: v.split(":")[0] for path, v in t["verdicts"].items() if v != "survived"}
    assert t["outputs_max_diff"] > 1e-5 and set(theirs) <= set(t["changed_by_training"]) | set(ours), t
    if compare == KINDS:
        assert set(ours.values()) == set(theirs.values()) == {"swapped"} and t["orders_differ"], t
    elif compare == COVERS:
        assert theirs.items() <= ours.items() and set(ours.values()) == set(theirs.values()), t
    else:
        assert ours == theirs, (failure.summary(), t)


@pytest.mark.slow
@needs_keras_hub
def test_an_embedding_adapter_fails_to_save_in_plain_keras_too():
    failure = check_format("tests.cases_hub:embedding_adapted_lora", "keras-hub-lora", examples=1, seed=0).failure
    t = lora_truth("tests.cases_hub:embedding_adapted_lora")
    assert failure is not None and failure.save_error[0] == "AttributeError"
    assert t["save_error"].startswith("AttributeError") and "lora_kernel_a" in t["save_error"], t


@pytest.mark.slow
@pytest.mark.parametrize("fmt, safe", [("tests.user_formats:AtomicWeights", True),
                                       ("tests.user_formats:positional_npz", False)])
def test_user_format_verdicts_match_plain_keras(fmt, safe):
    failure, _ = agree(f"{M}:swap_prone_nested", fmt)
    assert (failure is None) == safe, failure and failure.summary()


def crash_truth(factory, fmt, *extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, str(ROOT / "tests/truth/crash.py"), factory, fmt, *extra],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("factory, fmt", [
    ("swap_prone_nested", "keras-weights"), ("swap_prone_nested", "keras"), ("swap_prone_nested", "h5"),
    ("swap_prone_nested", "tests.user_formats:AtomicWeights"),
    ("compiled_swap_prone_nested", "model-checkpoint"), ("compiled_swap_prone_nested", "backup-and-restore"),
])
def test_killed_save_verdicts_match_plain_keras(factory, fmt):
    from pytest_ckpt.checks.crash import check_crash

    outcome = check_crash(f"{M}:{factory}", fmt, points=6)
    t = crash_truth(f"{M}:{factory}", fmt)
    assert t["killed_mid_save"], t
    assert outcome.passed == (t["state"] in ("old", "new")), (t, [p.state for p in outcome.points])
