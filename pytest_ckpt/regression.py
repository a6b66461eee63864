"""Golden-checkpoint regression checks: does today's model still load yesterday's checkpoint?

Writing a golden records the model's variables and its outputs on a fixed
probe input.  Checking one loads the golden into the (freshly built) model
under freeze masks that Hypothesis draws, and compares every variable with
the manifest, exactly, and the outputs within a tolerance.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from pytest_ckpt import values
from pytest_ckpt.comparison import CHANGED, NOT_LOADED, SWAPPED
from pytest_ckpt.errors import CkptError
from pytest_ckpt.frameworks import framework_of
from pytest_ckpt.formats import get_format
from pytest_ckpt.golden import (GOLDEN_FORMATS, GoldenFolder, GoldenVariable, Manifest, checksum)
from pytest_ckpt.masks import FreezeMask, masked
from pytest_ckpt.tree import LayerTree


def keras_version(model) -> str:
    module = type(model).__module__.split(".")[0]
    try:
        return __import__(module).__version__
    except Exception:
        return "unknown"


def probe_inputs(model) -> dict[str, np.ndarray]:
    """A fixed input for every model input: batch of 2, seeded, small integers for int inputs."""
    rng = np.random.default_rng(1234)
    probe = {}
    for i, tensor in enumerate(model.inputs):
        shape = tuple(2 if d is None else int(d) for d in tensor.shape)
        dtype = np.dtype(getattr(tensor.dtype, "as_numpy_dtype", tensor.dtype))
        if np.issubdtype(dtype, np.integer):
            probe[f"input_{i}"] = rng.integers(0, 5, size=shape).astype(dtype)
        else:
            probe[f"input_{i}"] = rng.standard_normal(shape).astype(dtype)
    return probe


def run_probe(model, probe: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    inputs = [probe[f"input_{i}"] for i in range(len(probe))]
    out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return {f"output_{i}": np.asarray(o) for i, o in enumerate(outs)}


def snapshot(tree: LayerTree) -> list[GoldenVariable]:
    return [GoldenVariable(e.key, e.shape, e.dtype, checksum(np.asarray(e.variable.numpy())),
                           e.display) for e in tree.variables()]


@dataclass
class GoldenMismatch:
    folder: str
    format: str
    load_mask: FreezeMask = field(default_factory=FreezeMask)
    missing: list[GoldenVariable] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)
    variables: list[tuple[str, str, str]] = field(default_factory=list)  # key, verdict, detail
    load_error: tuple[str, str] | None = None
    outputs: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> bool:
        return bool(self.missing or self.new or self.reshaped or self.variables
                    or self.load_error or self.outputs)

    def render(self, seed=None) -> str:
        lines = [f"golden checkpoint check failed: {self.folder}",
                 f"  format:    {self.format}",
                 f"  load mask: {self.load_mask.describe()}"]
        if self.load_error:
            lines.append(f"  load raised {self.load_error[0]}: {self.load_error[1]}")
        for title, rows in (
            ("missing from the model (in the golden)", [f"{v.key} ({v.name}) {v.shape}" for v in self.missing]),
            ("new in the model (not in the golden)", self.new),
            ("shape or dtype changed", self.reshaped),
            ("variables that changed", [f"{k}  {verdict}  {detail}" for k, verdict, detail in self.variables]),
        ):
            if rows:
                lines.append(f"  {title} ({len(rows)}):")
                lines += [f"    {r}" for r in rows[:40]]
        if self.outputs:
            lines.append(f"  outputs: {self.outputs}")
        lines.append("  remedy: if the change is intended, accept it with pytest --ckpt-update; "
                     "otherwise the model no longer loads checkpoints that are already out there")
        if seed is not None:
            lines.append(f"  seed:   {seed}")
        return "\n".join(lines)


def write_golden(model, folder: GoldenFolder, format_name: str) -> Manifest:
    if format_name not in GOLDEN_FORMATS:
        raise CkptError(f"golden format {format_name!r}: must be a single-file format, one of "
                        f"{', '.join(GOLDEN_FORMATS)}")
    tree = LayerTree(model)
    probe = probe_inputs(model)
    probe.update(run_probe(model, probe))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return folder.write(model, format_name, framework_of(model), keras_version(model),
                            snapshot(tree), probe)


def _structure(tree: LayerTree, manifest: Manifest, mismatch: GoldenMismatch) -> None:
    golden = {v.key: v for v in manifest.variables}
    current = {e.key: e for e in tree.variables()}
    mismatch.missing = [v for k, v in golden.items() if k not in current]
    mismatch.new = [f"{e.key} ({e.display}) {e.shape}" for k, e in current.items() if k not in golden]
    mismatch.reshaped = [f"{k}: {golden[k].shape} {golden[k].dtype} -> {e.shape} {e.dtype}"
                         for k, e in current.items()
                         if k in golden and (golden[k].shape != e.shape or golden[k].dtype != e.dtype)]


def check_once(model, folder: GoldenFolder, load_mask: FreezeMask, *, rtol: float, atol: float,
               loaded=None) -> GoldenMismatch:
    """Load the golden into ``model`` under ``load_mask`` and compare; one example."""
    manifest, checkpoint, stored = loaded or folder.read()
    tree = LayerTree(model)
    mismatch = GoldenMismatch(str(folder.path), manifest.format, load_mask)
    _structure(tree, manifest, mismatch)
    if mismatch.failed:
        return mismatch
    entries = tree.variables()
    # Interim (rewritten with the golden values scheme): the pre-load value
    # is recorded, so "not loaded" is read from it, not computed.
    preload = {}
    for e in entries:
        current = np.asarray(e.variable.numpy())
        e.variable.assign(values.preload_values(current) if current.dtype != np.bool_ else ~current)
        preload[e.key] = checksum(np.asarray(e.variable.numpy()))
    fmt = get_format(manifest.format, framework_of(model))
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), masked(tree, load_mask), _safe_mode(manifest.format):
            warnings.simplefilter("ignore")
            try:
                fmt.load(model, checkpoint)
            except Exception as exc:
                mismatch.load_error = (type(exc).__name__, str(exc)[:600])
    finally:
        absl.setLevel(level)
    by_sha = {v.sha256: v for v in manifest.variables}
    golden = {v.key: v for v in manifest.variables}
    for i, e in enumerate(entries):
        got = np.asarray(e.variable.numpy())
        sha = checksum(got)
        if sha == golden[e.key].sha256:
            continue
        if got.size and sha == preload[e.key]:
            mismatch.variables.append((e.key, NOT_LOADED, "(kept its pre-load value)"))
        elif sha in by_sha:
            source = by_sha[sha]
            mismatch.variables.append((e.key, SWAPPED, f"holds the golden value of {source.key} ({source.name})"))
        else:
            mismatch.variables.append((e.key, CHANGED, "(a value the golden does not hold)"))
    if not mismatch.failed:
        got = run_probe(model, {k: v for k, v in stored.items() if k.startswith("input_")})
        for name, value in got.items():
            expected = stored.get(name)
            if expected is None or expected.shape != value.shape:
                mismatch.outputs = f"{name}: shape {value.shape} vs golden {None if expected is None else expected.shape}"
            elif not np.allclose(value, expected, rtol=rtol, atol=atol):
                mismatch.outputs = (f"{name} differs from the golden outputs: max |diff| = "
                                    f"{np.max(np.abs(value - expected)):.6g} (rtol={rtol}, atol={atol})")
    return mismatch


@contextmanager
def _safe_mode(format_name: str):
    """Keras's safe mode on while a ``.keras`` golden loads.

    ``load_weights`` reads only the weights, never the config whose lambdas
    safe mode guards against; the scope keeps it so should Keras change.
    """
    scope = None
    if format_name == "keras":
        try:
            from keras.src.saving.serialization_lib import SafeModeScope

            scope = SafeModeScope(True)
        except ImportError:
            scope = None
    if scope is None:
        yield
        return
    with scope:
        yield


def check_golden(model, folder: GoldenFolder, *, examples: int, seed=None,
                 rtol: float = 1e-6, atol: float = 1e-6) -> GoldenMismatch | None:
    """Hypothesis draws load masks; returns the minimal mismatch, or None."""
    from pytest_ckpt.driver import search
    from pytest_ckpt.strategies import freeze_masks

    loaded = folder.read()  # read and verify the files once, not per example
    tree = LayerTree(model)
    first = check_once(model, folder, FreezeMask.nothing(), rtol=rtol, atol=atol, loaded=loaded)
    if first.missing or first.new or first.reshaped:
        return first  # structural: no mask changes that

    def golden_loads(load_mask):
        return check_once(model, folder, load_mask, rtol=rtol, atol=atol, loaded=loaded)

    found = search(golden_loads, fixed=[{"load_mask": FreezeMask.nothing()}],
                   strategies={"load_mask": freeze_masks(tree)}, examples=examples, seed=seed)
    return found.failure
