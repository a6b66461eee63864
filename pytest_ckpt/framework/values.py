"""Values that make every variable recognisable, in every dtype.

A round trip is only honest if:
- each variable holds values no other variable holds (fresh BatchNorm has
  gamma=1, beta=0: a swap between them would be invisible);
- before the load, each loading variable holds a value that differs from its
  saved value in *every element*, so "never loaded" can never pass;
- the model computes with them as a trained model would: weights of
  arbitrary magnitude saturate activations (pre-activations of 1e5, a softmax
  exactly one-hot), and a changed activation or a misplaced tower would then
  compute the same outputs.

So a float variable's saved value keeps the scale its initializer gave it:
a variable initialized to a constant (biases, BatchNorm's gamma, beta and
moving statistics) gets that constant plus small noise, one initialized at
random (kernels, embeddings) random values with its spread and random signs.
No element is zero, so its negation differs from it everywhere, and no value
is another one's negation.  Integers get positive values, bools random bits.

A loading variable's pre-load value is its saved value transformed element
by element: negated (floats and signed integers), zero (unsigned integers:
saved values are >= 1) or inverted (bools).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np


class Preload(enum.Enum):
    """How a pre-load value is made from the saved one."""

    NEGATE = "negate"
    ZERO = "zero"
    INVERT = "invert"


_REDRAWS = 8
# Spread of the noise on a constant-initialized variable: a tenth of the constant,
# at least this (a zero bias gets +-0.025..0.075: small, as trained biases are).
_MIN_SPREAD = 0.05


def numpy_dtype(variable: Any) -> np.dtype:
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


def is_float(dtype: np.dtype) -> bool:
    """Floats, including ml_dtypes' bfloat16 and float8 (NumPy kind 'V')."""
    return dtype.kind == "f" or (dtype.kind == "V" and "float" in dtype.name)


def widened(array: np.ndarray | None) -> np.ndarray | None:
    """bfloat16 and float8 (NumPy kind 'V', through ml_dtypes) as float32, which holds them exactly.

    So they compare as floats (NaN equal to NaN, with a tolerance), and
    ``.npz`` files keep them: NumPy would store them as raw void bytes
    that no longer compare with the dtype they came from.
    """
    if array is not None and array.dtype.kind == "V" and "float" in array.dtype.name:
        return array.astype(np.float32)
    return array


def preload_kind(dtype: np.dtype) -> Preload:
    if dtype == np.bool_:
        return Preload.INVERT
    if np.issubdtype(dtype, np.unsignedinteger):
        return Preload.ZERO
    return Preload.NEGATE


def preload_values(saved: np.ndarray) -> np.ndarray:
    """The value a loading variable holds before the load: differs from ``saved`` everywhere."""
    kind = preload_kind(saved.dtype)
    if kind is Preload.INVERT:
        return ~saved
    if kind is Preload.ZERO:
        return np.zeros_like(saved)
    return -saved


def _spread_of(initial: np.ndarray | None) -> tuple[float, float]:
    """(centre, spread) for a variable whose initializer gave it ``initial``.

    Values of one sign keep it (a variance, a count, a scale): the noise stays
    within half the centre.  Mixed signs (a kernel) get random signs around zero.
    """
    if initial is None or initial.size == 0:
        return 0.0, 1.0
    wide = np.asarray(initial, dtype=np.float64)
    if not np.all(np.isfinite(wide)):
        return 0.0, 1.0
    low, high = float(wide.min()), float(wide.max())
    if low == high:  # a constant: zeros, ones, a fixed value
        return low, max(0.1 * abs(low), _MIN_SPREAD)
    if low > 0 or high < 0:
        centre = float(wide.mean())
        return centre, min(float(wide.std()) or _MIN_SPREAD, 0.5 * abs(centre))
    return 0.0, float(wide.std()) or _MIN_SPREAD


def _draw(shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator,
          initial: np.ndarray | None) -> np.ndarray:
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        high = min(int(np.iinfo(dtype).max), 1 << 20)
        return rng.integers(1, high, size=shape, endpoint=True).astype(dtype)
    centre, spread = _spread_of(initial)
    # |noise| in [0.5, 1.5) spreads: around a centre of zero never zero, so the
    # negation differs everywhere; around a centre of one sign, never crossing zero.
    magnitude = rng.random(shape, dtype=np.float32) + np.float32(0.5)
    signs = np.where(rng.integers(0, 2, size=shape) == 1, np.float32(1), np.float32(-1))
    values = (np.float64(centre) + spread * signs * magnitude).astype(np.float32)
    cast = values.astype(dtype, copy=False)
    # A coarse dtype (float8) can round a small value to zero: push it to the smallest normal.
    if cast.size and np.any(cast.astype(np.float32) == 0):
        tiny = float(np.finfo(np.float32).tiny) if dtype == np.float32 else _smallest_normal(dtype)
        values = np.where(cast.astype(np.float32) == 0, np.float32(tiny), values)
        cast = values.astype(dtype, copy=False)
    return cast


def _smallest_normal(dtype: np.dtype) -> float:
    try:
        return float(np.finfo(dtype).tiny)
    except (TypeError, ValueError):
        import ml_dtypes

        return float(ml_dtypes.finfo(dtype).tiny)


def _digest(array: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).digest()


def distinct_values(specs: Iterable[tuple[tuple[int, ...], np.dtype]],
                    rng: np.random.Generator) -> list[np.ndarray]:
    """One array per ``(shape, dtype)`` in ``specs``, no two of them equal."""
    return list(iter_distinct_values(((shape, dtype, None) for shape, dtype in specs), rng))


def iter_distinct_values(specs: Iterable[tuple[tuple[int, ...], np.dtype, np.ndarray | None]],
                         rng: np.random.Generator) -> Iterator[np.ndarray]:
    """One array per ``(shape, dtype, initial value or None)``, one at a time (a large
    model's values never all sit in memory), no two equal and none another's pre-load value.

    Collisions only happen in tiny domains (bool or int8 scalars, float8);
    a colliding array is redrawn a few times, and in a domain too small to
    hold them all the last draw stays (such swaps cannot be told apart).
    """
    seen: set[tuple[tuple[int, ...], str, bytes]] = set()
    for shape, dtype, initial in specs:
        shape = tuple(shape)
        for _ in range(_REDRAWS):
            value = _draw(shape, dtype, rng, initial)
            keys = {(shape, dtype.str, _digest(value)), (shape, dtype.str, _digest(preload_values(value)))}
            if not keys & seen:
                break
        seen |= keys
        yield value
