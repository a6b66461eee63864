"""Option parsing, format names and the results matrix (no TensorFlow)."""

import os

import pytest

from pytest_ckpt.errors import ConfigError, UnknownFormatError
from pytest_ckpt.formats import (FormatNotApplicable, applicable, format_names, get_format,
                                 parse_format_list)
from pytest_ckpt.options import check_report, check_tmpdir, parse_examples, parse_masks
from pytest_ckpt.session import CkptSession, ItemRecord
from pytest_ckpt.options import Settings
from pytest_ckpt.summary import matrix


def test_examples_must_be_a_positive_whole_number():
    assert parse_examples("7") == 7
    for bad in ("0", "-1", "many", "2.5"):
        with pytest.raises(ConfigError, match="whole number of at least 1"):
            parse_examples(bad)


def test_masks_policy():
    assert parse_masks("same") == "same" and parse_masks(None) == "independent"
    with pytest.raises(ConfigError, match="independent, same"):
        parse_masks("sometimes")


def test_tmpdir_must_exist_be_a_directory_and_be_writable(tmp_path):
    assert check_tmpdir("") is None
    assert check_tmpdir(str(tmp_path)) == str(tmp_path)
    assert list(tmp_path.iterdir()) == []  # the write probe cleans up after itself
    with pytest.raises(ConfigError, match="does not exist"):
        check_tmpdir(str(tmp_path / "nope"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        check_tmpdir(str(tmp_path / "file"))


def test_format_lists_and_names():
    assert parse_format_list("h5, keras-weights,h5") == ["h5", "keras-weights"]
    assert parse_format_list(["h5", "keras\nkeras-model"]) == ["h5", "keras", "keras-model"]
    assert "keras-weights" not in format_names("tf-keras")
    with pytest.raises(UnknownFormatError, match="unknown checkpoint format 'pickle'"):
        get_format("pickle")


def test_one_place_decides_which_formats_apply():
    assert "tf-checkpoint" in applicable("keras3", "tensorflow")
    assert "tf-checkpoint" not in applicable("keras3", "jax")
    assert "tf-checkpoint" in applicable("tf-keras", "tensorflow")
    assert applicable("keras3", "torch", migration=True) == ["h5", "h5-by-name"]
    with pytest.raises(FormatNotApplicable, match="needs the tensorflow backend"):
        get_format("tf-checkpoint", "keras3", "jax")
    with pytest.raises(FormatNotApplicable, match="does not apply to tf-keras"):
        get_format("keras-weights", "tf-keras")


def test_item_seeds_derive_from_the_session_seed_and_node_id():
    a = CkptSession(Settings(), explicit_seed=5)
    b = CkptSession(Settings(), explicit_seed=5)
    assert a.seed_for("x::h5") == b.seed_for("x::h5") != a.seed_for("x::keras")
    assert CkptSession(Settings(), explicit_seed=6).seed_for("x::h5") != a.seed_for("x::h5")


def test_matrix_is_a_factory_by_format_grid_in_the_formats_own_order():
    table = matrix([ItemRecord("roundtrip", "m:f", "h5", "FAIL: swapped"),
                    ItemRecord("roundtrip", "m:f", "keras", "pass"),
                    ItemRecord("roundtrip", "m:g", "keras", "pass")])
    assert table.splitlines() == [
        "| check | factory | keras | h5 |",
        "|---|---|---|---|",
        "| roundtrip | `m:f` | pass | FAIL: swapped |",
        "| roundtrip | `m:g` | pass |  |",
    ]


def test_matrix_rows_follow_the_configured_factories_whatever_order_workers_reported():
    records = [ItemRecord("roundtrip", "m:z", "h5", "pass"), ItemRecord("roundtrip", "m:a", "h5", "pass"),
               ItemRecord("resume", "m:a", "h5", "pass"), ItemRecord("roundtrip", "m:other", "h5", "pass")]
    rows = [line.split("|")[1:3] for line in matrix(records, ["m:z", "m:a"]).splitlines()[2:]]
    assert [(k.strip(), f.strip()) for k, f in rows] == [
        ("resume", "`m:a`"), ("roundtrip", "`m:z`"), ("roundtrip", "`m:a`"), ("roundtrip", "`m:other`")]


def test_report_path_must_be_a_file_in_an_existing_folder(tmp_path):
    assert check_report("") is None
    assert check_report(str(tmp_path / "r.md")) == str(tmp_path / "r.md")
    os.mkfifo(tmp_path / "pipe.md")
    for bad in (tmp_path, tmp_path / "missing" / "r.md", tmp_path / "pipe.md"):
        with pytest.raises(ConfigError, match="--ckpt-report"):
            check_report(str(bad))
