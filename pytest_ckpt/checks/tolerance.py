"""Every output tolerance of the project, in one place.

Two questions, two answers:

* a round trip compares the outputs of two models holding the same variables, computed by
  the same code on the same CPU: equal up to float reassociation (``OUTPUT_TOLERANCE``);
* a golden compares today's outputs with outputs computed on another machine, perhaps with
  other kernels or native bfloat16: the tolerance is derived from the model's compute dtype,
  its depth and each output's scale (:func:`output_tolerance`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pytest_ckpt.framework import compat

# Same CPU, same code; across frameworks (a migration) kernels differ a little more.
OUTPUT_TOLERANCE = {"same": (1e-5, 1e-6), "migration": (1e-4, 1e-5)}
# Rounding differences between two CPUs or backends, in units of the compute
# dtype's epsilon per rounding step (see output_tolerance).
ROUNDING_UNITS = 2


def _epsilon(dtype_name: str) -> float | None:
    import ml_dtypes

    try:
        dtype = getattr(ml_dtypes, dtype_name, None) or np.dtype(dtype_name)
        return float(ml_dtypes.finfo(dtype).eps)
    except (TypeError, ValueError):
        return None


def rounding_steps(tree: Any) -> tuple[str, float, int]:
    """(coarsest compute dtype, its epsilon, rounding steps) of the model.

    A layer with a kernel sums ``fan_in`` products: blocked or pairwise
    summation (what oneDNN, Eigen and XLA do) rounds about ``log2(fan_in)``
    times on the way; two CPUs or backends that block differently, or that
    compute a bfloat16 product natively instead of in float32, differ by up
    to that many roundings, plus one for the layer's output.
    """
    coarsest = ("float32", float(np.finfo(np.float32).eps))
    steps = 1
    for node in tree.nodes:
        eps = _epsilon(str(getattr(node.layer, "compute_dtype", None) or ""))
        if eps is not None and eps > coarsest[1]:
            coarsest = (str(node.layer.compute_dtype), eps)
        for v in compat.own_weights(node.layer):
            shape = tuple(int(d) for d in v.shape)
            if len(shape) >= 2:
                steps += 1 + math.ceil(math.log2(math.prod(shape[:-1]) + 1))
    return coarsest[0], coarsest[1], steps


def output_tolerance(tree: Any, stored: dict[str, np.ndarray], rtol: float | None,
                     atol: float | None) -> tuple[dict[str, tuple[float, float]], str]:
    """Per output (rtol, atol), and why: ``ROUNDING_UNITS`` epsilons of the
    coarsest compute dtype per rounding step (:func:`rounding_steps`), relative
    to the output's scale (its largest magnitude in the golden).  What the
    check passed replaces the derived value."""
    dtype, eps, steps = rounding_steps(tree)
    relative = ROUNDING_UNITS * eps * steps
    per_output = {}
    for name, value in stored.items():
        wide = np.asarray(value, dtype=np.float64) if np.asarray(value).dtype.kind in "fc" else None
        finite = wide[np.isfinite(wide)] if wide is not None else np.zeros(0)
        scale = float(np.max(np.abs(finite))) if finite.size else 1.0
        per_output[name] = (relative if rtol is None else rtol,
                            relative * max(scale, 1e-30) if atol is None else atol)
    why = (f"{ROUNDING_UNITS} x eps({dtype}) x {steps} rounding steps = {relative:.3g} of each output's "
           "scale" if rtol is None or atol is None else "as passed")
    return per_output, why
