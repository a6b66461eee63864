"""Saves killed part-way (--ckpt-crash): the folder must hold the old checkpoint or the new one.

Each verdict has its two-process plain-Keras truth in ``tests/truth/crash.py`` (a save killed
by SIGKILL once the file is truncated or a temporary file appears, a fresh process loads); the
agreement tests are in ``tests/test_truth.py``.
"""

import tempfile
from pathlib import Path

import pytest

from pytest_ckpt.checks.crash import CrashState, check_crash
from pytest_ckpt.report.crash import render_crash, verdict
from tests.conftest import files_of

M = "pytest_ckpt.models"
U = "tests.user_formats"


def test_an_in_place_save_killed_part_way_loses_the_previous_checkpoint():
    outcome = check_crash(f"{M}:swap_prone_nested", "keras-weights", points=5)
    assert not outcome.passed and {p.state for p in outcome.failures} == {CrashState.LOST}
    assert any("h5py" in p.event for p in outcome.failures)  # inside the h5py file it truncated
    assert outcome.points[0].state == CrashState.OLD and outcome.points[-1].state == CrashState.NEW
    text = render_crash(outcome, reproduce="pytest ...")
    assert "writes the checkpoint in place" in text and "os.replace()" in text and "bytes" in text
    assert verdict(outcome) == "FAIL: lost"


@pytest.mark.slow
def test_an_atomic_saver_leaves_the_old_or_the_new_at_every_kill_point():
    outcome = check_crash(f"{M}:swap_prone_nested", f"{U}:AtomicWeights", points=5)
    assert outcome.passed, render_crash(outcome)
    assert {p.state for p in outcome.points} == {CrashState.OLD, CrashState.NEW}


@pytest.mark.slow
def test_two_files_replaced_one_after_the_other_mix_old_and_new():
    outcome = check_crash(f"{M}:swap_prone_nested", f"{U}:SplitAtomic", points=12)
    assert {p.state for p in outcome.failures} == {CrashState.MIXED}
    assert "mixes the old state with the new" in render_crash(outcome)


# The whole --ckpt-crash session (70 s on 2 cores) runs in CI's slow step, keeping the README's
# command under its 5 minutes; the check's known-bad kinds stay in it.
@pytest.mark.slow
def test_crash_items_run_beside_the_rest_and_leave_nothing_behind(pytester, project_on_path):
    pytester.makeini(f"""
        [pytest]
        ckpt_models = {M}:swap_prone_nested
        ckpt_formats =
            keras-weights
            {U}:AtomicWeights
    """)
    before = files_of(pytester)
    result = pytester.runpytest_subprocess("--ckpt-crash", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        f"ckpt-crash::{M}:swap_prone_nested::keras-weights FAILED*",
        f"ckpt-crash::{M}:swap_prone_nested::{U}:AtomicWeights PASSED*",
        "*killed save left no whole checkpoint*",
        "*reproduce: pytest --ckpt-only --ckpt-crash --no-ckpt-roundtrip --no-ckpt-resume*",
        f"*| crash | `{M}:swap_prone_nested` | FAIL: lost | pass |*",
    ])
    assert files_of(pytester) == before


def test_a_format_that_needs_a_compiled_model_skips_an_uncompiled_one_with_the_reason():
    from pytest_ckpt.framework.formats import FormatNotApplicable

    with pytest.raises(FormatNotApplicable, match="not compiled"):
        check_crash(f"{M}:swap_prone_nested", "state-tree", points=2)


# Keras's training callbacks as fit drives them (Keras 3).  Truth: tests/truth/crash.py with the
# same calls gives the same verdicts (see docs/formats.md, "Killed saves").
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["model-checkpoint", "backup-and-restore"])
def test_callbacks_that_write_in_place_lose_the_last_checkpoint_when_killed(fmt):
    outcome = check_crash(f"{M}:compiled_swap_prone_nested", fmt, points=6)
    assert CrashState.LOST in {p.state for p in outcome.failures}
    assert outcome.points[-1].state == CrashState.NEW


