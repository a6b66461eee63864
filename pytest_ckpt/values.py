"""Values that make every variable recognisable, in every dtype.

A round trip is only honest if:
- each variable holds values no other same-shaped variable holds (fresh
  BatchNorm has gamma=1, beta=0: a swap would be invisible);
- before the load, each loading variable holds a value that differs from its
  saved value in *every element*, so "never loaded" can never pass.

Saved values are positive: random in [1, 2) for floats (any width: float16,
bfloat16, float8 keep distinct values), positive integers for integer
dtypes, random bits for bools.  A loading variable's pre-load value is its
saved value transformed element by element: negated (floats and signed
integers: never equal, never another variable's positive value), zero
(unsigned integers: saved values are >= 1) or inverted (bools).  Nothing
here depends on a variable's index, so nothing can wrap around.
"""

from __future__ import annotations

import hashlib

import numpy as np

# How a pre-load value is made from the saved one.
NEGATE = "negate"
ZERO = "zero"
INVERT = "invert"

_REDRAWS = 8


def numpy_dtype(variable) -> np.dtype:
    """The dtype the backend stores the variable in, which can be narrower than declared:
    JAX without x64 keeps float64 and int64 as 32 bits, PyTorch keeps uint16 as int32."""
    stored = getattr(variable, "value", None)  # Keras 3; tf-keras: value() is a method
    dtype = getattr(stored, "dtype", None) if stored is not None and not callable(stored) else None
    dtype = variable.dtype if dtype is None else dtype
    dtype = getattr(dtype, "as_numpy_dtype", dtype)  # tf.DType
    if type(dtype).__module__ == "torch":
        dtype = str(dtype).removeprefix("torch.")
    try:
        return np.dtype(dtype)
    except TypeError:
        pass
    try:  # bfloat16, float8_*: NumPy knows them through ml_dtypes
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, str(dtype)))
    except (ImportError, AttributeError, TypeError):
        return np.asarray(variable.numpy()).dtype


def widened(array: np.ndarray | None) -> np.ndarray | None:
    """bfloat16 and float8 (NumPy kind 'V', through ml_dtypes) as float32, which holds them exactly.

    So they compare as floats (NaN equal to NaN, with a tolerance), and
    ``.npz`` files keep them: NumPy would store them as raw void bytes
    that no longer compare with the dtype they came from.
    """
    if array is not None and array.dtype.kind == "V" and "float" in array.dtype.name:
        return array.astype(np.float32)
    return array


def preload_kind(dtype: np.dtype) -> str:
    if dtype == np.bool_:
        return INVERT
    if np.issubdtype(dtype, np.unsignedinteger):
        return ZERO
    return NEGATE


def preload_values(saved: np.ndarray) -> np.ndarray:
    """The value a loading variable holds before the load: differs from ``saved`` everywhere."""
    kind = preload_kind(saved.dtype)
    if kind == INVERT:
        return ~saved
    if kind == ZERO:
        return np.zeros_like(saved)
    return -saved


def _draw(shape, dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        high = min(int(np.iinfo(dtype).max), 1 << 20)
        return rng.integers(1, high, size=shape, endpoint=True).astype(dtype)
    # Drawn in float32 (fast), then cast: [1, 2) survives any float width.
    values = rng.random(shape, dtype=np.float32) + np.float32(1.0)
    return values.astype(dtype, copy=False)


def _digest(array: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).digest()


def distinct_values(specs, rng: np.random.Generator) -> list[np.ndarray]:
    """One array per ``(shape, dtype)`` in ``specs``, no two of them equal."""
    return list(iter_distinct_values(specs, rng))


def iter_distinct_values(specs, rng: np.random.Generator):
    """The same, one array at a time: a large model's values never all sit in memory.

    Collisions only happen in tiny domains (bool or int8 scalars, float8);
    a colliding array is redrawn a few times, and in a domain too small to
    hold them all the last draw stays (such swaps cannot be told apart).
    """
    seen: set[tuple] = set()
    for shape, dtype in specs:
        for _ in range(_REDRAWS):
            value = _draw(shape, dtype, rng)
            key = (tuple(shape), dtype.str, _digest(value))
            if key not in seen:
                break
        seen.add(key)
        yield value
