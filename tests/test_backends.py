"""Goldens written on TensorFlow, committed, must load the same on every Keras 3 backend.

``tests/ckpt_golden/test_backends/`` was written with ``pytest --ckpt-update``
on the TensorFlow backend (see each manifest's ``backend:`` line).  CI runs
these on JAX and PyTorch as well: a checkpoint must not depend on the
backend that wrote it.  The one tolerance is the documented one: the
optimizer's ``iterations`` is int64 on TensorFlow and int32 elsewhere.
Outputs are compared with the cross-backend default tolerance (rtol=1e-4,
atol=1e-5; 8 epsilons of bfloat16 for the bfloat16 model), which applies
whenever the manifest's backend is not the current one: kernels differ across backends.  No test passes its own.
"""

import keras

from pytest_ckpt import models
from tests import cases


def test_nested_resnet_style_model(ckpt_regression):
    ckpt_regression.check(models.classic_nested())


def test_functional_model_in_legacy_h5(ckpt_regression):
    ckpt_regression.check(models.classic_functional(), format="h5")


def test_lstm_model(ckpt_regression):
    ckpt_regression.check(models.lstm_model())


def test_compiled_model_with_its_optimizer_state(ckpt_regression):
    # The freeze state it was written with: the optimizer's slots load by position.
    ckpt_regression.check(cases.compiled_twin(), masks="same")
    ckpt_regression.check(cases.compiled_twin(), format="keras", masks="same")


def test_batchnorm_model_in_keras_format(ckpt_regression):
    # Outputs differ from TensorFlow's by about 6e-6 on JAX and PyTorch.
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                              keras.layers.Dense(3)])
    ckpt_regression.check(model, format="keras")


def test_bfloat16_model(ckpt_regression):
    # Computes in bfloat16 (a mixed-precision head after a bfloat16 Dense): across backends the
    # outputs differ by about half a bfloat16 epsilon, so the default tolerance is 8 of them.
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, dtype="bfloat16", activation="relu")(inputs)
    outputs = keras.layers.Dense(3, dtype="mixed_bfloat16")(hidden)
    ckpt_regression.check(keras.Model(inputs, outputs))
