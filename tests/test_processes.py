"""What a fresh pytest process does: what collection imports, xdist, the full-size model.

These start real subprocesses (TensorFlow starts in each), so they are the
slowest tests; the full-size ResNet50 and the multi-worker run are marked slow.
"""

import re

import pytest

from pytest_ckpt.framework.formats import applicable
from tests.conftest import BACKEND

M = "pytest_ckpt.models"
C = "tests.cases"
HEAVY = ("tensorflow", "keras", "tf_keras", "jax", "torch", "h5py", "numpy")

RECORD_IMPORTS = """
import sys

def pytest_collection_finish(session):
    watched = {watched!r}
    with open("imported.txt", "w") as f:
        f.write(" ".join(m for m in watched if m in sys.modules))
"""


def test_collection_imports_no_factory_module_and_no_framework(pytester, project_on_path):
    pytester.makeconftest(RECORD_IMPORTS.format(watched=HEAVY + ("tests.cases", "pytest_ckpt.models")))
    pytester.makeini(f"[pytest]\nckpt_models =\n    {C}:nested_same_shaped\n    {M}:classic_nested\n")
    result = pytester.runpytest_subprocess("--ckpt-roundtrip", "--collect-only", "-q",
                                           "-p", "no:cacheprovider")
    assert (pytester.path / "imported.txt").read_text() == ""
    # The formats still fit the framework (read from the module's source) and
    # the backend: every Keras 3 format, tf-checkpoint only on TensorFlow.
    formats = applicable("keras3", BACKEND)
    result.stdout.fnmatch_lines([f"ckpt-roundtrip::{C}:nested_same_shaped::{formats[-1]}",
                                 f"{2 * len(formats)} tests collected*"])


def test_without_the_flag_nothing_is_collected_and_nothing_heavy_imported(pytester):
    pytester.makeini(f"[pytest]\nckpt_models = {M}:classic_nested\n")
    pytester.makepyfile(test_plain=f"""
        import sys
        def test_idle():
            heavy = {{m for m in {HEAVY!r} + ("hypothesis",) if m in sys.modules}}
            assert not heavy, heavy
    """)
    # Not -v: Hypothesis's own plugin imports hypothesis to print its header.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)  # and no round-trip item


def verdicts(result):
    found = {}
    for line in result.outlines:
        m = re.search(r"(PASSED|FAILED) (ckpt-roundtrip::\S+)", line) or re.search(
            r"(ckpt-roundtrip::\S+) (PASSED|FAILED)", line)
        if m:
            a, b = m.groups()
            item, verdict = (b, a) if a in ("PASSED", "FAILED") else (a, b)
            found[item.split("@")[0]] = verdict
    return found


@pytest.mark.slow
def test_xdist_gives_the_verdicts_of_a_serial_run_and_one_matrix(pytester, project_on_path):
    pytester.makeini(f"""
        [pytest]
        ckpt_models =
            {C}:nested_same_shaped
            {M}:classic_functional
        ckpt_formats = h5, keras-weights
        ckpt_examples = 3
    """)
    args = ("--ckpt-roundtrip", "-v", "-p", "no:cacheprovider", "--hypothesis-seed=3")
    serial = pytester.runpytest_subprocess(*args)
    summary = pytester.path / "step_summary.md"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GITHUB_STEP_SUMMARY", str(summary))
        parallel = pytester.runpytest_subprocess(*args, "-n", "2", "--ckpt-report=matrix.md")
    assert len(verdicts(serial)) == 4
    assert verdicts(parallel) == verdicts(serial)
    assert verdicts(serial)[f"ckpt-roundtrip::{C}:nested_same_shaped::h5"] == "FAILED"
    # The controller gathers every worker's verdicts into one matrix.
    rows = [f"| roundtrip | `{C}:nested_same_shaped` | pass | FAIL: swapped |",
            f"| roundtrip | `{M}:classic_functional` | pass | pass |"]
    parallel.stdout.fnmatch_lines(rows)
    # Written once, by the controller, whole: workers hold only their own items.
    report = (pytester.path / "matrix.md").read_text().splitlines()
    assert sorted(r for r in report if r.startswith("| roundtrip")) == sorted(rows)
    assert summary.read_text().count("## pytest-ckpt results") == 1


@pytest.mark.slow
def test_full_size_nested_resnet50_is_caught_under_h5(pytester):
    pytester.makeini(f"""
        [pytest]
        ckpt_models = {M}:resnet50_nested
        ckpt_formats = h5
        ckpt_examples = 20
    """)
    result = pytester.runpytest_subprocess("--ckpt-roundtrip", "-p", "no:cacheprovider",
                                           "--hypothesis-seed=20261128")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"checkpoint round trip failed: {M}:resnet50_nested",
        "*format:    h5 (keras3)*",
        "*of 320 variables did not survive*",
        "*cause:  legacy HDF5 matches weights by position*freeze state of resnet50 differs*",
    ])


# Each starts and kills a whole pytest run with its loading processes: half a minute.
@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_cancelled_run_leaves_no_temporary_folders(pytester, project_on_path, tmp_path, signal_name):
    import signal
    import subprocess
    import sys
    import time

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    pytester.makeini(f"[pytest]\nckpt_models = {C}:forgetful_int8_late\nckpt_formats = h5\n")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "--ckpt-roundtrip", "-p", "no:cacheprovider",
                             f"--ckpt-tmpdir={scratch}"], cwd=pytester.path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not list(scratch.glob("pytest-ckpt-*")) and time.monotonic() < deadline:
        time.sleep(0.2)  # wait for the check to start working in its folder
    assert list(scratch.glob("pytest-ckpt-*")), "the check never started"
    proc.send_signal(getattr(signal, signal_name))
    proc.wait(timeout=120)
    assert list(scratch.iterdir()) == []


@pytest.mark.slow
def test_generated_checks_get_work_stealing_unless_the_user_chose_a_scheduler(pytester):
    # No factory: the settings-error item and two plain tests are enough to see the scheduler.
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_plain="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    base = ("-v", "-n", "2", "-p", "no:cacheprovider")
    ours = pytester.runpytest_subprocess("--ckpt-roundtrip", *base)
    ours.stdout.fnmatch_lines(["ckpt: seed *; xdist schedules by work stealing*",
                               "scheduling tests via WorkStealingScheduling"])
    # Nothing is scheduled when collecting only: the header must not say how.
    collecting = pytester.runpytest_subprocess("--ckpt-roundtrip", "--collect-only", *base)
    collecting.stdout.no_fnmatch_line("*work stealing*")
    for args in (("--ckpt-roundtrip", "--dist", "load"), ("--ckpt-roundtrip", "-d"), ()):
        result = pytester.runpytest_subprocess(*args, *base)
        result.stdout.fnmatch_lines(["scheduling tests via LoadScheduling"])
        result.stdout.no_fnmatch_line("*work stealing*")
