"""Golden-checkpoint checks: does today's model still load a checkpoint that is already out there?

Writing a golden records a checkpoint of the model, its variables'
fingerprints and its outputs on a fixed probe input.  By default the model
first gets distinct, deterministic values (seeded by each variable's stable
key): a fresh BatchNorm's gamma and moving variance are all ones, so a swap
between them would be invisible in the model's own values.  ``values="model"``
keeps the model's own values (trained weights, say).

Checking one loads the golden into the model the test built, under freeze
masks (fixed ones first, then drawn by Hypothesis), through the engine's
load half (:func:`pytest_ckpt.engine.load_into`), and compares every
variable exactly and the outputs within a tolerance.  The model's values and
every layer's and variable's trainable flag are put back afterwards.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from pytest_ckpt import probe
from pytest_ckpt.bulk import read
from pytest_ckpt.chatter import framework_chatter
from pytest_ckpt.comparison import NOT_LOADED, ExpectedValues, VariableKind, VariableOutcome, classify, fingerprint
from pytest_ckpt.engine import describe, load_into
from pytest_ckpt.report import tail
from pytest_ckpt.errors import CkptError
from pytest_ckpt.formats import get_format
from pytest_ckpt.frameworks import backend_of, framework_of
from pytest_ckpt.golden import (DISTINCT, GOLDEN_FORMATS, MODEL, GoldenError, GoldenFolder, GoldenVariable,
                                Manifest, frozen_paths, frozen_text, variable_records)
from pytest_ckpt.masks import INDEPENDENT, POLICIES, SAME, FreezeMask, TrainableState, current_mask
from pytest_ckpt.optimizer_state import (OPTIMIZER, KindOffsets, attach_fresh_optimizer, fill_distinct, is_compiled,
                                         slots_of)
from pytest_ckpt.tempfiles import workdir
from pytest_ckpt.tree import LayerTree
from pytest_ckpt.values import distinct_values, numpy_dtype, preload_values

MAX_ROWS = 40
# Outputs only (variables are always compared exactly).  Across backends each
# computes with its own kernels: a small BatchNorm model differs by about 6e-6
# between TensorFlow and JAX or PyTorch.
SAME_BACKEND_TOLERANCE = (1e-6, 1e-6)
CROSS_BACKEND_TOLERANCE = (1e-4, 1e-5)
STRUCTURE = "input_structure"  # how the probe's arrays nest (JSON)
OPTIMIZER_PREFIX = f"{OPTIMIZER}:"


def keras_version(model) -> str:
    module = type(model).__module__.split(".")[0]
    try:
        return __import__(module).__version__
    except Exception:
        return "unknown"


def golden_values(entries) -> list[np.ndarray]:
    """Distinct values, each seeded by its variable's stable key: the same on every run."""
    out = []
    for e in entries:
        seed = int.from_bytes(hashlib.sha256(e.key.encode()).digest()[:8], "big")
        out += distinct_values([(e.shape, numpy_dtype(e.variable))], np.random.default_rng(seed))
    return out


@contextmanager
def preserved(tree: LayerTree):
    """The model's values, trainable flags and optimizer, as they were, afterwards."""
    flags = TrainableState.of(tree)
    entries = tree.variables()
    before = [read(e.variable) for e in entries]
    optimizer = getattr(tree.model, "optimizer", None)
    try:
        yield entries
    finally:
        for e, value in zip(entries, before):
            e.variable.assign(value)
        flags.restore(tree)
        if optimizer is not None:
            tree.model.optimizer = optimizer


def _optimizer_slots(tree: LayerTree, values: str | None) -> list:
    """The optimizer's variables for a golden: a fresh optimizer for the trainable
    variables now, with distinct values (or, with ``values="model"``, the model's
    own optimizer if it has been built)."""
    if not is_compiled(tree.model):
        return []
    if values == MODEL and tree.model.optimizer.built:
        return slots_of(tree)
    slots = attach_fresh_optimizer(tree)
    if values == DISTINCT:
        fill_distinct(slots, KindOffsets())
    return slots


