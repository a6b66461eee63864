"""The plugin end to end through pytester: items, reports, options, fixtures.

Most runs are in-process (TensorFlow is imported once, up here, so
pytester's module snapshot keeps it); runs that must prove something about
a fresh process (what collection imports, xdist) use a subprocess.
"""

import atexit
import os
import re
import shlex
import shutil
import subprocess

# Imported before pytester snapshots sys.modules, so in-process runs share
# one copy of each (a second import of TensorFlow or Hypothesis breaks them).
import hypothesis  # noqa: F401
import keras  # noqa: F401
import pytest

import pytest_ckpt.checks.roundtrip
import pytest_ckpt.search.driver  # noqa: F401
from pytest_ckpt.framework.formats import applicable
from tests.conftest import BACKEND

SEED = "--hypothesis-seed=20261128"
M = "pytest_ckpt.models"
C = "tests.cases"


def ini(pytester, models=(), formats=None, examples=None, extra=""):
    lines = ["[pytest]", "ckpt_models ="] + [f"    {m}" for m in models]
    if formats:
        lines.append(f"ckpt_formats = {formats}")
    if examples:
        lines.append(f"ckpt_examples = {examples}")
    pytester.makeini("\n".join(lines) + "\n" + extra)


def run(pytester, *args):
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def outcomes_by_id(result):
    """{node id: "PASSED"/"FAILED"/"SKIPPED"} from a -v run."""
    found = {}
    for line in result.outlines:
        m = re.match(r"(ckpt-\S+) (PASSED|FAILED|SKIPPED|ERROR)", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def section(result, headline):
    """The failure section under the ``___ headline ___`` line."""
    lines = result.outlines
    start = next(i for i, l in enumerate(lines) if l.startswith("_") and headline in l)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(("___", "===")))
    return "\n".join(lines[start + 1:end])


def test_known_cases(pytester):
    """One run of known-bad and known-good cases (cheaper than one each), checked four ways."""
    ini(pytester, [f"{M}:swap_prone_nested", f"{M}:classic_functional", f"{C}:data_dependent_constant"],
        formats="h5, keras-weights, keras", examples=3)
    known = run(pytester, "--ckpt-roundtrip", "-v", SEED)
    check_known_bad_cases_fail_and_known_good_pass(known)
    check_silent_swap_report(known)
    check_outputs_that_differ_are_their_own_verdict(known)
    check_header_and_results_matrix(known)


def check_known_bad_cases_fail_and_known_good_pass(known):
    assert outcomes_by_id(known) == {
        f"ckpt-roundtrip::{M}:swap_prone_nested::h5": "FAILED",
        f"ckpt-roundtrip::{M}:swap_prone_nested::keras-weights": "PASSED",
        f"ckpt-roundtrip::{M}:swap_prone_nested::keras": "PASSED",
        f"ckpt-roundtrip::{M}:classic_functional::h5": "PASSED",
        f"ckpt-roundtrip::{M}:classic_functional::keras-weights": "PASSED",
        f"ckpt-roundtrip::{M}:classic_functional::keras": "PASSED",
        f"ckpt-roundtrip::{C}:data_dependent_constant::h5": "FAILED",
        f"ckpt-roundtrip::{C}:data_dependent_constant::keras-weights": "FAILED",
        f"ckpt-roundtrip::{C}:data_dependent_constant::keras": "FAILED",
    }


def check_silent_swap_report(known):
    swap = section(known, "swap_prone_nested [h5]")
    assert "format:    h5 (keras3)" in swap
    assert "load raised" not in swap  # silent
    assert "4 of 6 variables did not survive (4 swapped)" in swap
    assert re.search(r"twin_dense/dense\S*/kernel +1:Sequential/1:Dense/kernel .* swapped +"
                     r"twin_dense/dense\S*/kernel \(1:Sequential/2:Dense/kernel\)", swap)
    masks = sorted(line.split(":", 1)[1].strip() for line in swap.splitlines()
                   if line.strip().startswith(("save mask:", "load mask:")))
    assert masks[0].startswith("frozen: twin_dense/dense") and masks[0].count(",") == 0
    assert masks[1] == "nothing frozen"
    assert "cause:  legacy HDF5 matches weights by position" in swap
    assert "freeze the same layers before load_weights()" in swap
    assert "seed:   20261128" in swap
    assert (f"reproduce: pytest --ckpt-only --ckpt-roundtrip --no-ckpt-resume --ckpt-models {M}:swap_prone_nested "
            "--ckpt-migrations= --ckpt-formats h5 --ckpt-examples 3 --ckpt-masks independent "
            "--hypothesis-seed=20261128") in swap


