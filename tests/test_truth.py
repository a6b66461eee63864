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

from pytest_ckpt.comparison import OUTPUTS_DIFFER
from pytest_ckpt.engine import check_format
from pytest_ckpt.errors import FactoryError

from tests.conftest import ROOT

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
    failure = roundtrip_towers("tower_a", "tower_b", "keras-weights")
    assert {(o.display, o.verdict, o.source_display) for o in failure.outcomes} == {
        ("tower_a/proj/kernel momentum", "swapped", "tower_b/proj/kernel momentum"),
        ("tower_a/proj/bias momentum", "swapped", "tower_b/proj/bias momentum")}
    assert slots_truth(tmp_path, "same_named_towers") == {"tower_a_slots_hold_tower_b_momentum": True, "slots": 2}
    # MultiOptimizer (the plugin's verdict: test_verdicts.py): 4 slots serve tower_a, all tower_b's.
    assert slots_truth(tmp_path, "multi_optimizer_towers") == {"tower_a_slots_hold_tower_b_momentum": True,
                                                               "slots": 4}


def slots_truth(tmp_path, factory):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    path = str(tmp_path / f"{factory}.weights.h5")
    results = []
    for mode in ("save", "load"):
        done = subprocess.run([sys.executable, str(ROOT / "tests/truth/same_named_slots.py"), mode, path, factory],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results[1]


def roundtrip_towers(save_frozen, load_frozen, fmt):
    from pytest_ckpt import FreezeMask, roundtrip
    from pytest_ckpt.tree import LayerTree
    from tests import cases

    tree = LayerTree(cases.same_named_towers())
    return roundtrip(f"{C}:same_named_towers", fmt, FreezeMask.from_names(tree, [save_frozen]),
                     FreezeMask.from_names(tree, [load_frozen]))


@pytest.mark.slow
def test_a_reused_backbone_is_refused_where_plain_keras_swaps_silently():
    with pytest.raises(FactoryError, match="share layer"):
        check_format(f"{C}:reused_backbone", "h5", examples=3, seed=0)
    t = truth(f"{C}:reused_backbone", "h5", save=["backbone/dense"])
    assert t["counts"] == {"swapped": 4, "survived": 2} and not t["load_error"]