def _matches(got: np.ndarray, record: GoldenVariable) -> bool:
    """Exactly the golden's value.  The one tolerance: an integer's width (the
    optimizer's iterations is int64 on TensorFlow, int32 on JAX and PyTorch)."""
    if fingerprint(got) == record.sha256:
        return True
    widths = {"int32", "int64"}
    return (str(got.dtype) in widths and record.dtype in widths and str(got.dtype) != record.dtype
            and fingerprint(got.astype(record.dtype)) == record.sha256)


def _flatten(structure, leaves: dict[str, np.ndarray]):
    """The structure as JSON-able nesting of leaf names; the arrays go into ``leaves``."""
    if isinstance(structure, dict):
        return {"dict": {str(k): _flatten(structure[k], leaves) for k in structure}}
    if isinstance(structure, (list, tuple)):
        return {"list": [_flatten(item, leaves) for item in structure]}
    name = f"input{len(leaves)}"
    leaves[name] = np.asarray(structure)
    return name


def _unflatten(spec, arrays: dict[str, np.ndarray]):
    if isinstance(spec, str):
        return arrays[spec]
    if "dict" in spec:
        return {k: _unflatten(v, arrays) for k, v in spec["dict"].items()}
    return [_unflatten(v, arrays) for v in spec["list"]]


def _materialize(model):
    """Call the model once on a probe: a subclassed model creates its weights on
    its first call, so before that there is nothing to record or load into."""
    try:
        inputs = probe.probe_inputs(model)
        with framework_chatter():
            probe.outputs(model, inputs)
    except probe.ProbeUnavailable as exc:
        raise GoldenError(f"cannot build a probe input for this model: {exc}") from None
    except Exception as exc:
        raise GoldenError("calling the model on a probe input built from its input specs raised "
                          f"{type(exc).__name__}: {str(exc)[:300]}") from None
    return inputs


