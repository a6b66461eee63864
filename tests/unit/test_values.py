"""Values and pre-load values: distinct, and different everywhere, in every dtype (NumPy only)."""

import ml_dtypes
import numpy as np
import pytest

from pytest_ckpt.values import distinct_values, preload_values

DTYPES = [np.float32, np.float16, ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, np.float64,
          np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint32, np.bool_]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(), (1,), (3, 4), (0,)])
def test_preload_differs_from_saved_in_every_element(dtype, shape):
    rng = np.random.default_rng(0)
    # Many variables: an index-based pre-load value would wrap around in int8.
    for saved in distinct_values([(shape, np.dtype(dtype))] * 300, rng):
        before = preload_values(saved)
        assert before.dtype == saved.dtype and before.shape == saved.shape
        assert not np.any(before == saved)


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.int8, np.uint8],
                         ids=lambda d: np.dtype(d).name)
def test_same_shaped_variables_get_distinct_values(dtype):
    values = distinct_values([((4,), np.dtype(dtype))] * 50, np.random.default_rng(1))
    assert len({v.tobytes() for v in values}) == 50


def test_preload_of_one_variable_is_never_another_variables_saved_value():
    # Saved values are positive; pre-load values of signed and float dtypes
    # are negative, of unsigned ones zero.
    values = distinct_values([((5,), np.dtype(np.int8))] * 40 + [((5,), np.dtype(np.float16))] * 40,
                             np.random.default_rng(2))
    saved = {v.tobytes() for v in values}
    assert not any(preload_values(v).tobytes() in saved for v in values)
    assert all(np.all(v > 0) for v in values)


def test_tiny_domains_keep_every_variable_but_may_repeat():
    values = distinct_values([((), np.dtype(np.bool_))] * 5, np.random.default_rng(3))
    assert len(values) == 5  # two bool scalars can hold only two distinct values
