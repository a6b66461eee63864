"""Whole-model operations done in one compiled TensorFlow call.

Resetting the loading model and checking every variable are the engine's
only per-example costs beyond the save and load themselves.  Done variable
by variable from Python they cost as much as a legacy HDF5 round trip of
ResNet50 (each read or assign copies through NumPy); as one ``tf.function``
they cost a few percent of it.  Models on other backends take the NumPy path.
"""

from __future__ import annotations

import numpy as np

from pytest_ckpt import values
from pytest_ckpt.tree import VariableEntry


def _tf_variable(variable):
    """The tf.Variable behind a Keras 3 variable (or the tf-keras variable itself)."""
    import tensorflow as tf

    if isinstance(variable, tf.Variable):
        return variable
    inner = getattr(variable, "_value", None)
    return inner if isinstance(inner, tf.Variable) else None


class BulkOps:
    """``reset()`` puts each loader variable at its sentinel; ``survived()`` says,
    per variable, whether the loader holds exactly the saver's value."""

    def __init__(self, saved: list[VariableEntry], loaded: list[VariableEntry], sentinels, dtypes):
        self._saved, self._loaded = saved, loaded
        self._sentinels, self._dtypes = sentinels, dtypes
        self._tf = None
        try:
            self._tf = self._compile()
        except ImportError:
            pass

    def _compile(self):
        import tensorflow as tf

        svars = [_tf_variable(e.variable) for e in self._saved]
        lvars = [_tf_variable(e.variable) for e in self._loaded]
        if any(v is None for v in svars + lvars):
            return None
        fills = [tf.constant(s, dtype=v.dtype) for s, v in zip(self._sentinels, lvars)]

        @tf.function(autograph=False)
        def reset():
            for v, s in zip(lvars, fills):
                v.assign(tf.fill(tf.shape(v), s))

        @tf.function(autograph=False)
        def survived():
            return tf.stack([tf.reduce_all(tf.equal(a, b)) for a, b in zip(svars, lvars)])

        return reset, survived

    def reset(self) -> None:
        if self._tf is not None:
            self._tf[0]()
            return
        for i, (entry, dtype) in enumerate(zip(self._loaded, self._dtypes)):
            entry.variable.assign(values.sentinel_values(entry.shape, dtype, i))

    def survived(self) -> list[bool]:
        if self._tf is not None:
            return [bool(x) for x in self._tf[1]().numpy()]
        return [
            np.array_equal(np.asarray(s.variable.numpy()), np.asarray(l.variable.numpy()))
            for s, l in zip(self._saved, self._loaded)
        ]