def check_outputs_that_differ_are_their_own_verdict(known):
    norm = section(known, "data_dependent_constant [keras]")
    assert "all 2 variables survived, but the outputs on a probe input differ (outputs_differ)" in norm
    assert re.search(r"output: max \|difference\| [0-9.e-]+", norm)
    assert "state outside the variables" in norm


def check_header_and_results_matrix(known):
    known.stdout.fnmatch_lines([
        "ckpt: seed 20261128; round trips: 3 factories x 3 formats asked for; 3 examples per check after "
        "the fixed pairs, masks independent*"])
    known.stdout.fnmatch_lines([
        "*pytest-ckpt results*",
        "| check | factory | keras-weights | keras | h5 |",
        "|---|---|---|---|---|",
        f"| roundtrip | `{M}:swap_prone_nested` | pass | pass | FAIL: swapped |",
        f"| roundtrip | `{M}:classic_functional` | pass | pass | pass |",
        f"| roundtrip | `{C}:data_dependent_constant` | FAIL: outputs_differ | FAIL: outputs_differ | "
        "FAIL: outputs_differ |",
    ])


def test_reproduce_line_runs_that_item_alone_and_fails_the_same_way(pytester):
    ini(pytester, [f"{C}:nested_same_shaped", f"{M}:classic_functional"], formats="h5, keras",
        examples=7)
    pytester.makepyfile(test_unrelated="def test_unrelated():\n    assert False\n")
    first = run(pytester, "--ckpt-roundtrip")
    first.assert_outcomes(failed=2, passed=3)  # our item, and the unrelated test
    line = next(l for l in first.outlines if l.strip().startswith("reproduce: pytest"))
    args = shlex.split(line.split("reproduce: pytest", 1)[1])
    assert "--ckpt-examples" in args and args[args.index("--ckpt-examples") + 1] == "7"
    again = run(pytester, *args)
    again.assert_outcomes(failed=1)  # the unrelated test is not even collected
    def masks(r):
        return [l for l in r.outlines if "mask:" in l]

    assert masks(first) and masks(again) == masks(first)


def test_settings_errors_are_one_failing_item_each_and_the_rest_runs(pytester, tmp_path):
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    ini(pytester, [f"{M}:swap_prone_nested"], formats="keras-weights, bogus", examples=2)
    result = run(pytester, "--ckpt-roundtrip", "-rf")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*unknown format(s) 'bogus'; valid formats: keras-weights*"])
    # The header counts only what is valid.
    result.stdout.fnmatch_lines(["ckpt: seed *; round trips: 1 factories x 1 formats*"])


@pytest.mark.parametrize("problem", ["missing", "file", "read-only"])
def test_bad_tmpdir_is_one_clear_error_and_other_tests_run(pytester, problem):
    target = pytester.path / "scratch"
    if problem == "file":
        target.write_text("not a folder")
    elif problem == "read-only":
        target.mkdir()
        make_read_only(target)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    ini(pytester, [f"{M}:swap_prone_nested"], formats="h5")
    result = run(pytester, "--ckpt-roundtrip", f"--ckpt-tmpdir={target}")
    result.assert_outcomes(passed=1, failed=1)
    word = {"missing": "does not exist", "file": "is not a directory", "read-only": "is not writable"}
    result.stdout.fnmatch_lines([f"*--ckpt-tmpdir / ckpt_tmpdir: '{target}' {word[problem]}*"])
    result.stdout.fnmatch_lines(["ckpt: round trips not run: the settings are not usable*"])
    assert "Traceback" not in result.stdout.str()


def make_read_only(folder):
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root ignores permission bits
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode:
            pytest.skip("cannot make a folder read-only here (root without chattr)")
        atexit.register(subprocess.run, ["chattr", "-i", str(folder)])


