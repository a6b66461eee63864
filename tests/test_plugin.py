"""The plugin end to end: pytester runs pytest in a subprocess that imports TensorFlow.

Known-bad cases must fail with the right diagnosis; known-good ones must pass.
"""

import textwrap

import pytest

SEED = "--hypothesis-seed=20261128"
MODELS = "pytest_ckpt.models"


def ini(pytester, models, formats=None, examples=None, extra=""):
    lines = ["[pytest]", "ckpt_models ="] + [f"    {m}" for m in models]
    if formats:
        lines.append(f"ckpt_formats = {formats}")
    if examples:
        lines.append(f"ckpt_examples = {examples}")
    pytester.makeini("\n".join(lines) + "\n" + extra)


def outcomes_by_id(result):
    """{node id: "PASSED"/"FAILED"} from a -v run."""
    found = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "ERROR"):
            if line.startswith("ckpt-roundtrip::") and f" {word}" in line:
                found[line.split(" ")[0]] = word
    return found


def test_known_cases(pytester):
    """One run of known-bad and known-good cases (TensorFlow starts once), checked three ways."""
    ini(pytester, [f"{MODELS}:classic_nested", f"{MODELS}:classic_functional",
                   f"{MODELS}:swap_prone_nested"],
        formats="h5, keras-weights, keras, keras-sharded", examples=40)
    result = pytester.runpytest_subprocess("--ckpt-roundtrip", "-v", "-p", "no:cacheprovider", SEED)
    check_known_bad_cases_fail_and_known_good_pass(result)
    check_classic_bug_report_names_cause_remedy_and_seed(result)
    check_silent_swap_is_reported_as_swapped_naming_both(result)
    # Failing Hypothesis runs leave no example database behind.
    assert not (pytester.path / ".hypothesis").exists()


def check_known_bad_cases_fail_and_known_good_pass(known_cases):
    got = outcomes_by_id(known_cases)
    expected = {}
    for model in ("classic_nested", "classic_functional", "swap_prone_nested"):
        for fmt in ("h5", "keras-weights", "keras", "keras-sharded"):
            bad = fmt == "h5" and model != "classic_functional"
            expected[f"ckpt-roundtrip::{MODELS}:{model}::{fmt}"] = "FAILED" if bad else "PASSED"
    assert got == expected
    known_cases.assert_outcomes(failed=2, passed=10)


def section(result, headline):
    """The failure section under the ``___ headline ___`` line."""
    lines = result.outlines
    start = next(i for i, l in enumerate(lines) if l.startswith("_") and headline in l)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(("___", "===")))
    return "\n".join(lines[start + 1:end])


def check_classic_bug_report_names_cause_remedy_and_seed(known_cases):
    classic = section(known_cases, "classic_nested [h5]")
    assert "format:    h5 (keras3)" in classic
    assert "save mask:" in classic and "load mask:" in classic
    assert "legacy HDF5 matches weights by position" in classic
    assert "freeze state of resnet_small differs" in classic
    assert "build the model with the functional API" in classic
    assert "seed:   20261128" in classic
    assert (f"reproduce: pytest --ckpt-roundtrip --ckpt-models {MODELS}:classic_nested "
            "--ckpt-migrations= --ckpt-formats h5 --hypothesis-seed=20261128") in classic


def check_silent_swap_is_reported_as_swapped_naming_both(known_cases):
    swap = section(known_cases, "swap_prone_nested [h5]")
    assert "load raised" not in swap.split("cause:")[0]  # silent
    assert "4 of 6 variables did not survive (4 swapped)" in swap
    known_cases.stdout.fnmatch_lines([
        "*twin_dense/dense*/kernel*1:Sequential/1:Dense/kernel*swapped*twin_dense/dense*/kernel "
        "(1:Sequential/2:Dense/kernel)",
        "*twin_dense/dense*/kernel*1:Sequential/2:Dense/kernel*swapped*twin_dense/dense*/kernel "
        "(1:Sequential/1:Dense/kernel)",
    ])
    # Hypothesis shrinks to a minimal pair: one side nothing frozen, the other
    # exactly one of the twin layers.
    masks = [line.strip() for line in swap.splitlines() if "mask:" in line][:2]
    assert sorted(m.split(":", 1)[1].strip() for m in masks)[1].count(",") == 0
    assert any("nothing frozen" in m for m in masks)


