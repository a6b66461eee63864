"""Reading variables and tensors as NumPy arrays, on every backend and dtype."""

from __future__ import annotations

from typing import Any

import numpy as np


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
