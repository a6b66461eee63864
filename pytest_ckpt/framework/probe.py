"""A deterministic probe input for any Keras model, and its outputs.

Comparing variables misses state a model computes with that is not a
variable, or not read from one: statistics a Normalization layer cached
when it was adapted, a StringLookup's vocabulary, a tower wired to another
input.  Two models that hold the same variables must also compute the same
outputs; the probe is how that is checked.  Inputs come from the model's
input specs (numeric, integer and string); string and integer inputs also
use the tokens of every lookup layer's vocabulary, or a difference in
vocabularies would go unseen.

The two models may live in two processes, and may have been built in
another order: inputs travel keyed by input name (``keras.Input(name=...)``
or a dict of inputs), never by position, so a tower built for ``age`` in one
process gets ``age`` in the other too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_ckpt.framework import compat, nested
from pytest_ckpt.framework.bulk import to_numpy
from pytest_ckpt.framework.values import widened

# As many samples as fit in this many input elements, at least one: a
# full-size image model gets one sample (its activations cost more than its
# weights), a model of a few features gets hundreds, enough to cross the
# bin boundaries or thresholds that two builds adapted differently.
PROBE_ELEMENTS = 16384
MAX_BATCH = 256
MAX_TOKENS = 64

Spec = tuple[tuple[int | None, ...], str]
Tokens = tuple[list[str], list[int]]


class ProbeUnavailable(Exception):
    """No probe input can be built for a model, or the model rejects it; says why."""


@dataclass(frozen=True)
class OutputDifference:
    name: str
    detail: str  # "max |difference| 0.37" or "shape (2, 3) vs (2, 4)"


def vocabulary_tokens(model: Any) -> Tokens:
    """The string and integer tokens of every lookup layer in the model."""
    strings: set[str] = set()
    ints: set[int] = set()
    stack, seen = [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        stack.extend(compat.child_layers(layer))
        get = getattr(layer, "get_vocabulary", None)
        if not callable(get):
            continue
        try:
            vocabulary = list(get())
        except Exception:  # an unadapted lookup layer has none
            continue
        for token in vocabulary:
            if isinstance(token, bytes):
                token = token.decode("utf-8", "replace")
            if isinstance(token, str):
                strings.add(token)
            elif isinstance(token, (int, np.integer)):
                ints.add(int(token))
    return sorted(strings)[:MAX_TOKENS], sorted(ints)[:MAX_TOKENS]


def _structure(model: Any) -> Any:
    """The model's inputs as a leaf, a list or a dict of KerasTensors; None if it has none."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return None
    try:
        return model.input  # Functional: keeps a dict structure
    except (AttributeError, ValueError):
        return inputs if len(inputs) > 1 else inputs[0]


def _specs(model: Any) -> Any:
    """The input structure as (shape, dtype) leaves: a single spec, a list or a dict."""
    structure = _structure(model)
    if structure is not None:
        return nested.map_leaves(structure, lambda t: (tuple(t.shape), _dtype_name(t.dtype)))
    try:
        shape = model.get_build_config()["input_shape"]  # subclassed, built with build(shape)
    except (AttributeError, KeyError, TypeError, NotImplementedError):
        shape = None
    if shape is None:
        raise ProbeUnavailable("the model has no inputs and no build shape (call it or build it "
                               "with model.build(input_shape) in the factory)")
    return nested.map_leaves(shape, lambda s: (tuple(s), "float32"), is_leaf=_is_shape)


def input_names(model: Any) -> list[str]:
    """One name per input leaf, in the order :func:`nested.leaves` walks them: a dict's keys,
    else each input's own name (``keras.Input(name=...)``); positions for the rest."""
    structure = _structure(model)
    if structure is None:
        return [f"input[{i}]" for i in range(len(nested.leaves(_specs(model), is_leaf=_is_spec)))]
    if isinstance(structure, dict):
        return [str(k) for k in structure]
    flat = structure if isinstance(structure, (list, tuple)) else [structure]
    names = [str(getattr(t, "name", "") or f"input[{i}]") for i, t in enumerate(flat)]
    return names if len(set(names)) == len(names) else [f"input[{i}]" for i in range(len(names))]


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, int) for d in value)


def _dtype_name(dtype: Any) -> str:
    return getattr(dtype, "name", None) or str(dtype)


