"""The state-tree file: every leaf back bit for bit, nothing unpickled (no TensorFlow)."""

import numpy as np
import pytest

from pytest_ckpt.framework.statetree import read_state_tree, write_state_tree


def test_a_nested_tree_comes_back_exactly(tmp_path):
    tree = {"trainable_variables": {"seq": {"dense": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
                                                      "bias": np.array([np.nan, -0.0], np.float32)}}},
            "non_trainable_variables": {},
            "optimizer_variables": {"adam": {"iteration": np.array(7, np.int64)}}}
    write_state_tree(tree, tmp_path / "t.npz")
    back = read_state_tree(tmp_path / "t.npz")
    kernel = back["trainable_variables"]["seq"]["dense"]["kernel"]
    assert kernel.dtype == np.float32 and kernel.shape == (2, 3) and (kernel == tree["trainable_variables"]["seq"]
                                                                       ["dense"]["kernel"]).all()
    bias = back["trainable_variables"]["seq"]["dense"]["bias"]
    assert bias.tobytes() == tree["trainable_variables"]["seq"]["dense"]["bias"].tobytes()  # NaN, -0.0
    assert back["optimizer_variables"]["adam"]["iteration"].shape == ()
    assert int(back["optimizer_variables"]["adam"]["iteration"]) == 7


def test_bfloat16_leaves_keep_their_dtype(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    value = np.array([1.5, -3.25], dtype=ml_dtypes.bfloat16)
    write_state_tree({"a": {"b": value}}, tmp_path / "t.npz")
    back = read_state_tree(tmp_path / "t.npz")["a"]["b"]
    assert back.dtype == value.dtype and back.tobytes() == value.tobytes()
