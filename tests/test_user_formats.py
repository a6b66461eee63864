"""Users' own checkpoint code as formats (``module:attr`` in ckpt_formats), end to end."""

import pytest

from pytest_ckpt.checks.comparison import Verdict
from pytest_ckpt.checks.roundtrip import check_format
from pytest_ckpt.errors import UserFormatError
from pytest_ckpt.framework.formats import Format, UserFormat, get_format
from tests.conftest import failure_report, files_of

U = "tests.user_formats"
M = "pytest_ckpt.models"


def test_an_atomic_saver_is_checked_like_a_built_in_format():
    fmt = get_format(f"{U}:AtomicWeights")
    assert isinstance(fmt, Format) and isinstance(fmt, UserFormat) and fmt.display == "atomic weights"
    assert check_format(f"{M}:swap_prone_nested", f"{U}:AtomicWeights", examples=5, seed=0).passed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_positional_saver_swaps_silently_under_a_freeze_change(seed):
    failure = check_format(f"{M}:swap_prone_nested", f"{U}:positional_npz", examples=3, seed=seed).failure
    assert failure is not None and failure.format == f"{U}:positional_npz"
    # A shape error when the moved values do not fit, a silent swap when they do.
    assert failure.load_error is not None or Verdict.SWAPPED in failure.counts()


@pytest.mark.parametrize("spec, message", [
    (f"{U}:NoLoad", "has no load method"),
    (f"{U}:NeedsArguments", "made without arguments"),
    (f"{U}:Nowhere", "has no attribute 'Nowhere'"),
    ("tests.no_such_module:Saver", "cannot be imported"),
])
def test_a_broken_user_format_is_one_clear_message(spec, message):
    with pytest.raises(UserFormatError, match=message):
        get_format(spec)


def test_user_formats_in_the_ini_run_beside_built_ins_and_leave_nothing_behind(pytester, project_on_path):
    pytester.makeini(f"""
        [pytest]
        ckpt_models = {M}:swap_prone_nested
        ckpt_formats =
            keras-weights
            {U}:AtomicWeights
            {U}:NoLoad
            tests.no_such_module:Saver
        ckpt_examples = 3
    """)
    before = files_of(pytester)
    result = pytester.runpytest_subprocess("--ckpt-roundtrip", "-p", "no:cacheprovider", "--hypothesis-seed=1")
    result.assert_outcomes(passed=2, failed=2)
    report = "\n".join(failure_report(result))
    assert f"format '{U}:NoLoad': NoLoad has no load method" in report
    assert "format 'tests.no_such_module:Saver': module 'tests.no_such_module' cannot be imported" in report
    assert "Traceback" not in report
    row = f"*| roundtrip | `{M}:swap_prone_nested` | pass | pass | FAIL: format | FAIL: format |*"
    result.stdout.fnmatch_lines([row])
    assert files_of(pytester) == before


USER_GOLDEN = f"""
import os
import keras

def test_model(ckpt_regression):
    units = 5 if os.environ.get("VARIANT") == "shape" else 4
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units, name="d"),
                              keras.layers.Dense(2, name="head")], name="model")
    ckpt_regression.check(model, format=os.environ.get("FMT", "{U}:AtomicWeights"))
"""


@pytest.mark.slow  # four pytester runs in subprocesses: the slow step, not the README's command
def test_a_golden_in_a_users_format_is_its_folder_and_catches_a_change(pytester, project_on_path, monkeypatch):
    pytester.makepyfile(test_reg=USER_GOLDEN)
    args = ("-p", "no:cacheprovider", "--hypothesis-seed=7", "--ckpt-examples=2")
    pytester.runpytest_subprocess(*args, "--ckpt-update").assert_outcomes(passed=1)
    folder = pytester.path / "ckpt_golden/test_reg/test_model/check-1"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.tar", "manifest.txt", "outputs.npz"]
    assert f"format: {U}:AtomicWeights" in (folder / "manifest.txt").read_text()
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    monkeypatch.setenv("VARIANT", "shape")
    changed = pytester.runpytest_subprocess(*args)
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(["*shape or dtype changed*"])
    # A format whose files the inspector cannot read cannot key a golden: one clear message.
    monkeypatch.setenv("VARIANT", "")
    monkeypatch.setenv("FMT", f"{U}:PositionalNpz")
    unreadable = pytester.runpytest_subprocess(*args, "--ckpt-update")
    unreadable.assert_outcomes(failed=1)
    unreadable.stdout.fnmatch_lines([f"*cannot write a golden in format {U}:PositionalNpz*"])
    assert "Traceback" not in "\n".join(failure_report(unreadable))


def test_a_golden_manifest_never_makes_the_check_import_code(pytester, project_on_path, monkeypatch):
    pytester.makepyfile(test_reg=USER_GOLDEN)
    args = ("-p", "no:cacheprovider", "--hypothesis-seed=7", "--ckpt-examples=2")
    pytester.runpytest_subprocess(*args, "--ckpt-update").assert_outcomes(passed=1)
    unnamed = USER_GOLDEN.replace(f', format=os.environ.get("FMT", "{U}:AtomicWeights")', "")
    assert unnamed != USER_GOLDEN
    pytester.makepyfile(test_reg=unnamed)
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*was written in your format '{U}:AtomicWeights': pass format=*"])