def test_factory_module_that_exits_at_import_fails_its_items_and_the_rest_runs(pytester):
    ini(pytester, ["tests.cases_exit:build", f"{M}:swap_prone_nested"], formats="keras-weights, keras")
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = run(pytester, "--ckpt-roundtrip")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines([
        "*model factory 'tests.cases_exit:build': cannot import module 'tests.cases_exit': "
        "SystemExit(2); the module exits when imported*",
        "*(the same error as in ckpt-roundtrip::tests.cases_exit:build::keras-weights)*"])


def test_k_and_m_select_generated_items(pytester):
    ini(pytester, [f"{M}:swap_prone_nested", f"{M}:classic_functional"], examples=2)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    picked = run(pytester, "--ckpt-roundtrip", "--collect-only", "-q", "-k",
                 "swap_prone_nested and keras-weights")
    total = 2 * len(applicable("keras3", BACKEND)) + 1
    picked.stdout.fnmatch_lines([f"ckpt-roundtrip::{M}:swap_prone_nested::keras-weights",
                                 f"1/{total} tests collected ({total - 1} deselected)*"])
    marked = run(pytester, "--ckpt-roundtrip", "--collect-only", "-q", "-m", "not ckpt")
    marked.stdout.fnmatch_lines(["test_plain.py::test_plain", f"1/{total} tests collected ({total - 1} deselected)*"])


def test_a_factory_listed_twice_is_one_item_per_format(pytester):
    ini(pytester, [f"{M}:swap_prone_nested", f"{M}:swap_prone_nested"], formats="h5")
    run(pytester, "--ckpt-roundtrip", "--collect-only", "-q").stdout.fnmatch_lines(
        [f"ckpt-roundtrip::{M}:swap_prone_nested::h5", "*1 test collected*"])


def test_no_ckpt_disables_the_plugin(pytester):
    pytester.makepyfile(test_fixture="def test_uses_fixture(ckpt_roundtrip):\n    pass\n")
    result = run(pytester, "-p", "no:ckpt")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'ckpt_roundtrip' not found*"])
    assert run(pytester, "-p", "no:ckpt", "--ckpt-roundtrip").ret == pytest.ExitCode.USAGE_ERROR


def test_ini_bools_can_be_turned_off_from_the_command_line(pytester):
    ini(pytester, [f"{M}:swap_prone_nested"], extra="ckpt_roundtrip = true\n")
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    total = len(applicable("keras3", BACKEND)) + 1
    run(pytester, "--collect-only", "-q").stdout.fnmatch_lines([f"*{total} tests collected*"])
    run(pytester, "--no-ckpt-roundtrip", "--collect-only", "-q").stdout.fnmatch_lines(
        ["*1 test collected*"])


def test_fixture_fails_the_test_with_the_report_and_a_runnable_command(pytester):
    pytester.makepyfile(test_models=f"""
        from pytest_ckpt import models

        def test_native_formats(ckpt_roundtrip):
            outcomes = ckpt_roundtrip.check(models.swap_prone_nested, formats=["keras-weights", "keras"],
                                            examples=3)
            assert [o.format for o in outcomes] == ["keras-weights", "keras"]
            assert all(o.passed for o in outcomes)

        def test_h5(ckpt_roundtrip):
            ckpt_roundtrip.check("{M}:swap_prone_nested", formats="h5", examples=3)

        def test_builtin_models_fixture(ckpt_models):
            assert {{"classic_nested", "classic_functional", "deep_nested", "shared_layer",
                    "lstm_model", "attention_model", "resnet50_nested"}} <= set(ckpt_models)
    """)
    result = run(pytester, SEED)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "checkpoint round trip failed: pytest_ckpt.models:swap_prone_nested",
        "*(4 swapped)*",
        "*reproduce: pytest test_models.py::test_h5 --hypothesis-seed=20261128"])
    again = run(pytester, "test_models.py::test_h5", SEED)
    again.assert_outcomes(failed=1)


def test_derandomized_profile_replays_and_says_how(pytester):
    pytester.makeconftest("""
        from hypothesis import settings
        settings.register_profile("ci", derandomize=True)
    """)
    ini(pytester, [f"{C}:nested_same_shaped"], formats="h5", examples=5)
    runs = [run(pytester, "--ckpt-roundtrip", "--hypothesis-profile=ci") for _ in range(2)]
    for r in runs:
        r.assert_outcomes(failed=1)
        r.stdout.fnmatch_lines(["*this run is derandomized*", "*seed:   0",
                                "*reproduce: *--hypothesis-profile=ci --hypothesis-seed=0"])
    def masks(r):
        return [l for l in r.outlines if "mask:" in l]

    assert masks(runs[0]) == masks(runs[1])


