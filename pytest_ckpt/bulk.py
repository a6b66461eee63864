"""Whole-model operations done in one compiled call where the backend allows.

Resetting the loading model and checking every variable are the engine's
only per-example costs beyond the save and load themselves.  Done variable
by variable from Python they cost as much as a legacy HDF5 round trip of
ResNet50 (each read or assign copies through NumPy); as one ``tf.function``
they cost a few percent of it.  Other backends take the NumPy path.
"""

from __future__ import annotations

import numpy as np

from pytest_ckpt import compat, values
from pytest_ckpt.chatter import framework_chatter


def read(variable) -> np.ndarray:
    """A variable's value as a NumPy array, on any backend."""
    try:
        return np.asarray(variable.numpy())
    except AttributeError:
        import keras

        return np.asarray(keras.ops.convert_to_numpy(variable))


class BulkOps:
    """``reset()`` puts each loading variable at its pre-load value (see
    :mod:`pytest_ckpt.values`); ``survived()`` says, per variable, whether the
    loading variable holds exactly the saving variable's value.

    On TensorFlow the first round runs eagerly, op by op on the device (no
    copy through NumPy); from the second reset on, both run as one compiled
    function.  Tracing a function over hundreds of variables costs more than
    a save, so variables used once (an optimizer built for a one-off
    trainable set) are never compiled.
    """

    def __init__(self, saved: list, loaded: list, dtypes: list[np.dtype]):
        self._saved, self._loaded, self._dtypes = saved, loaded, dtypes
        self._tf = self._tf_ops()
        self._resets = 0

    def _tf_ops(self):
        svars = [compat.tf_variable(v) for v in self._saved]
        lvars = [compat.tf_variable(v) for v in self._loaded]
        if not svars or any(v is None for v in svars + lvars):
            return None
        import tensorflow as tf

        kinds = [values.preload_kind(d) for d in self._dtypes]

        def preload(v, kind):
            if kind == values.INVERT:
                return tf.logical_not(v)
            if kind == values.ZERO:
                return tf.zeros_like(v)
            return tf.negative(v)

        def reset():
            for s, l, kind in zip(svars, lvars, kinds):
                l.assign(preload(s, kind))

        def survived():
            return tf.stack([tf.reduce_all(tf.equal(a, b)) for a, b in zip(svars, lvars)])

        return {"eager": (reset, survived), "compile": lambda: (
            tf.function(reset, autograph=False), tf.function(survived, autograph=False))}

    def _ops(self):
        ops = self._tf["eager"]
        if self._resets > 1:
            if "compiled" not in self._tf:
                self._tf["compiled"] = self._tf["compile"]()
            ops = self._tf["compiled"]
        return ops

    def reset(self) -> None:
        self._resets += 1
        if self._tf is not None:
            with framework_chatter():
                self._ops()[0]()
            return
        for s, l in zip(self._saved, self._loaded):
            l.assign(values.preload_values(read(s)))

    def survived(self) -> list[bool]:
        if self._tf is not None:
            with framework_chatter():
                return [bool(x) for x in self._ops()[1]().numpy()]
        return [_same(read(s), read(l)) for s, l in zip(self._saved, self._loaded)]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
