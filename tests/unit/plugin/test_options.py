"""Option parsing and settings (no TensorFlow)."""

import os

import pytest

from pytest_ckpt.errors import ConfigError
from pytest_ckpt.plugin.options import Settings, check_report, check_tmpdir, parse_examples, parse_masks
from pytest_ckpt.plugin.session import CkptSession


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


def test_item_seeds_derive_from_the_session_seed_and_node_id():
    a = CkptSession(Settings(), explicit_seed=5)
    b = CkptSession(Settings(), explicit_seed=5)
    assert a.seed_for("x::h5") == b.seed_for("x::h5") != a.seed_for("x::keras")
    assert CkptSession(Settings(), explicit_seed=6).seed_for("x::h5") != a.seed_for("x::h5")


def test_report_path_must_be_a_file_in_an_existing_folder(tmp_path):
    assert check_report("") is None
    assert check_report(str(tmp_path / "r.md")) == str(tmp_path / "r.md")
    os.mkfifo(tmp_path / "pipe.md")
    for bad in (tmp_path, tmp_path / "missing" / "r.md", tmp_path / "pipe.md"):
        with pytest.raises(ConfigError, match="--ckpt-report"):
            check_report(str(bad))
