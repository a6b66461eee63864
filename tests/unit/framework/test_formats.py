"""Format names and lookup (no TensorFlow)."""

import pytest

from pytest_ckpt.errors import UnknownFormatError
from pytest_ckpt.framework.formats import FormatNotApplicable, applicable, format_names, get_format, parse_format_list


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
