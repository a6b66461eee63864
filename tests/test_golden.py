"""Golden-checkpoint regression tests end to end, and the checkpoint inspector."""

import hashlib
import shutil
import subprocess
import sys

import pytest

MODEL = """
import os
import keras

VARIANT = os.environ.get("VARIANT", "base")


def build():
    first, second = ("alpha", "second") if VARIANT == "renamed" else ("first", "second")
    units = 4 if VARIANT == "shape" else 3
    inp = keras.Input((4,))
    a = keras.layers.Dense(4, name=first)
    b = keras.layers.Dense(4, name=second)
    x = a(b(inp)) if VARIANT == "reorder" else b(a(inp))
    return keras.Model(inp, keras.layers.Dense(units, name="head")(x))


def test_model(ckpt_regression):
    ckpt_regression.check(build())
    ckpt_regression.check(build(), format="h5-by-name")
"""


def digest(root):
    """Every golden file and its checksum: proof that nothing was modified."""
    folder = root / "ckpt_golden"
    if not folder.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def run(pytester, monkeypatch):
    def run(*args, variant="base"):
        monkeypatch.setenv("VARIANT", variant)
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--hypothesis-seed=7", *args)

    return run


def test_golden_lifecycle(pytester, run):
    pytester.makepyfile(test_reg=MODEL)
    # Missing golden: fails, writes nothing.
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no golden checkpoint at *ckpt_golden/test_reg/test_model for this "
                                 "check; create it with pytest --ckpt-update*"])
    assert digest(pytester.path) == {}
    # --ckpt-update writes one file set per check, numbered, atomically (no temp files left).
    run("--ckpt-update").assert_outcomes(passed=1)
    golden = digest(pytester.path)
    assert sorted(golden) == [
        "ckpt_golden/test_reg/test_model-2/checkpoint.h5",
        "ckpt_golden/test_reg/test_model-2/manifest.txt",
        "ckpt_golden/test_reg/test_model-2/outputs.npz",
        "ckpt_golden/test_reg/test_model/checkpoint.weights.h5",
        "ckpt_golden/test_reg/test_model/manifest.txt",
        "ckpt_golden/test_reg/test_model/outputs.npz",
    ]
    manifest = (pytester.path / "ckpt_golden/test_reg/test_model/manifest.txt").read_text()
    assert "framework: keras3" in manifest and "format: keras-weights" in manifest
    assert "keras_version: 3." in manifest and "1:Dense/kernel\t4x4\tfloat32\t" in manifest
    # Unchanged model: passes.
    run().assert_outcomes(passed=1)
    # A renamed layer: keras-weights keys by path and still loads; by name it is not loaded.
    renamed = run(variant="renamed")
    renamed.assert_outcomes(failed=1)
    renamed.stdout.fnmatch_lines(["golden checkpoint check failed: *test_model-2",
                                  "*format:    h5-by-name*",
                                  "*1:Dense/kernel  not_loaded*"])
    # Two same-shaped layers applied in the other order: swapped, naming both.
    reordered = run(variant="reorder")
    reordered.assert_outcomes(failed=1)
    reordered.stdout.fnmatch_lines(["*1:Dense/kernel  swapped  holds the golden value of 2:Dense/kernel (second/kernel)*"])
    # A changed shape: reported before any load.
    reshaped = run(variant="shape")
    reshaped.assert_outcomes(failed=1)
    reshaped.stdout.fnmatch_lines(["*shape or dtype changed (2):*", "*3:Dense/kernel: (4, 3) float32 -> (4, 4) float32*"])
    # None of the failing runs touched a golden.
    assert digest(pytester.path) == golden
    # --ckpt-update accepts the change.
    run("--ckpt-update", variant="shape").assert_outcomes(passed=1)
    assert digest(pytester.path) != golden
    run(variant="shape").assert_outcomes(passed=1)


def test_parallel_updates_write_complete_golden_sets(pytester, run):
    body = "\n".join(f"""
def test_m{i}(ckpt_regression):
    ckpt_regression.check(build())
    ckpt_regression.check(build())
""" for i in range(6))
    pytester.makepyfile(test_many=MODEL.split("def test_model")[0] + body)
    run("--ckpt-update", "-n", "2").assert_outcomes(passed=6)
    files = digest(pytester.path)
    assert len(files) == 6 * 2 * 3 and not any(".tmp-" in f for f in files)
    run("-n", "2").assert_outcomes(passed=6)


@pytest.fixture
def golden(pytester, run):
    pytester.makepyfile(test_reg=MODEL)
    run("--ckpt-update").assert_outcomes(passed=1)
    return pytester.path / "ckpt_golden/test_reg/test_model"


def test_truncated_golden_checkpoint_is_named(pytester, golden, run):
    ckpt = golden / "checkpoint.weights.h5"
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    before = digest(pytester.path)
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*golden file {ckpt} does not match its manifest*"])
    assert "Traceback" not in result.stdout.str() and digest(pytester.path) == before


def test_nonsense_manifest_is_named_with_its_line(pytester, golden, run):
    manifest = golden / "manifest.txt"
    lines = manifest.read_text().splitlines()
    lines[-1] = "1:Dense/kernel\tfour by four\tfloat32\tnot-a-checksum"
    manifest.write_text("\n".join(lines) + "\n")
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{manifest}, line {len(lines)}: cannot parse*"])


def test_read_only_golden_folder_with_update_is_a_clear_error(pytester, golden, run):
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(golden)]).returncode:
        pytest.skip("needs chattr +i to make a folder read-only for root")
    try:
        result = run("--ckpt-update", variant="shape")
    finally:
        subprocess.run(["chattr", "-i", str(golden)], check=True)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*cannot write golden folder {golden}: *"])