@pytest.mark.slow
def test_backup_and_restore_is_killed_between_its_two_writes_too():
    outcome = check_crash(f"{M}:compiled_swap_prone_nested", "backup-and-restore", points=12)
    metadata = [p for p in outcome.failures if "training_metadata.json" in p.event]
    assert metadata and {p.state for p in metadata} == {CrashState.LOST, CrashState.MIXED}
    # Killed after the new weights, before the epoch: the new weights with the old epoch.
    between = [p for p in metadata if p.state == CrashState.MIXED]
    assert between and all(p.stale == ["fit: the epoch training goes on from"] for p in between)


@pytest.mark.slow
def test_a_format_whose_round_trip_fails_is_not_blamed_on_the_kill():
    outcome = check_crash("pytest_ckpt.models:fine_tuning_resumable", "keras-model", points=3)
    assert not outcome.passed and outcome.points[-1].state == CrashState.MIXED
    assert "the round trip itself fails" in render_crash(outcome)


# Each crash check starts a fresh interpreter per kill point: the README's command keeps one
# known-bad case per kind, the rest run in the slow step.
@pytest.mark.parametrize("fmt", ["RawInPlace", pytest.param("H5InPlace", marks=pytest.mark.slow)])
def test_a_file_rewritten_in_place_without_truncation_is_caught_between_two_writes(fmt):
    outcome = check_crash(f"{M}:swap_prone_nested", f"{U}:{fmt}", points=6)
    mixed = [p for p in outcome.points if p.state == CrashState.MIXED]
    assert mixed and all("about to write" in p.event for p in mixed), [(p.state, p.event) for p in outcome.points]
    assert outcome.points[-1].state == CrashState.NEW


def test_a_file_rewritten_through_a_memory_map_is_caught_by_the_file_itself():
    outcome = check_crash(f"{M}:swap_prone_nested", f"{U}:MappedInPlace", points=6)
    assert not outcome.passed and outcome.in_place == ["ckpt/state.bin"]
    assert verdict(outcome) == "FAIL: in place"
    assert "rewrote ckpt/state.bin in place" in render_crash(outcome)


@pytest.mark.slow
def test_a_file_renamed_before_it_was_closed_is_caught_just_after_the_rename():
    outcome = check_crash(f"{M}:swap_prone_nested", f"{U}:RenamedBeforeClose", points=6)
    lost = [p for p in outcome.failures if p.state == CrashState.LOST]
    assert lost and all(p.event.startswith("just renamed") for p in lost)


@pytest.mark.slow
def test_writes_below_the_file_objects_are_kill_points_too():
    outcome = check_crash(f"{M}:swap_prone_nested", f"{U}:OsWriteInPlace", points=6)
    assert any("os.write" in e for e in outcome.events)
    assert CrashState.LOST in {p.state for p in outcome.failures}


@pytest.mark.slow
def test_what_a_format_prints_does_not_confuse_the_check():
    assert check_crash(f"{M}:swap_prone_nested", f"{U}:ChattyAtomic", points=3).passed


@pytest.mark.slow
def test_a_format_writing_outside_its_folder_is_named():
    from pytest_ckpt.errors import CrashCheckError

    try:
        with pytest.raises(CrashCheckError, match="writes outside the folder it is given"):
            check_crash(f"{M}:swap_prone_nested", f"{U}:WritesElsewhere", points=2)
    finally:
        (Path(tempfile.gettempdir()) / "pytest-ckpt-test-elsewhere.weights.h5").unlink(missing_ok=True)


@pytest.mark.slow
def test_a_broken_format_fails_its_own_item_and_not_the_factory_s_others(pytester, project_on_path):
    pytester.makeini(f"""
        [pytest]
        ckpt_models = {M}:swap_prone_nested
        ckpt_formats = {U}:RaisesInSave, {U}:AtomicWeights
    """)
    result = pytester.runpytest_subprocess("--ckpt-crash", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the bucket is not reachable*",
                                 f"*| crash | `{M}:swap_prone_nested` | FAIL: format | pass |*"])
    assert "oneDNN" not in result.stdout.str()


def test_a_factory_object_is_refused_with_the_name_the_fresh_processes_need():
    from pytest_ckpt.errors import ConfigError
    from pytest_ckpt.models import swap_prone_nested

    with pytest.raises(ConfigError, match="module:attr"):
        check_crash(swap_prone_nested, "keras-weights")