def check_arguments(*, format=None, name=None, values=DISTINCT, examples=None, masks=None,
                    rtol=None, atol=None) -> None:
    """``ckpt_regression.check``'s arguments, before anything is read or written:
    a bad one is named, not reported as a missing golden or a failed load."""
    def bad(argument, value, expected):
        raise CkptError(f"ckpt_regression.check: {argument}={value!r}: {expected}")

    if format is not None and format not in GOLDEN_FORMATS:
        bad("format", format, f"must be a single-file format, one of {', '.join(GOLDEN_FORMATS)}")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        bad("name", name, "must be a non-empty string")
    if values not in (DISTINCT, MODEL):
        bad("values", values, f"must be {DISTINCT!r} (the default) or {MODEL!r}")
    if examples is not None and (isinstance(examples, bool) or not isinstance(examples, int) or examples < 1):
        bad("examples", examples, "must be a whole number of at least 1")
    if masks is not None and masks not in POLICIES:
        bad("masks", masks, f"must be one of {', '.join(map(repr, POLICIES))}")
    for argument, value in (("rtol", rtol), ("atol", atol)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            bad(argument, value, "must be a finite number of at least 0")


def write_golden(model, folder: GoldenFolder, format_name: str, *, values: str = DISTINCT,
                 tmp_root=None) -> Manifest:
    check_arguments(format=format_name, values=values)
    framework = framework_of(model)
    backend = backend_of(framework)
    fmt = get_format(format_name, framework, backend)
    inputs = _materialize(model)
    tree = LayerTree(model)
    with preserved(tree) as entries, workdir(tmp_root) as wd, framework_chatter():
        if values == DISTINCT:
            for e, value in zip(entries, golden_values(entries)):
                e.variable.assign(value)
        written = [read(e.variable) for e in entries]
        slots = _optimizer_slots(tree, values)
        source = fmt.path_in(wd)
        try:
            fmt.save(model, source)
            if values == DISTINCT:
                # Assigned values leave caches (adapted statistics) behind; the
                # outputs are those of the model as it comes back from the file.
                fmt.load(model, source)
            outputs = probe.outputs(model, inputs)
        except Exception as exc:
            raise GoldenError(f"cannot write a golden in format {format_name} for this model: "
                              f"{type(exc).__name__}: {str(exc)[:300]}") from None
        records = variable_records(entries, written) + [
            GoldenVariable(slot.key, tuple(slot.variable.shape), str(numpy_dtype(slot.variable)),
                           fingerprint(read(slot.variable)), slot.display) for slot in slots]
        frozen = frozen_text(current_mask(tree).frozen)
        manifest = Manifest(framework, backend, keras_version(model), format_name, values, frozen,
                            "", "", "", records)
        leaves: dict[str, np.ndarray] = {}
        spec = _flatten(inputs, leaves)
        arrays = {**leaves, STRUCTURE: np.array(json.dumps(spec)), **outputs}
        return folder.write(lambda tmp: shutil.copyfile(source, tmp), manifest, arrays)


@dataclass
class GoldenResult:
    folder: str
    format: str
    load_mask: FreezeMask = field(default_factory=FreezeMask)
    missing: list[GoldenVariable] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)
    outcomes: list[VariableOutcome] = field(default_factory=list)
    load_error: tuple[str, str] | None = None
    warnings: list[str] = field(default_factory=list)
    output_differences: list[probe.OutputDifference] = field(default_factory=list)
    total: int = 0
    as_found: bool = False  # loaded under the model's own flags, per variable too
    tolerance: str = ""  # the outputs' rtol and atol, and why those

    @property
    def ok(self) -> bool:
        return not (self.missing or self.new or self.reshaped or self.outcomes or self.load_error
                    or self.output_differences)

    @property
    def silent(self) -> bool:
        return not self.ok and self.load_error is None

    def summary(self) -> str:
        return f"golden {self.folder}: {'ok' if self.ok else 'mismatch'}"

    def render(self, seed=None, reproduce: str | None = None) -> str:
        lines = [f"golden checkpoint check failed: {self.folder}",
                 f"  format:    {self.format}",
                 f"  load mask: {self.load_mask.describe()}"
                 + (" (the model's own freeze state, per-variable flags as found)" if self.as_found else "")]
        if self.tolerance:
            lines.append(f"  outputs:   {self.tolerance}")
        if self.load_error:
            lines.append(f"  load raised {self.load_error[0]}: {self.load_error[1]}")
        for warning in self.warnings[:3]:
            lines.append(f"  Keras warned: {warning[:300]}")
        rows, optimizer_rows = [], []
        for o in self.outcomes:
            if o.source_key:
                detail = f"holds the golden value of {o.source_key} ({o.source_display})"
            elif o.candidates:
                detail = f"holds the golden value of one of {o.candidates} variables"
            else:
                detail = {"not_loaded": "(kept its pre-load value)"}.get(o.verdict,
                                                                          "(a value the golden does not hold)")
            (optimizer_rows if o.kind == OPTIMIZER else rows).append(f"{o.key} ({o.display})  {o.verdict}  {detail}")
        for title, items in (
            ("missing from the model (in the golden)", [f"{v.key} ({v.name}) {v.shape}" for v in self.missing]),
            ("new in the model (not in the golden)", self.new),
            ("shape or dtype changed", self.reshaped),
            (f"model variables that changed (of {self.total})", rows),
            ("optimizer variables that changed", optimizer_rows),
        ):
            if items:
                lines.append(f"  {title} ({len(items)}):")
                lines += [f"    {r}" for r in items[:MAX_ROWS]]
                if len(items) > MAX_ROWS:
                    lines.append(f"    ... and {len(items) - MAX_ROWS} more")
        for d in self.output_differences[:10]:
            lines.append(f"  outputs differ from the golden's: {d.name}: {d.detail}")
        return "\n".join(lines + tail(None, "if the change is intended, accept it with pytest "
                                       "--ckpt-update; otherwise the model no longer loads "
                                       "checkpoints that are already out there", seed, reproduce))


def _structure(entries, manifest: Manifest, result: GoldenResult) -> None:
    golden = {v.key: v for v in manifest.variables if not v.key.startswith(OPTIMIZER_PREFIX)}
    current = {e.key: e for e in entries}
    result.missing = [v for k, v in golden.items() if k not in current]
    result.new = [f"{e.key} ({e.display}) {e.shape}" for k, e in current.items() if k not in golden]
    result.reshaped = [f"{k}: {golden[k].shape} {golden[k].dtype} -> {e.shape} {e.dtype}"
                       for k, e in current.items()
                       if k in golden and (golden[k].shape != e.shape or golden[k].dtype != e.dtype)]