def test_by_name_into_auto_named_model_is_not_loaded(pytester):
    pytester.makepyfile(factories="""
        import keras
        def auto_named():
            return keras.Sequential([keras.Input((3,)), keras.layers.Dense(3), keras.layers.Dense(3)])
    """)
    ini(pytester, ["factories:auto_named"], formats="h5-by-name", examples=5)
    result = pytester.runpytest_subprocess("--ckpt-roundtrip", "-p", "no:cacheprovider", SEED)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*4 of 4 variables did not survive (4 not_loaded)*",
        "*cause:  load_weights(by_name=True) matches layers by name*",
    ])


def test_without_the_flag_nothing_is_collected_and_nothing_heavy_imported(pytester):
    ini(pytester, [f"{MODELS}:classic_nested"])
    pytester.makepyfile(test_plain="""
        import sys
        def test_idle():
            heavy = {"tensorflow", "keras", "tf_keras", "hypothesis", "h5py", "numpy"}
            assert not heavy & set(sys.modules), heavy & set(sys.modules)
    """)
    # Not -v: Hypothesis's own plugin imports hypothesis to print its header.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)  # and no round-trip item


def test_no_ckpt_disables_the_plugin(pytester):
    pytester.makepyfile(test_fixture="""
        def test_uses_fixture(ckpt_roundtrip):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:ckpt")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'ckpt_roundtrip' not found*"])
    result = pytester.runpytest_subprocess("-p", "no:ckpt", "--ckpt-roundtrip")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_k_selects_items_by_factory_and_format(pytester):
    ini(pytester, [f"{MODELS}:swap_prone_nested", f"{MODELS}:classic_functional"], examples=2)
    result = pytester.runpytest_subprocess(
        "--ckpt-roundtrip", "--collect-only", "-q", "-k", "swap_prone_nested and keras-weights")
    result.stdout.fnmatch_lines(["ckpt-roundtrip::pytest_ckpt.models:swap_prone_nested::keras-weights",
                                 "1/12 tests collected (11 deselected)*"])


def test_fixture_fails_the_test_with_the_report(pytester):
    pytester.makepyfile(test_models="""
        from pytest_ckpt import models

        def test_nested_survives_native_formats(ckpt_roundtrip):
            ckpt_roundtrip(models.swap_prone_nested, formats=["keras-weights", "keras"], examples=10)

        def test_nested_survives_h5(ckpt_roundtrip):
            ckpt_roundtrip(models.swap_prone_nested, formats="h5", examples=40)

        def test_builtin_models_fixture(ckpt_models):
            assert {"classic_nested", "classic_functional", "deep_nested", "shared_layer",
                    "lstm_model", "attention_model", "resnet50_nested"} <= set(ckpt_models)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", SEED)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*test_nested_survives_h5*",
        "checkpoint round trip failed: pytest_ckpt.models:swap_prone_nested",
        "*(4 swapped)*",
    ])


def test_hypothesis_seed_reproduces_the_same_minimal_masks(pytester):
    ini(pytester, [f"{MODELS}:classic_nested"], formats="h5", examples=20)
    first = pytester.runpytest_subprocess("--ckpt-roundtrip", "-p", "no:cacheprovider")
    seed_line = [l for l in first.outlines if l.strip().startswith("reproduce: pytest")][0]
    command = seed_line.split("reproduce: pytest", 1)[1].split()
    again = pytester.runpytest_subprocess(*command, "-p", "no:cacheprovider")
    masks = lambda r: [l for l in r.outlines if "mask:" in l]
    assert masks(first) and masks(first) == masks(again)


def test_derandomized_profile_is_honoured(pytester):
    pytester.makeconftest("""
        from hypothesis import settings
        settings.register_profile("ci", derandomize=True)
    """)
    ini(pytester, [f"{MODELS}:swap_prone_nested"], formats="h5", examples=40)
    runs = [pytester.runpytest_subprocess("--ckpt-roundtrip", "--hypothesis-profile=ci",
                                          "-p", "no:cacheprovider") for _ in range(2)]
    for r in runs:
        r.assert_outcomes(failed=1)
        assert "seed:" not in r.stdout.str()
    masks = lambda r: [l for l in r.outlines if "mask:" in l]
    assert masks(runs[0]) == masks(runs[1])