def _batch_for(specs: Any) -> int:
    per_sample = [int(np.prod([2 if d is None else int(d) for d in spec[0][1:]]))
                  for spec in nested.leaves(specs, is_leaf=_is_spec)]
    return max(1, min(MAX_BATCH, PROBE_ELEMENTS // max(1, sum(per_sample))))


def _is_spec(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str)


def probe_inputs(model: Any, *, tokens: Tokens | None = None, batch: int | None = None,
                 seed: int = 1234, far_out: bool = True) -> Any:
    """A fixed input structure for ``model``, using its lookup layers' tokens and ``tokens``
    (those of the other side's model, which may hold another vocabulary)."""
    specs = _specs(model)
    own_strings, own_ints = vocabulary_tokens(model)
    strings = sorted(set(own_strings) | set(tokens[0] if tokens else ()))[:MAX_TOKENS]
    ints = sorted(set(own_ints) | set(tokens[1] if tokens else ()))[:MAX_TOKENS]
    has_strings = any(spec[1] == "string" for spec in nested.leaves(specs, is_leaf=_is_spec))
    batch = max(batch or _batch_for(specs), len(strings) if has_strings else 0)
    rng = np.random.default_rng(seed)

    def make(spec: Spec) -> np.ndarray:
        shape, dtype = spec
        full = (batch,) + tuple(2 if d is None else int(d) for d in shape[1:])
        size = int(np.prod(full))
        if dtype == "string":
            pool = strings or ["a", "b", "[UNK]", ""]
            return np.array([pool[i % len(pool)] for i in range(size)], dtype=object).reshape(full)
        np_dtype = np.dtype(dtype) if dtype != "bfloat16" else np.dtype(np.float32)
        if np.issubdtype(np_dtype, np.integer) or np_dtype == np.bool_:
            numbers = ints or [0, 1]
            start = int(rng.integers(len(numbers)))
            return np.array([numbers[(start + i) % len(numbers)] for i in range(size)]).astype(np_dtype).reshape(full)
        # Most samples on the scale of normalized data, a few far out.
        far = (np.arange(batch) % 4 == 3) & far_out
        scale = np.where(far, 8.0, 1.0).reshape((batch,) + (1,) * (len(full) - 1))
        return (rng.standard_normal(full) * scale).astype(np_dtype)

    return nested.map_leaves(specs, make, is_leaf=_is_spec)


def scaled(inputs: Any, factor: float) -> Any:
    """``inputs`` with every floating-point array multiplied by ``factor`` (integers kept)."""
    def scale(value: Any) -> Any:
        array = np.asarray(value)
        return (array * factor).astype(array.dtype) if np.issubdtype(array.dtype, np.floating) else value

    return nested.map_leaves(inputs, scale)


def by_name(model: Any, inputs: Any) -> dict[str, np.ndarray]:
    """``inputs`` (the structure :func:`probe_inputs` built for ``model``) keyed by input name."""
    return dict(zip(input_names(model), nested.leaves(inputs)))


def for_model(model: Any, named: dict[str, np.ndarray]) -> Any:
    """Named inputs in ``model``'s own structure: by name where every name is known,
    else by position (two auto-named inputs mean nothing more)."""
    names = input_names(model)
    values = [named[n] for n in names] if set(names) <= set(named) else list(named.values())
    if len(values) != len(names):
        raise ProbeUnavailable(f"the model takes {len(names)} inputs ({', '.join(names)}); the "
                               f"other model took {len(named)} ({', '.join(named)})")
    structure = _structure(model)
    if structure is None:
        return nested.map_leaves(_specs(model), lambda _: values.pop(0), is_leaf=_is_spec)
    if isinstance(structure, dict):
        return dict(zip(structure, values))
    return values if isinstance(structure, (list, tuple)) else values[0]


def outputs(model: Any, inputs: Any) -> dict[str, np.ndarray]:
    """The model's outputs on ``inputs`` in inference mode, flattened and named."""
    result = model(inputs, training=False)
    return {nested.path_name("output", path): to_numpy(value)
            for path, value in nested.items(result, sort_keys=True)}


def _gap(a: np.ndarray, b: np.ndarray) -> str:
    with np.errstate(all="ignore"):
        gap = np.abs(b.astype(np.float64) - a.astype(np.float64))
    nan_here = int(np.sum(np.isnan(a) != np.isnan(b)))
    finite = gap[np.isfinite(gap)]
    text = f"max |difference| {float(finite.max()):.6g}" if finite.size else "no finite difference"
    return text + (f", {nan_here} of {a.size} NaN on one side only" if nan_here else "")


def differences(expected: dict[str, np.ndarray], got: dict[str, np.ndarray], *,
                rtol: float, atol: float) -> list[OutputDifference]:
    found = []
    for name in sorted(set(expected) | set(got)):
        a, b = widened(expected.get(name)), widened(got.get(name))
        if a is None or b is None:
            found.append(OutputDifference(name, "missing on one side"))
        elif a.shape != b.shape:
            found.append(OutputDifference(name, f"shape {a.shape} vs {b.shape}"))
        elif a.dtype.kind in "fc" and b.dtype.kind in "fc":
            if not np.allclose(b, a, rtol=rtol, atol=atol, equal_nan=True):
                found.append(OutputDifference(name, _gap(a, b)))
        elif not np.array_equal(a, b):
            found.append(OutputDifference(name, f"{int(np.sum(a != b))} of {a.size} values differ"))
    return found