def _compare_optimizer(slots, golden, expected, preloads) -> list[VariableOutcome]:
    """Slots the golden holds must come back; a slot of a variable that was not
    trainable when the golden was written must not receive any golden value."""
    outcomes, present = [], set()
    for slot in slots:
        present.add(slot.key)
        got = read(slot.variable)
        record = golden.get(slot.key)
        if record is not None and _matches(got, record):
            continue
        digest, before = fingerprint(got), preloads.get(slot.key)
        if record is not None or expected.sources(digest, skip=slot.key):
            outcomes.append(classify(key=slot.key, display=slot.display, shape=tuple(got.shape),
                                     dtype=str(got.dtype), got=digest,
                                     preload=fingerprint(before) if before is not None else None,
                                     expected=expected, kind=VariableKind.OPTIMIZER))
    for key, record in golden.items():
        if key.startswith(OPTIMIZER_PREFIX) and key not in present and "/" not in key.removeprefix(OPTIMIZER_PREFIX):
            # iterations, learning rate...: every optimizer has them
            outcomes.append(VariableOutcome(key=key, display=record.name, shape=record.shape,
                                            dtype=record.dtype, verdict=NOT_LOADED, kind=OPTIMIZER))
    return outcomes


def compute_precision(tree: LayerTree) -> tuple[str, float]:
    """The least precise float dtype any layer computes in, and its machine epsilon."""
    import ml_dtypes

    coarsest = ("float32", float(np.finfo(np.float32).eps))
    for node in tree.nodes:
        name = str(getattr(node.layer, "compute_dtype", None) or "")
        try:
            eps = float(ml_dtypes.finfo(getattr(ml_dtypes, name, None) or np.dtype(name)).eps)
        except (TypeError, ValueError):
            continue
        if eps > coarsest[1]:
            coarsest = (name, eps)
    return coarsest


def output_tolerance(written_on: str, backend: str, rtol: float | None, atol: float | None,
                     precision: tuple[str, float] = ("float32", float(np.finfo(np.float32).eps))):
    """(rtol, atol, why): what the check passed, else the default for a golden
    written on the current backend or the cross-backend one.

    Backends round differently (kernels, accumulation order), by a few units
    of the least precise compute dtype: a model computing in bfloat16 or
    float16 (mixed precision included) gets 8 of its epsilons across backends.
    """
    cross = written_on != backend
    default_rtol, default_atol = CROSS_BACKEND_TOLERANCE if cross else SAME_BACKEND_TOLERANCE
    why = f"cross-backend default: written on {written_on}, checked on {backend}" if cross else "default"
    dtype, eps = precision
    if cross and 8 * eps > default_rtol:
        default_rtol = default_atol = 8 * eps
        why += f", 8 epsilons of {dtype}, the least precise dtype the model computes in"
    if rtol is not None and atol is not None:
        why = "as passed"
    return (default_rtol if rtol is None else rtol, default_atol if atol is None else atol, why)


def check_golden(model, folder: GoldenFolder, *, format_name: str | None = None, examples: int,
                 seed=None, masks: str = INDEPENDENT, rtol: float | None = None,
                 atol: float | None = None, tmp_root=None) -> GoldenResult | None:
    """Load the golden into ``model`` under fixed and drawn masks; the minimal mismatch, or None.

    With ``masks="same"`` it loads under the freeze state the golden was
    written with, only: a regression test of the format itself.  ``rtol`` and
    ``atol`` not given: see :func:`output_tolerance`.
    """
    with workdir(tmp_root) as wd:
        return _check_golden(model, folder, wd, format_name=format_name, examples=examples, seed=seed,
                             masks=masks, rtol=rtol, atol=atol)


