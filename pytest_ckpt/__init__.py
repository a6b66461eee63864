"""pytest-ckpt: catch Keras checkpoints that lose or scramble weights.

The public API is what ``__all__`` lists; everything is imported lazily, so
``import pytest_ckpt`` (which pytest does for the plugin) stays cheap:
TensorFlow, Keras and Hypothesis load only when a name that needs them is
first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_WHERE = {
    # Checks, usable without pytest.
    "check_format": "pytest_ckpt.checks.roundtrip",
    "check_resume": "pytest_ckpt.checks.resume",
    "roundtrip": "pytest_ckpt.checks.roundtrip",
    "check_golden": "pytest_ckpt.golden.check",
    "write_golden": "pytest_ckpt.golden.check",
    # What they return.
    "CheckOutcome": "pytest_ckpt.checks.outcomes",
    "RoundTripResult": "pytest_ckpt.checks.outcomes",
    "ResumeResult": "pytest_ckpt.checks.resume",
    "VariableOutcome": "pytest_ckpt.checks.comparison",
    "render": "pytest_ckpt.report.diagnosis",
    "render_resume": "pytest_ckpt.report.diagnosis",
    # Freeze masks and their Hypothesis strategies.
    "FreezeMask": "pytest_ckpt.search.masks",
    "freeze_masks": "pytest_ckpt.search.strategies",
    "mask_pairs": "pytest_ckpt.search.strategies",
    # Formats and errors.
    "format_names": "pytest_ckpt.framework.formats",
    "Format": "pytest_ckpt.framework.formats",
    "CkptError": "pytest_ckpt.errors",
    "FactoryError": "pytest_ckpt.errors",
}
_MODULES = ("models", "tf_keras_models")

__all__ = sorted(_WHERE) + list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"pytest_ckpt.{name}")
    else:
        raise AttributeError(f"module 'pytest_ckpt' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> Any:
    return sorted(set(globals()) | set(__all__))
