"""pytest-ckpt: catch Keras checkpoints that lose or scramble weights.

The public API is what ``__all__`` lists; everything is imported lazily, so
``import pytest_ckpt`` (which pytest does for the plugin) stays cheap:
TensorFlow, Keras and Hypothesis load only when a name that needs them is
first used.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_WHERE = {
    # Checks, usable without pytest.
    "check_format": "pytest_ckpt.engine",
    "check_resume": "pytest_ckpt.resume",
    "roundtrip": "pytest_ckpt.engine",
    "check_golden": "pytest_ckpt.golden_check",
    "write_golden": "pytest_ckpt.golden_check",
    # What they return.
    "CheckOutcome": "pytest_ckpt.result",
    "RoundTripResult": "pytest_ckpt.result",
    "ResumeResult": "pytest_ckpt.resume",
    "VariableOutcome": "pytest_ckpt.comparison",
    "render": "pytest_ckpt.report",
    "render_resume": "pytest_ckpt.report",
    # Freeze masks and their Hypothesis strategies.
    "FreezeMask": "pytest_ckpt.masks",
    "freeze_masks": "pytest_ckpt.strategies",
    "mask_pairs": "pytest_ckpt.strategies",
    # Formats and errors.
    "format_names": "pytest_ckpt.formats",
    "CkptError": "pytest_ckpt.errors",
    "FactoryError": "pytest_ckpt.errors",
}
_MODULES = ("models", "tf_keras_models")

__all__ = sorted(_WHERE) + list(_MODULES)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"pytest_ckpt.{name}")
    else:
        raise AttributeError(f"module 'pytest_ckpt' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