def _check_golden(model, folder: GoldenFolder, wd, *, format_name, examples, seed, masks, rtol, atol):
    from pytest_ckpt.driver import search
    from pytest_ckpt.fixed_pairs import fixed_pairs, split
    from pytest_ckpt.strategies import freeze_masks

    manifest, checkpoint, arrays = folder.read(wd)
    if format_name is not None and format_name != manifest.format:
        raise GoldenError(f"golden {folder.path} was written in format {manifest.format!r} and this "
                          f"check asks for {format_name!r}: run pytest --ckpt-update to write it again")
    framework = framework_of(model)
    fmt = get_format(manifest.format, framework, backend_of(framework))
    _materialize(model)
    tree = LayerTree(model)
    rtol, atol, why = output_tolerance(manifest.backend, backend_of(framework), rtol, atol,
                                       compute_precision(tree))
    tolerance = f"rtol={rtol:g}, atol={atol:g} ({why})"
    current = current_mask(tree)
    with preserved(tree) as entries:
        result = GoldenResult(str(folder.path), manifest.format, total=len(entries))
        _structure(entries, manifest, result)
        if not result.ok:
            return result  # structural: no mask changes that
        golden = {v.key: v for v in manifest.variables}
        expected = ExpectedValues((v.key, v.name, v.sha256) for v in manifest.variables)
        compiled = is_compiled(model) and any(k.startswith(OPTIMIZER_PREFIX) for k in golden)
        rng = np.random.default_rng(20261130)
        slot_preloads: dict[str, np.ndarray] = {}
        if manifest.values == DISTINCT:
            before = [preload_values(v) for v in golden_values(entries)]
        else:  # the golden's values are unknown here: random negatives cannot be among them
            rng = np.random.default_rng(20261129)
            before = [preload_values(v) for v in
                      distinct_values([(e.shape, numpy_dtype(e.variable)) for e in entries], rng)]
        try:
            inputs = _unflatten(json.loads(str(arrays[STRUCTURE])), arrays)
        except (KeyError, ValueError, TypeError) as exc:
            raise GoldenError(f"the golden probe in {folder.path} is unreadable ({exc!r}): "
                              "run pytest --ckpt-update to write it again") from None
        stored = {k: v for k, v in arrays.items() if k.startswith("output")}

        slots: list = []
        # masks="same" and the model is in the layer freeze state the golden was
        # written with: load under its state exactly as found.  Applying the mask
        # would reset per-variable flags (kernel.trainable = False), which change
        # what positional formats (h5) expect, a state the golden was written in.
        as_found = None
        if masks == SAME:
            written = FreezeMask.from_paths(tree, [p for p in frozen_paths(manifest.frozen)
                                                   if p in {n.index_path for n in tree.nodes}])
            if written == current:
                as_found = written

        def prepare():
            for e, value in zip(entries, before):
                e.variable.assign(value)
            if compiled:  # under the load mask: an optimizer for what is trainable now
                slots[:] = attach_fresh_optimizer(tree)
                for slot in slots:
                    if slot.key not in slot_preloads:  # negative: never a golden value
                        shape, dtype = tuple(slot.variable.shape), numpy_dtype(slot.variable)
                        slot_preloads[slot.key] = preload_values(distinct_values([(shape, dtype)], rng)[0])
                    slot.variable.assign(slot_preloads[slot.key])

        def run(load_mask):
            found_state = as_found is not None and load_mask == as_found
            loaded = load_into(tree, fmt, checkpoint, load_mask, prepare=prepare, as_found=found_state)
            found = GoldenResult(str(folder.path), manifest.format, load_mask, total=len(entries),
                                 load_error=loaded.error, warnings=loaded.warnings, as_found=found_state,
                                 tolerance=tolerance)
            for e, pre in zip(entries, before):
                got = read(e.variable)
                if not _matches(got, golden[e.key]):
                    found.outcomes.append(classify(key=e.key, display=e.display, shape=tuple(got.shape),
                                                   dtype=str(got.dtype), got=fingerprint(got),
                                                   preload=fingerprint(pre), expected=expected))
            if compiled:
                found.outcomes += _compare_optimizer(slots, golden, expected, slot_preloads)
            if found.ok:
                try:
                    with framework_chatter():
                        now = probe.outputs(model, inputs)
                except Exception as exc:
                    found.load_error = describe(exc)
                    return found
                found.output_differences = probe.differences(stored, now, rtol=rtol, atol=atol)
            return found

        if masks == SAME:
            outcome = search(run, fixed=[{"load_mask": written}], strategies={"load_mask": freeze_masks(tree)},
                             examples=1, seed=seed, generate=False)
        else:
            fixed = [load for _, load in fixed_pairs(tree, tree, SAME)]
            outcome = search(run, fixed=[{"load_mask": m} for m in fixed],
                             strategies={"load_mask": freeze_masks(tree)}, examples=examples, seed=seed,
                             smaller=lambda kw: [{"load_mask": load} for _, load in split((kw["load_mask"],) * 2)])
        return outcome.failure
