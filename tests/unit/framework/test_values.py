"""Values and pre-load values: distinct, and different everywhere, in every dtype (NumPy only)."""

import ml_dtypes
import numpy as np
import pytest

from pytest_ckpt.framework.values import distinct_values, iter_distinct_values, preload_values

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
    values = distinct_values([((5,), np.dtype(np.int8))] * 40 + [((5,), np.dtype(np.float16))] * 40
                             + [((), np.dtype(ml_dtypes.float8_e4m3fn))] * 40, np.random.default_rng(2))
    saved = {(v.dtype.str, v.tobytes()) for v in values}
    assert not any((v.dtype.str, preload_values(v).tobytes()) in saved for v in values[:80])
    assert all(np.all(v > 0) for v in values[:40])  # integers: positive, their pre-load negative


def test_values_keep_the_scale_and_sign_their_initializer_gave():
    rng = np.random.default_rng(4)
    kernel = rng.normal(scale=0.05, size=(64, 32)).astype(np.float32)
    specs = [((64, 32), np.dtype(np.float32), kernel), ((32,), np.dtype(np.float32), np.ones(32, np.float32)),
             ((32,), np.dtype(np.float32), np.zeros(32, np.float32)),
             ((3,), np.dtype(np.float32), np.array([25.0, 4.0, 9.0], np.float32))]
    k, ones, zeros, variance = iter_distinct_values(specs, rng)
    assert abs(float(k.mean())) < 0.01 and 0.02 < float(k.std()) < 0.1  # a kernel: centred, its spread
    assert np.all((ones > 0.8) & (ones < 1.2))  # BatchNorm's gamma, moving variance: near one, positive
    assert np.all(np.abs(zeros) < 0.1) and np.all(zeros != 0)  # biases: small, never zero
    assert np.all(variance > 0)  # statistics of one sign keep it


def test_tiny_domains_keep_every_variable_but_may_repeat():
    values = distinct_values([((), np.dtype(np.bool_))] * 5, np.random.default_rng(3))
    assert len(values) == 5  # two bool scalars can hold only two distinct values
