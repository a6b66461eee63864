"""A deterministic probe input for any Keras model, and its outputs.

Comparing variables misses state a model computes with that is not a
variable, or not read from one: statistics a Normalization layer cached
when it was adapted, a StringLookup's vocabulary.  Two models that hold the
same variables must also compute the same outputs; the probe is how that is
checked.  Inputs come from the model's input specs (numeric, integer and
string); string and integer inputs also use the tokens of every lookup
layer's vocabulary, or a difference in vocabularies would go unseen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pytest_ckpt import compat
from pytest_ckpt.bulk import to_numpy
from pytest_ckpt.values import widened

# As many samples as fit in this many input elements, at least one: a
# full-size image model gets one sample (its activations cost more than its
# weights), a model of a few features gets hundreds, enough to cross the
# bin boundaries or thresholds that two builds adapted differently.
PROBE_ELEMENTS = 16384
MAX_BATCH = 256
MAX_TOKENS = 64


class ProbeUnavailable(Exception):
    """No probe input can be built for a model, or the model rejects it; says why."""


@dataclass(frozen=True)
class OutputDifference:
    name: str
    detail: str  # "max |difference| 0.37" or "shape (2, 3) vs (2, 4)"


def _vocabulary_tokens(models) -> tuple[list[str], list[int]]:
    strings, ints = set(), set()
    for model in models:
        stack = [model]
        seen = set()
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


def _specs(model):
    """The input structure as (shape, dtype) leaves: a single spec, a list or a dict."""
    inputs = getattr(model, "inputs", None)
    if inputs:
        try:
            structure = model.input  # Functional: keeps a dict structure
        except (AttributeError, ValueError):
            structure = inputs if len(inputs) > 1 else inputs[0]
        return _map(structure, lambda t: (tuple(t.shape), _dtype_name(t.dtype)))
    try:
        shape = model.get_build_config()["input_shape"]  # subclassed, built with build(shape)
    except (AttributeError, KeyError, TypeError, NotImplementedError):
        shape = None
    if shape is None:
        raise ProbeUnavailable("the model has no inputs and no build shape (call it or build it "
                               "with model.build(input_shape) in the factory)")
    return _map(shape, lambda s: (tuple(s), "float32"), is_leaf=_is_shape)


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, int) for d in value)


def _map(structure, fn, is_leaf=lambda v: not isinstance(v, (dict, list, tuple))):
    if is_leaf(structure):
        return fn(structure)
    if isinstance(structure, dict):
        return {k: _map(v, fn, is_leaf) for k, v in structure.items()}
    return [_map(v, fn, is_leaf) for v in structure]


def _dtype_name(dtype) -> str:
    return getattr(dtype, "name", None) or str(dtype)


def _batch_for(specs) -> int:
    per_sample = []
    _map(specs, lambda spec: per_sample.append(int(np.prod([2 if d is None else int(d) for d in spec[0][1:]]))),
         is_leaf=_is_spec)
    return max(1, min(MAX_BATCH, PROBE_ELEMENTS // max(1, sum(per_sample))))


def _is_spec(value) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str)


def probe_inputs(*models, batch: int | None = None, seed: int = 1234, far_out: bool = True):
    """A fixed input structure for the models (built from the first one's specs)."""
    specs = _specs(models[0])
    strings, ints = _vocabulary_tokens(models)
    batch = max(batch or _batch_for(specs), len(strings) if _has(specs, "string") else 0)
    rng = np.random.default_rng(seed)

    def make(spec):
        shape, dtype = spec
        shape = (batch,) + tuple(2 if d is None else int(d) for d in shape[1:])
        size = int(np.prod(shape))
        if dtype == "string":
            tokens = strings or ["a", "b", "[UNK]", ""]
            return np.array([tokens[i % len(tokens)] for i in range(size)], dtype=object).reshape(shape)
        np_dtype = np.dtype(dtype) if dtype != "bfloat16" else np.float32
        if np.issubdtype(np_dtype, np.integer) or np_dtype == np.bool_:
            pool = ints or [0, 1]
            start = int(rng.integers(len(pool)))
            return np.array([pool[(start + i) % len(pool)] for i in range(size)]).astype(np_dtype).reshape(shape)
        # Most samples on the scale of normalized data, a few far out.
        far = (np.arange(batch) % 4 == 3) & far_out
        scale = np.where(far, 8.0, 1.0).reshape((batch,) + (1,) * (len(shape) - 1))
        return (rng.standard_normal(shape) * scale).astype(np_dtype)

    return _map(specs, make, is_leaf=_is_spec)


def _has(specs, dtype) -> bool:
    if isinstance(specs, tuple) and len(specs) == 2 and isinstance(specs[1], str):
        return specs[1] == dtype
    items = specs.values() if isinstance(specs, dict) else specs
    return any(_has(s, dtype) for s in items)


def outputs(model, inputs) -> dict[str, np.ndarray]:
    """The model's outputs on ``inputs`` in inference mode, flattened and named."""
    result = model(inputs, training=False)
    flat: dict[str, np.ndarray] = {}

    def walk(value, name):
        if isinstance(value, dict):
            for k in sorted(value):
                walk(value[k], f"{name}[{k!r}]")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, f"{name}[{i}]")
        else:
            flat[name] = to_numpy(value)

    walk(result, "output")
    return flat


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
                diff = np.nanmax(np.abs(b.astype(np.float64) - a.astype(np.float64)))
                found.append(OutputDifference(name, f"max |difference| {diff:.6g}"))
        elif not np.array_equal(a, b):
            found.append(OutputDifference(name, f"{int(np.sum(a != b))} of {a.size} values differ"))
    return found
