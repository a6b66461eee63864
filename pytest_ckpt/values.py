"""Values that make every variable recognisable.

A round trip is only honest if each variable holds values no other variable
holds (fresh BatchNorm has gamma=1, beta=0: a swap would be invisible) and
the loading model starts from values the saving model never had (or
"never loaded" would look like success).

Saved values are random in [1, 2) (positive integers for integer weights),
drawn once per model.  The loader's pre-load value is a negative constant
per variable: a constant is a memset, cheap enough to reset before every
load, and can never equal a random saved array of more than one element.
"""

from __future__ import annotations

import numpy as np


def numpy_dtype(variable) -> np.dtype:
    dtype = variable.dtype
    dtype = getattr(dtype, "as_numpy_dtype", dtype)  # tf.DType (tf-keras)
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.asarray(variable.numpy()).dtype


def saved_values(shape, dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    if dtype == np.bool_:
        return np.ones(shape, dtype=bool)
    if np.issubdtype(dtype, np.integer):
        high = min(int(np.iinfo(dtype).max), 1 << 20)
        return rng.integers(1, high, size=shape, endpoint=True).astype(dtype)
    # Draw in float32 (fast), then cast: bf16/fp16 weights keep distinct values.
    return (rng.random(shape, dtype=np.float32) + 1.0).astype(dtype, copy=False)


def sentinel(index: int, dtype: np.dtype):
    """The pre-load value of the index-th variable: distinct per variable."""
    if dtype == np.bool_:
        return False
    if np.issubdtype(dtype, np.unsignedinteger):
        return 0
    if np.issubdtype(dtype, np.integer):
        return -(index + 1)
    return -(1000.0 + index)


def sentinel_values(shape, dtype: np.dtype, index: int) -> np.ndarray:
    return np.full(shape, sentinel(index, dtype), dtype=dtype)
