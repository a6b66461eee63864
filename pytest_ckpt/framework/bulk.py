"""Whole-model operations done in one compiled call where the backend allows.

Resetting the loading model and checking every variable are the engine's
only per-example costs beyond the save and load themselves.  Done variable
by variable from Python they cost as much as a legacy HDF5 round trip of
ResNet50 (each read or assign copies through NumPy); as one ``tf.function``
they cost a few percent of it.  Other backends take the NumPy path.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import numpy as np

from pytest_ckpt.framework import compat, values
from pytest_ckpt.framework.chatter import framework_chatter


def read(variable: Any) -> np.ndarray:
    """A variable's value as a NumPy array, on any backend."""
    # Through the backend's own array: Keras 3's Variable.numpy() (and
    # convert_to_numpy on PyTorch) go through an __array__ without NumPy 2's
    # copy keyword, a DeprecationWarning per call.
    value = getattr(variable, "value", variable)
    if callable(value):  # tf-keras: value() is a method of a tf.Variable
        value = variable
    return to_numpy(value)


def to_numpy(tensor: Any) -> np.ndarray:
    """A backend tensor (or a TensorFlow variable) as a NumPy array of the same dtype, not sharing memory."""
    if hasattr(tensor, "detach"):  # PyTorch: outputs carry the autograd graph
        return _torch_read(tensor.detach().cpu())
    if hasattr(tensor, "numpy"):  # TensorFlow
        return np.asarray(tensor.numpy())
    return np.asarray(tensor)  # JAX arrays, NumPy


def _torch_read(tensor: Any) -> np.ndarray:
    # .numpy() shares the tensor's memory (a later assign would change the
    # snapshot), so copy.  NumPy has no bfloat16 or float8: torch refuses
    # those, so reinterpret the bits as ml_dtypes' type of the same name,
    # exact down to NaN payloads (a cast through float32 is not).
    try:
        return tensor.numpy().copy()
    except TypeError:
        import ml_dtypes
        import torch

        name = str(tensor.dtype).removeprefix("torch.")
        target = np.dtype(getattr(ml_dtypes, name))
        bits = {1: torch.uint8, 2: torch.int16}[target.itemsize]
        return tensor.contiguous().view(bits).numpy().copy().view(target)


class BulkOps:
    """``reset()`` puts each loading variable at its pre-load value (see
    :mod:`pytest_ckpt.framework.values`); ``survived()`` says, per variable, whether the
    loading variable holds exactly the saving variable's value.

    Both run on the device, in the backend's own terms: no copy through
    NumPy.  On TensorFlow and JAX the first round runs op by op; from the
    second reset on, both run as one compiled function (tracing hundreds of
    variables costs more than a save, so variables used once, such as an
    optimizer built for a one-off trainable set, are never compiled).
    PyTorch runs them op by op, outside autograd.
    """

    def __init__(self, saved: list, loaded: list, dtypes: list[np.dtype]) -> None:
        self._saved, self._loaded, self._dtypes = saved, loaded, dtypes
        self._kinds = [values.preload_kind(d) for d in dtypes]
        self._eager, self._compile = self._tf_ops() or self._keras_ops() or (None, None)
        self._compiled = None
        self._resets = 0

    def _tf_ops(self) -> Any:
        svars = [compat.tf_variable(v) for v in self._saved]
        lvars = [compat.tf_variable(v) for v in self._loaded]
        if not svars or any(v is None for v in svars + lvars):
            return None
        import tensorflow as tf

        def preload(v: Any, kind: Any) -> Any:
            if kind == values.INVERT:
                return tf.logical_not(v)
            if kind == values.ZERO:
                return tf.zeros_like(v)
            return tf.negative(v)

        def reset() -> None:
            for s, l, kind in zip(svars, lvars, self._kinds):
                l.assign(preload(s, kind))

        def agree() -> Any:
            return tf.stack([tf.reduce_all(tf.equal(a, b)) for a, b in zip(svars, lvars)])

        def compile() -> Any:
            run_agree = tf.function(agree, autograph=False)
            return tf.function(reset, autograph=False), lambda: run_agree().numpy()

        return (reset, lambda: agree().numpy()), compile

    def _keras_ops(self) -> Any:
        """Keras 3 on JAX or PyTorch."""
        everything = self._saved + self._loaded
        if not everything or not all(hasattr(v, "value") and hasattr(v, "assign") for v in everything):
            return None
        import keras

        ops, backend = keras.ops, keras.backend.backend()

        def preload(v: Any, kind: Any) -> Any:
            if kind == values.INVERT:
                return ops.logical_not(v)
            if kind == values.ZERO:
                return ops.zeros_like(v)
            return ops.negative(v)

        def reset() -> None:
            with _no_autograd():
                for s, l, kind in zip(self._saved, self._loaded, self._kinds):
                    l.assign(preload(s.value, kind))

        if backend == "torch":
            import torch

            def survived() -> Any:
                with torch.no_grad():
                    return [torch.equal(s.value, l.value) for s, l in zip(self._saved, self._loaded)]

            return (reset, survived), None

        def survived() -> Any:
            flags = ops.stack([ops.all(ops.equal(s.value, l.value)) for s, l in zip(self._saved, self._loaded)])
            return np.asarray(ops.convert_to_numpy(flags))

        if backend != "jax":
            return (reset, survived), None
        import jax
        import jax.numpy as jnp

        def compile() -> Any:
            # JAX arrays are immutable: compute every pre-load value (or flag)
            # in one jitted call, then hand the new arrays to the variables.
            kinds = tuple(self._kinds)
            negate = jax.jit(lambda xs: [preload(x, k) for x, k in zip(xs, kinds)])
            equal = jax.jit(lambda a, b: jnp.stack([jnp.array_equal(x, y) for x, y in zip(a, b)]))

            def run_reset() -> None:
                for l, v in zip(self._loaded, negate([s.value for s in self._saved])):
                    l.assign(v)

            return run_reset, lambda: np.asarray(equal([s.value for s in self._saved],
                                                       [l.value for l in self._loaded]))

        return (reset, survived), compile

    def _ops(self) -> Any:
        if self._resets > 1 and self._compile is not None:
            if self._compiled is None:
                self._compiled = self._compile()
            return self._compiled
        return self._eager

    def reset(self) -> None:
        self._resets += 1
        if self._eager is None:
            for s, l in zip(self._saved, self._loaded):
                l.assign(values.preload_values(read(s)))
            return
        with framework_chatter():
            self._ops()[0]()

    def survived(self) -> list[bool]:
        if self._eager is None:
            return [_same(read(s), read(l)) for s, l in zip(self._saved, self._loaded)]
        with framework_chatter():
            return [bool(x) for x in self._ops()[1]()]


def _no_autograd() -> Any:
    """PyTorch records every op on a trainable variable for backprop; these need none."""
    torch = sys.modules.get("torch")
    return torch.no_grad() if torch is not None else contextlib.nullcontext()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
