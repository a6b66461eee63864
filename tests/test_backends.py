"""Goldens written on TensorFlow, committed, must load the same on every Keras 3 backend.

``tests/ckpt_golden/test_backends/`` was written with ``pytest --ckpt-update``
on the TensorFlow backend (see each manifest's ``backend:`` line).  CI runs
these on JAX and PyTorch as well: a checkpoint must not depend on the
backend that wrote it.  The one tolerance is the documented one: the
optimizer's ``iterations`` is int64 on TensorFlow and int32 elsewhere.
Outputs are compared with a tolerance, since kernels differ across backends.
"""

from pytest_ckpt import models

from tests import cases

# Convolutions and recurrences are computed by each backend's own kernels.
CROSS_BACKEND = dict(rtol=1e-5, atol=1e-5)


def test_nested_resnet_style_model(ckpt_regression):
    ckpt_regression.check(models.classic_nested(), **CROSS_BACKEND)


def test_functional_model_in_legacy_h5(ckpt_regression):
    ckpt_regression.check(models.classic_functional(), format="h5", **CROSS_BACKEND)


def test_lstm_model(ckpt_regression):
    ckpt_regression.check(models.lstm_model(), **CROSS_BACKEND)


def test_compiled_model_with_its_optimizer_state(ckpt_regression):
    # The freeze state it was written with: the optimizer's slots load by position.
    ckpt_regression.check(cases.compiled_twin(), masks="same", **CROSS_BACKEND)
    ckpt_regression.check(cases.compiled_twin(), format="keras", masks="same", **CROSS_BACKEND)