def test_report_file_and_github_step_summary(pytester, monkeypatch):
    summary = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    ini(pytester, [f"{M}:swap_prone_nested"], formats="h5, keras", examples=2)
    result = run(pytester, "--ckpt-roundtrip", "--ckpt-report=ckpt.md", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1, passed=1)
    table = (pytester.path / "ckpt.md").read_text()
    assert f"| roundtrip | `{M}:swap_prone_nested` | pass | FAIL: swapped |" in table
    assert "FAIL: swapped" in summary.read_text()
    junit = (pytester.path / "junit.xml").read_text()
    assert '<property name="ckpt_verdict" value="FAIL: swapped"' in junit
    assert '<property name="ckpt_format" value="h5"' in junit


def test_a_report_that_cannot_be_written_is_a_settings_error_or_a_line_never_a_traceback(pytester, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "missing" / "summary.md"))
    ini(pytester, [f"{M}:classic_functional"], formats="keras-weights", examples=1)
    result = run(pytester, "--ckpt-roundtrip", "--ckpt-report=nowhere/r.md")
    result.assert_outcomes(failed=1, passed=1)  # the settings item, and the check itself
    result.stdout.fnmatch_lines(["*--ckpt-report / ckpt_report: 'nowhere/r.md' is in a folder that does not exist*",
                                 "*pytest-ckpt: could not write the results matrix to *summary.md*"])
    assert "Traceback" not in result.stdout.str() and result.ret == 1


def test_optimizer_and_resume_items_under_both_masks_policies(pytester):
    # compile() leaves the optimizer unbuilt: load_weights skips its state whatever the masks;
    # built before the load, it comes back.
    ini(pytester, [f"{C}:compiled_twin", f"{C}:prebuilt_compiled_twin", f"{M}:swap_prone_nested"],
        formats="keras-weights", examples=2)
    independent = run(pytester, "--ckpt-roundtrip", "--ckpt-resume", "-v", "-rs", SEED)
    assert outcomes_by_id(independent) == {
        f"ckpt-roundtrip::{C}:compiled_twin::keras-weights": "FAILED",
        f"ckpt-roundtrip::{C}:prebuilt_compiled_twin::keras-weights": "PASSED",
        f"ckpt-roundtrip::{M}:swap_prone_nested::keras-weights": "PASSED",
        f"ckpt-resume::{C}:compiled_twin::keras-weights": "FAILED",
        f"ckpt-resume::{C}:prebuilt_compiled_twin::keras-weights": "PASSED",
        f"ckpt-resume::{M}:swap_prone_nested::keras-weights": "SKIPPED",
    }
    independent.stdout.fnmatch_lines(["*optimizer variables did not survive*"])
    independent.stdout.fnmatch_lines(["*resumed training differs from training that never stopped*"])
    independent.stdout.fnmatch_lines(["*reproduce: pytest --ckpt-only --ckpt-resume --no-ckpt-roundtrip "
                                      f"--ckpt-models {C}:compiled_twin*"])
    independent.stdout.fnmatch_lines(["*SKIPPED*is not compiled: a resume check trains it*"])
    same = run(pytester, "--ckpt-roundtrip", "--ckpt-resume", "--ckpt-masks=same", "-v", SEED)
    assert outcomes_by_id(same)[f"ckpt-roundtrip::{C}:compiled_twin::keras-weights"] == "FAILED"
    assert outcomes_by_id(same)[f"ckpt-roundtrip::{C}:prebuilt_compiled_twin::keras-weights"] == "PASSED"


def test_state_no_format_saves_is_named_never_skipped_silently_once_per_factory(pytester):
    ini(pytester, [f"{C}:with_dropout"], formats="keras-weights, keras", examples=2)
    result = run(pytester, "--ckpt-roundtrip")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*pytest-ckpt notes*",
                                 f"{C}:with_dropout: 1 not compared "
                                 "(seed_generator/seed_generator_state): random-number generator state*"])
    assert sum("not compared" in line for line in result.outlines) == 1  # two formats, one note
