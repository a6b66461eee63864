"""The built-in models built with tf-keras (Keras 2), for Keras 2 users and migrations.

Same architectures, same layer names and variable order as
:mod:`pytest_ckpt.models`, so ``pytest_ckpt.tf_keras_models:classic_functional
-> pytest_ckpt.models:classic_functional`` is a migration that must be clean.
Importing this module does not import tf-keras; calling a factory does.
"""

from __future__ import annotations

from typing import Any

from pytest_ckpt import models


def _tf_keras() -> Any:
    import tf_keras

    return tf_keras


def _port(builder: Any) -> Any:
    def factory() -> Any:
        return builder(keras=_tf_keras())

    factory.__name__ = factory.__qualname__ = builder.__name__
    factory.__doc__ = f"tf-keras build of :func:`pytest_ckpt.models.{builder.__name__}`."
    factory.__module__ = __name__
    return factory


classic_nested = _port(models.classic_nested)
classic_functional = _port(models.classic_functional)
swap_prone_nested = _port(models.swap_prone_nested)
deep_nested = _port(models.deep_nested)
lstm_model = _port(models.lstm_model)

BUILTIN = (classic_nested, classic_functional, swap_prone_nested, deep_nested, lstm_model)
