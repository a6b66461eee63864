"""Results files and their merge into one matrix (no TensorFlow)."""

import json

import pytest

from pytest_ckpt.report.matrix import Cell, MergeError, Results, matrix, merge

SETTINGS = {"formats": ["keras-weights", "h5"], "examples": 3, "masks": "independent"}


def write(tmp_path, name, cells, version="0.2.0", settings=SETTINGS, factories=("m:a", "m:b")):
    path = tmp_path / name
    path.write_text(Results(version, dict(settings), list(factories), cells).dumps())
    return str(path)


A_KW, A_H5 = Cell("roundtrip", "m:a", "keras-weights", "pass"), Cell("roundtrip", "m:a", "h5", "FAIL: swapped")
B_KW, B_H5 = Cell("roundtrip", "m:b", "keras-weights", "pass"), Cell("roundtrip", "m:b", "h5", "pass")


def test_shards_merge_into_the_matrix_of_the_whole_run(tmp_path):
    whole = matrix([A_KW, A_H5, B_KW, B_H5], ["m:a", "m:b"], ["keras-weights", "h5"])
    files = [write(tmp_path, "1.json", [B_H5, A_KW]), write(tmp_path, "2.json", [A_H5]),
             write(tmp_path, "3.json", [B_KW])]
    assert merge(files, ["keras-weights", "h5"]) == (whole, [])


def test_a_cell_in_two_files_and_a_cell_in_none_are_named(tmp_path):
    files = [write(tmp_path, "1.json", [A_KW, A_H5, B_KW]), write(tmp_path, "2.json", [A_KW])]
    _, problems = merge(files)
    assert any(p.startswith("duplicated: roundtrip m:a [keras-weights]") and "1.json" in p and "2.json" in p
               for p in problems)
    assert "missing: roundtrip m:b [h5]" in problems


@pytest.mark.parametrize("other, message", [
    (dict(version="0.3.0"), "pytest-ckpt 0.3.0"),
    (dict(settings={**SETTINGS, "examples": 20}), "different settings (examples)"),
])
def test_files_of_another_version_or_other_settings_are_refused(tmp_path, other, message):
    files = [write(tmp_path, "1.json", [A_KW]), write(tmp_path, "2.json", [A_H5], **other)]
    with pytest.raises(MergeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        merge(files)


def test_a_file_that_is_not_ours_is_named(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"cells": []}))
    with pytest.raises(MergeError, match=r"x\.json: not a pytest-ckpt results file"):
        merge([str(bad)])
