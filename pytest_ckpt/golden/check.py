"""Golden-checkpoint checks: does today's model, as the test builds it, load the
checkpoint that is already out there, exactly?

Writing a golden records a checkpoint of the model, what every variable
holds (a SHA-256) under the identity the format loads it by, and the model's
outputs on a fixed probe.  By default the model first gets distinct values on
its initializers' scale, seeded by each variable's key (a fresh BatchNorm's
gamma and moving variance are all ones: a swap between them would not show;
values of arbitrary magnitude would saturate activations, so an activation
change would not show either).  ``values="model"`` keeps the model's own.

Checking one loads the golden into the model *as the test built it* (its
trainable flags, its optimizer built or not) through the format's own Keras
load, then compares each variable with the golden's value under the same
identity (see :func:`identity`), and the outputs within a tolerance derived
from the compute dtype and the outputs' scale (see :func:`output_tolerance`).
Drawn freeze masks are opt-in (``masks="independent"``).  Afterwards the
model is left exactly as found: values, optimizer, flags and the caches
computed from them.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_ckpt.checks.comparison import ExpectedValues, VariableKind, VariableOutcome, Verdict, classify, fingerprint
from pytest_ckpt.checks.loading import refresh_caches
from pytest_ckpt.checks.tolerance import output_tolerance
from pytest_ckpt.errors import CkptError
from pytest_ckpt.framework import compat, nested, probe
from pytest_ckpt.framework.bulk import read
from pytest_ckpt.framework.chatter import framework_chatter
from pytest_ckpt.framework.detection import backend_of, framework_of
from pytest_ckpt.framework.formats import Format, MatchesBy, get_format, is_user_format, matching
from pytest_ckpt.framework.messages import describe
from pytest_ckpt.framework.tempfiles import workdir
from pytest_ckpt.framework.tree import LayerTree
from pytest_ckpt.framework.values import iter_distinct_values, numpy_dtype
from pytest_ckpt.golden.store import (
    DISTINCT,
    GOLDEN_FORMATS,
    MODEL,
    GoldenError,
    GoldenFolder,
    GoldenVariable,
    Manifest,
    frozen_text,
    pack,
)
from pytest_ckpt.inspect.readers import Checkpoint, open_checkpoint
from pytest_ckpt.report.diagnosis import MAX_ROWS, tail
from pytest_ckpt.search.masks import INDEPENDENT, POLICIES, FreezeMask, TrainableState, current_mask, masked

STRUCTURE = "input_structure"  # how the probe's arrays nest (JSON)
# Where a format files the optimizer's state: Keras 3 files under "optimizer/", the state
# tree (Orbax) under "optimizer_variables/".
OPTIMIZER_PREFIXES = ("optimizer/", "optimizer_variables/")
_PROBE_SEED = 20261202


def keras_version(model: Any) -> str:
    module = type(model).__module__.split(".")[0]
    try:
        return str(__import__(module).__version__)
    except Exception:
        return "unknown"


# -- identity: how the format keys each variable -------------------------------------------------


@dataclass
class Slot:
    """A variable the checkpoint holds, under the key the format loads it by."""

    key: str
    variable: Any
    display: str
    kind: VariableKind


def _candidates(tree: LayerTree) -> list[tuple[Any, str, VariableKind]]:
    """Every variable a checkpoint can hold: the model's, then its optimizer's.

    An optimizer variable is shown as what it serves ("optimizer: <layer path
    of the variable> momentum"): Keras restores them by position, so a slot
    that serves another variable than when the golden was written is the
    failure to name (see :func:`_moved`).
    """
    found = [(e.variable, e.display, VariableKind.MODEL) for e in tree.variables()]
    displays = {id(e.variable): e.display for e in tree.variables()}
    optimizer = getattr(tree.model, "optimizer", None)
    if optimizer is None:
        return found
    for v, owner, kind in compat.optimizer_slots(optimizer, list(tree.model.weights)):
        served = displays.get(id(owner)) if owner is not None else None
        found.append((v, f"optimizer: {served} {kind}" if served else f"optimizer: {kind}",
                      VariableKind.OPTIMIZER))
    return found


def stored_keys(checkpoint: Checkpoint, format_name: str) -> dict[str, Any]:
    """Each stored value under the key its format's load matches it by.

    Keras 3 formats match by path in the file (``layers/dense/vars/0``,
    ``optimizer/vars/3``); legacy HDF5 by position: the k-th layer group with
    weights, then the weight's place in it (by layer name, then position,
    for ``h5-by-name``).  ``load_weights`` never restores a legacy file's
    optimizer weights: they are not part of what it loads.
    """
    if checkpoint.load_order is None:
        return {v.key: v for v in checkpoint.variables}
    groups = list(checkpoint.load_order)
    keys = {}
    for v in checkpoint.variables:
        if v.optimizer or v.group not in checkpoint.load_order:
            continue
        place = v.group if format_name == "h5-by-name" or v.group == "top_level_model_weights" \
            else f"layer{groups.index(v.group)}"
        keys[f"{place}/weight{v.position}"] = v
    return keys


def _value_key(array: np.ndarray) -> str:
    """Equal for one value whatever dtype the file stores it in."""
    array = np.asarray(array)
    if array.dtype.kind in "biuf" or array.dtype.name == "bfloat16":
        array = array.astype(np.float64)
    return fingerprint(array)


def identity(tree: LayerTree, fmt: Format, format_name: str, wd: Path, seed: int) -> list[Slot]:
    """Every variable the format saves, keyed as its load matches it.

    The variables get distinct throwaway values (``seed``), the model is
    saved, and each value found in the file names its variable's key: the
    format itself says where it puts what, for any model.  The throwaway
    values stay (they are the pre-load values of a check).
    """
    candidates = _candidates(tree)
    specs = ((tuple(v.shape), numpy_dtype(v), None) for v, _, _ in candidates)
    by_value: dict[str, tuple[Any, str, VariableKind]] = {}
    for (v, display, kind), value in zip(candidates, iter_distinct_values(specs, np.random.default_rng(seed))):
        v.assign(value)
        by_value.setdefault(_value_key(read(v)), (v, display, kind))
    path = fmt.path_in(wd / f"identity-{seed}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt.save(tree.model, path)
    slots = []
    with open_checkpoint(path) as checkpoint:
        for key, stored in stored_keys(checkpoint, format_name).items():
            match = by_value.pop(_value_key(checkpoint.read(stored)), None)
            if match is not None:
                slots.append(Slot(key, *match))
    return slots


# -- leaving the model as found --------------------------------------------------------------------


@contextmanager
def preserved(tree: LayerTree) -> Iterator[None]:
    """The model as it was afterwards: values (optimizer's too), flags, optimizer
    object, and the state computed from the values (adapted statistics)."""
    flags = TrainableState.of(tree)
    variables = [v for v, _, _ in _candidates(tree)]
    before = [read(v) for v in variables]
    optimizer = getattr(tree.model, "optimizer", None)
    try:
        yield
    finally:
        for v, value in zip(variables, before):
            v.assign(value)
        flags.restore(tree)
        if optimizer is not None:
            tree.model.optimizer = optimizer
        refresh_caches(tree)


# -- writing ----------------------------------------------------------------------------------------


def _golden_values(slots: list[Slot]) -> None:
    """Distinct values on each variable's initializer scale, seeded by its key:
    the same on every update, activations where a trained model has them."""
    for slot in slots:
        seed = int.from_bytes(hashlib.sha256(slot.key.encode()).digest()[:8], "big")
        initial = read(slot.variable)
        spec = (tuple(slot.variable.shape), numpy_dtype(slot.variable), initial)
        slot.variable.assign(next(iter_distinct_values([spec], np.random.default_rng(seed))))


def _flatten(structure: Any, leaves: dict[str, np.ndarray]) -> Any:
    """The structure as JSON-able nesting of leaf names; the arrays go into ``leaves``."""
    def store(value: Any) -> str:
        name = f"input{len(leaves)}"
        leaves[name] = np.asarray(value)
        return name

    return nested.to_skeleton(structure, store)


def _unflatten(spec: Any, arrays: dict[str, np.ndarray]) -> Any:
    return nested.from_skeleton(spec, arrays.__getitem__)


def _materialize(model: Any) -> Any:
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


def check_arguments(*, format: str | None = None, name: str | None = None, values: str = DISTINCT,
                    examples: int | None = None, masks: str | None = None, rtol: float | None = None,
                    atol: float | None = None) -> None:
    """``ckpt_regression.check``'s arguments, before anything is read or written:
    a bad one is named, not reported as a missing golden or a failed load."""
    def bad(argument: str, value: object, expected: str) -> None:
        raise CkptError(f"ckpt_regression.check: {argument}={value!r}: {expected}")

    if format is not None and format not in GOLDEN_FORMATS and not is_user_format(format):
        bad("format", format, "must be a format the golden check loads into the test's model, one of "
                              f"{', '.join(GOLDEN_FORMATS)}, or a format of your own as module:attr")
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


def _golden_format(format_name: str, model: Any) -> Format:
    framework = framework_of(model) or ""
    fmt = get_format(format_name, framework, backend_of(framework))
    unfit = fmt.unfit(model, "the model given to ckpt_regression.check")
    if unfit is not None:
        raise GoldenError(unfit)
    if fmt.loads_new_model:
        raise GoldenError(f"format {format_name} loads into a new model; a golden is loaded into the "
                          "model the test built: use a format that loads into it")
    return fmt


def write_golden(model: Any, folder: GoldenFolder, format_name: str, *, values: str = DISTINCT,
                 tmp_root: str | Path | None = None) -> Manifest:
    check_arguments(format=format_name, values=values)
    framework = framework_of(model) or ""
    backend = backend_of(framework)
    fmt = _golden_format(format_name, model)
    inputs = _materialize(model)
    tree = LayerTree(model)
    with preserved(tree), workdir(tmp_root) as wd, framework_chatter():
        own = [read(v) for v, _, _ in _candidates(tree)]
        try:
            slots = identity(tree, fmt, format_name, wd, _PROBE_SEED)
        except Exception as exc:
            raise GoldenError(f"cannot write a golden in format {format_name} for this model: "
                              f"{type(exc).__name__}: {str(exc)[:300]}") from None
        for (v, _, _), value in zip(_candidates(tree), own):
            v.assign(value)
        if values == DISTINCT:
            _golden_values(slots)
        refresh_caches(tree)  # as adapt() or fit() leave them for these values
        records = [GoldenVariable(s.key, tuple(s.variable.shape), str(numpy_dtype(s.variable)),
                                  fingerprint(read(s.variable)), s.display) for s in slots]
        source = fmt.path_in(wd / "golden")
        source.parent.mkdir(parents=True, exist_ok=True)
        try:
            fmt.save(model, source)
            outputs = probe.outputs(model, inputs)
        except Exception as exc:
            raise GoldenError(f"cannot write a golden in format {format_name} for this model: "
                              f"{type(exc).__name__}: {str(exc)[:300]}") from None
        manifest = Manifest(framework, backend, keras_version(model), format_name, values,
                            frozen_text(current_mask(tree).frozen), "", "", "", records)
        leaves: dict[str, np.ndarray] = {}
        spec = _flatten(inputs, leaves)
        arrays = {**leaves, STRUCTURE: np.array(json.dumps(spec)), **outputs}
        return folder.write(lambda tmp: pack(source, tmp), manifest, arrays)


# -- checking ---------------------------------------------------------------------------------------


class PathChange(enum.Enum):
    """What the golden's and the model's variable keys tell by themselves."""

    REGROUPED = "a variable changed trainable group (state-tree formats)"
    COUNTERS = "paths differ only by automatic name counters"


@dataclass
class GoldenResult:
    folder: str
    format: str
    load_mask: FreezeMask = field(default_factory=FreezeMask)
    as_built: bool = True  # loaded under the model's own flags
    missing: list[GoldenVariable] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    reshaped: list[str] = field(default_factory=list)
    outcomes: list[VariableOutcome] = field(default_factory=list)
    skipped_optimizer: str | None = None  # why Keras left the golden's optimizer state out
    load_error: tuple[str, str] | None = None
    warnings: list[str] = field(default_factory=list)
    output_differences: list[probe.OutputDifference] = field(default_factory=list)
    total: int = 0
    tolerance: str = ""  # the outputs' rtol and atol, and why those
    update_helps: bool | None = None  # would a golden written now pass? None: not known
    update_blocker: str = ""  # what a golden written now fails with

    @property
    def ok(self) -> bool:
        return not (self.missing or self.new or self.reshaped or self.outcomes or self.load_error
                    or self.output_differences or self.skipped_optimizer)

    @property
    def silent(self) -> bool:
        return not self.ok and self.load_error is None

    def summary(self) -> str:
        return f"golden {self.folder}: {'ok' if self.ok else 'mismatch'}"

    def render(self, seed: object = None, reproduce: str | None = None) -> str:
        mask = "the model's own freeze state, as the test built it" if self.as_built \
            else f"{self.load_mask.describe()} (drawn: masks='independent')"
        lines = [f"golden checkpoint check failed: {self.folder}", f"  format:    {self.format}",
                 f"  loaded:    {mask}"]
        if self.tolerance:
            lines.append(f"  outputs:   {self.tolerance}")
        if self.load_error:
            lines.append(f"  load raised {self.load_error[0]}: {self.load_error[1]}")
        for warning in self.warnings[:3]:
            lines.append(f"  Keras warned: {warning[:300]}")
        if self.skipped_optimizer:
            lines.append(f"  optimizer: {self.skipped_optimizer}")
        lines += self._tables()
        cause = self._path_cause()
        if cause:
            lines.append(f"  cause:     {cause}")
        if any(o.kind is VariableKind.OPTIMIZER and o.verdict is Verdict.SWAPPED for o in self.outcomes):
            lines.append("  cause:     Keras restores an optimizer's variables by position, in the order of the "
                         "trainable variables; they changed since the golden was written (another layer "
                         "frozen, say), so slots now serve other variables, without a warning")
        for d in self.output_differences[:10]:
            lines.append(f"  outputs differ from the golden's: {d.name}: {d.detail}")
        return "\n".join(lines + tail(None, self._remedy(), seed, reproduce))

    def _tables(self) -> list[str]:
        rows: dict[VariableKind, list[str]] = {VariableKind.MODEL: [], VariableKind.OPTIMIZER: []}
        for o in self.outcomes:
            if o.source_key:
                detail = f"holds the golden value of {o.source_key} ({o.source_display})"
            elif o.candidates:
                detail = f"holds the golden value of one of {o.candidates} variables"
            else:
                detail = "(kept its pre-load value: never loaded)" if o.verdict == "not_loaded" \
                    else "(a value the golden does not hold)"
            rows[o.kind].append(f"{o.key} ({o.display})  {o.verdict}  {detail}")
        lines = []
        for title, items in (
            ("in the golden, not in the model", [f"{v.key} ({v.name}) {v.shape}" for v in self.missing]),
            ("in the model, not in the golden", self.new),
            ("shape or dtype changed", self.reshaped),
            (f"model variables that changed (of {self.total})", rows[VariableKind.MODEL]),
            ("optimizer variables that changed", rows[VariableKind.OPTIMIZER]),
        ):
            if items:
                lines.append(f"  {title} ({len(items)}):")
                lines += [f"    {r}" for r in items[:MAX_ROWS]]
                if len(items) > MAX_ROWS:
                    lines.append(f"    ... and {len(items) - MAX_ROWS} more")
        return lines

    def _path_change(self) -> tuple[PathChange | None, list[str]]:
        """Why keys went missing, where the keys themselves say, with the keys it concerns."""
        missing, new = {v.key for v in self.missing}, {row.split(" ", 1)[0] for row in self.new}
        regrouped = sorted({_ungrouped(k) for k in missing} & {_ungrouped(k) for k in new})
        if regrouped and matching(self.format) is MatchesBy.GROUP:
            return PathChange.REGROUPED, regrouped
        counted = sorted({_uncounted(k) for k in missing} & {_uncounted(k) for k in new})
        return (PathChange.COUNTERS, counted) if counted else (None, [])

    def _path_cause(self) -> str:
        change, keys = self._path_change()
        if change is PathChange.REGROUPED:
            return (f"{len(keys)} variables changed trainable group since the golden was written "
                    f"({', '.join(keys[:3])}); the state tree matches by path inside each group and "
                    "set_state_tree skips what it cannot match, without a warning")
        if change is PathChange.COUNTERS:
            return ("variable paths differ only by Keras's automatic name counters (a model, layer or "
                    "optimizer auto-named 'adam' in one process is 'adam_1' after another was built), so "
                    "the paths depend on what the process built before; formats that match by path load "
                    "nothing into such variables, silently")
        return ""

    def _remedy(self) -> str:
        if self._path_change()[0] is PathChange.COUNTERS:
            return ("name the model, its nested models and layers, and its optimizer (name=...), so that "
                    "paths are the same in every process; then write the golden again with pytest --ckpt-update")
        if self.update_helps is False:
            return ("an update would not help: a golden written now from this model fails the same "
                    f"check ({self.update_blocker}); fix how the model is built or saved first")
        if self.skipped_optimizer:
            return ("build the optimizer as it was when the golden was written (same trainable "
                    "layers) before loading; if the change is intended, accept it with pytest --ckpt-update")
        return ("if the change is intended, accept it with pytest --ckpt-update; otherwise the model "
                "no longer loads checkpoints that are already out there")


_GROUPS = ("trainable_variables/", "non_trainable_variables/")


def _ungrouped(key: str) -> str:
    return next((key.removeprefix(g) for g in _GROUPS if key.startswith(g)), "\0" + key)


def _uncounted(key: str) -> str:
    return re.sub(r"_\d+(?=/|$)", "", key)


def _output_differences(model: Any, inputs: Any, stored: dict[str, np.ndarray],
                        tolerance: dict[str, tuple[float, float]]) -> list[probe.OutputDifference]:
    with framework_chatter():
        now = probe.outputs(model, inputs)
    found = []
    for name in sorted(set(stored) | set(now)):
        rtol, atol = tolerance.get(name, (0.0, 0.0))
        found += probe.differences({name: stored[name]} if name in stored else {},
                                   {name: now[name]} if name in now else {}, rtol=rtol, atol=atol)
    return found


def _matches(got: np.ndarray, record: GoldenVariable) -> bool:
    """Exactly the golden's value.  The one tolerance: an integer's width (the
    optimizer's iterations is int64 on TensorFlow, int32 on JAX and PyTorch)."""
    if fingerprint(got) == record.sha256:
        return True
    widths = {"int32", "int64"}
    return (str(got.dtype) in widths and record.dtype in widths and str(got.dtype) != record.dtype
            and fingerprint(got.astype(record.dtype)) == record.sha256)


def _structure(slots: list[Slot], golden: dict[str, GoldenVariable], result: GoldenResult) -> None:
    """Model variables in one and not the other, or reshaped (the optimizer's are
    compared after the load: Keras decides there whether it takes them)."""
    model_golden = {k: v for k, v in golden.items() if not k.startswith(OPTIMIZER_PREFIXES)}
    current = {s.key: s for s in slots if s.kind is VariableKind.MODEL}
    result.missing = [v for k, v in model_golden.items() if k not in current]
    result.new = [f"{s.key} ({s.display}) {tuple(s.variable.shape)}" for k, s in current.items()
                  if k not in model_golden]
    result.reshaped = [f"{k} ({s.display}): {golden[k].shape} {golden[k].dtype} -> "
                       f"{tuple(s.variable.shape)} {numpy_dtype(s.variable)}"
                       for k, s in current.items()
                       if k in golden and (golden[k].shape != tuple(s.variable.shape)
                                           or golden[k].dtype != str(numpy_dtype(s.variable)))]


def _optimizer_skipped(slots: list[Slot], golden: dict[str, GoldenVariable]) -> str | None:
    """Keras loads an optimizer's state only when it has as many variables as the
    saved one: otherwise it warns and keeps its own (iterations back to 0)."""
    ours = sum(s.kind is VariableKind.OPTIMIZER for s in slots)
    theirs = sum(k.startswith(OPTIMIZER_PREFIXES) for k in golden)
    if not theirs or ours == theirs:
        return None
    return (f"the golden holds {theirs} optimizer variables and the model's optimizer has {ours} now, "
            "so Keras skips the golden's optimizer state (iterations and slots start over): its trainable "
            "variables changed since the golden was written, or it is not built yet")


def _moved(slot: Slot, record: GoldenVariable, present: set[str], by_position: bool) -> VariableOutcome | None:
    """Where a format matches by position (legacy h5's weights, every format's
    optimizer variables), the value meant for another variable that is still
    in the model (a renamed one is not: position is all the load goes by)."""
    positional = by_position or slot.kind is VariableKind.OPTIMIZER
    if not positional or record.name == slot.display:
        return None
    # An optimizer variable is "optimizer: <the variable it serves> <kind>": that
    # variable still being in the model is what makes it a move, not a rename.
    meant_for = record.name.removeprefix("optimizer: ").rpartition(" ")[0] \
        if slot.kind is VariableKind.OPTIMIZER else record.name
    if meant_for not in present:
        return None
    return VariableOutcome(key=slot.key, display=slot.display, shape=record.shape, dtype=record.dtype,
                           verdict=Verdict.SWAPPED, source_key=record.key, source_display=record.name,
                           candidates=1, kind=slot.kind)


def _compare(slots: list[Slot], golden: dict[str, GoldenVariable], preloads: dict[int, str],
             result: GoldenResult, by_position: bool) -> None:
    expected = ExpectedValues((v.key, v.name, v.sha256) for v in golden.values())
    present = {s.display for s in slots if s.kind is VariableKind.MODEL}
    for s in slots:
        record = golden.get(s.key)
        got = read(s.variable)
        if record is not None and _matches(got, record):
            moved = _moved(s, record, present, by_position)
            if moved is not None:
                result.outcomes.append(moved)
            continue
        if record is None:
            continue
        result.outcomes.append(classify(key=s.key, display=s.display, shape=tuple(got.shape),
                                        dtype=str(got.dtype), got=fingerprint(got),
                                        preload=preloads.get(id(s.variable)), expected=expected,
                                        kind=s.kind))


@dataclass
class _Golden:
    """What a check needs of one golden, read once."""

    manifest: Manifest
    checkpoint: Path
    inputs: Any
    stored: dict[str, np.ndarray]

    @property
    def variables(self) -> dict[str, GoldenVariable]:
        return {v.key: v for v in self.manifest.variables}


def _read(folder: GoldenFolder, wd: Path) -> _Golden:
    manifest, checkpoint, arrays = folder.read(wd)
    try:
        inputs = _unflatten(json.loads(str(arrays[STRUCTURE])), arrays)
    except (KeyError, ValueError, TypeError) as exc:
        raise GoldenError(f"the golden probe in {folder.path} is unreadable ({exc!r}): "
                          "run pytest --ckpt-update to write it again") from None
    return _Golden(manifest, checkpoint, inputs, {k: v for k, v in arrays.items() if k.startswith("output")})


@dataclass
class _Check:
    """One golden against one model: a load under the model's flags, or a drawn mask."""

    tree: LayerTree
    golden: _Golden
    folder: GoldenFolder
    fmt: Format
    wd: Path
    tolerance: dict[str, tuple[float, float]]
    tolerance_text: str
    runs: int = 0

    def run(self, load_mask: FreezeMask | None = None) -> GoldenResult:
        """Load the golden into the model as it is (or under ``load_mask``), compare."""
        self.runs += 1
        manifest = self.golden.manifest
        result = GoldenResult(str(self.folder.path), manifest.format, load_mask or FreezeMask(),
                              as_built=load_mask is None, tolerance=self.tolerance_text)
        with preserved(self.tree), (masked(self.tree, load_mask) if load_mask is not None
                                    else _as_is()), framework_chatter() as said:
            slots = identity(self.tree, self.fmt, manifest.format, self.wd, _PROBE_SEED + self.runs)
            result.total = sum(s.kind is VariableKind.MODEL for s in slots)
            golden = self.golden.variables
            _structure(slots, golden, result)
            if result.missing or result.new or result.reshaped:
                return result  # structural: loading cannot change that
            preloads = {id(s.variable): fingerprint(read(s.variable)) for s in slots}
            try:
                self.fmt.load(self.tree.model, self.golden.checkpoint)
            except Exception as exc:
                result.load_error = describe(exc)
            result.warnings = list(said)
            if result.load_error is None:
                result.skipped_optimizer = _optimizer_skipped(slots, golden)
                _compare(slots, golden, preloads, result,
                         self.fmt.matches_by in (MatchesBy.POSITION, MatchesBy.NAME))
            if result.ok:
                self._outputs(result)
        return result

    def _outputs(self, result: GoldenResult) -> None:
        try:
            result.output_differences = _output_differences(self.tree.model, self.golden.inputs,
                                                            self.golden.stored, self.tolerance)
        except Exception as exc:
            result.load_error = describe(exc)


@contextmanager
def _as_is() -> Iterator[None]:
    yield


def check_golden(model: Any, folder: GoldenFolder, *, format_name: str | None = None, examples: int,
                 seed: int | None = None, masks: str | None = None, rtol: float | None = None,
                 atol: float | None = None, tmp_root: str | Path | None = None) -> GoldenResult | None:
    """Load the golden into ``model`` as the test built it; the mismatch, or None.

    ``masks="independent"`` also loads under drawn freeze masks (the round
    trip's question, asked of a golden); ``None`` or ``"same"``: the model's
    own flags only.  ``rtol``/``atol`` not given: see :func:`output_tolerance`.
    """
    with workdir(tmp_root) as wd:
        failure = _check_in(wd, model, folder, format_name, masks, examples, seed, rtol, atol)
        if failure is not None:
            _would_an_update_help(model, failure, wd, masks, examples, seed, rtol, atol)
        return failure


def _check_in(wd: Path, model: Any, folder: GoldenFolder, format_name: str | None, masks: str | None,
              examples: int, seed: int | None, rtol: float | None, atol: float | None) -> GoldenResult | None:
    golden = _read(folder, wd)
    if format_name is None and is_user_format(golden.manifest.format):
        raise GoldenError(f"golden {folder.path} was written in your format {golden.manifest.format!r}: "
                          f"pass format={golden.manifest.format!r} to ckpt_regression.check (a golden's "
                          "manifest never makes the check import code)")
    if format_name is not None and format_name != golden.manifest.format:
        raise GoldenError(f"golden {folder.path} was written in format {golden.manifest.format!r} and "
                          f"this check asks for {format_name!r}: run pytest --ckpt-update to write it again")
    fmt = _golden_format(golden.manifest.format, model)
    _materialize(model)
    tree = LayerTree(model)
    tolerance, why = output_tolerance(tree, golden.stored, rtol, atol)
    return _search(_Check(tree, golden, folder, fmt, wd, tolerance, why), masks, examples, seed)


def _search(check: _Check, masks: str | None, examples: int, seed: int | None) -> GoldenResult | None:
    found = check.run()
    if not found.ok or masks != INDEPENDENT:
        return None if found.ok else found
    from pytest_ckpt.search.driver import search
    from pytest_ckpt.search.strategies import freeze_masks

    outcome = search(lambda load_mask: check.run(load_mask), fixed=[],
                     strategies={"load_mask": freeze_masks(check.tree)}, examples=examples, seed=seed)
    failure = outcome.failure
    return failure if isinstance(failure, GoldenResult) else None


def _would_an_update_help(model: Any, failure: GoldenResult, wd: Path, masks: str | None, examples: int,
                          seed: int | None, rtol: float | None, atol: float | None) -> None:
    """Write a golden from the model now (in the temporary folder) and check it the
    same way: the remedy suggests ``--ckpt-update`` only if that one passes."""
    trial = GoldenFolder(wd / "would-be-golden")
    try:
        manifest = Manifest.load(Path(failure.folder) / "manifest.txt")
        values = manifest.values
    except CkptError:
        values = DISTINCT
    try:
        write_golden(model, trial, failure.format, values=values, tmp_root=wd)
        again = _check_in(wd, model, trial, failure.format, masks, examples, seed, rtol, atol)
    except CkptError as exc:
        failure.update_helps, failure.update_blocker = False, str(exc)[:300]
        return
    failure.update_helps = again is None
    if again is not None:
        if again.load_error:
            failure.update_blocker = f"{again.load_error[0]}: {again.load_error[1][:200]}"
        elif again.outcomes:
            failure.update_blocker = f"{len(again.outcomes)} variables {again.outcomes[0].verdict}"
        else:
            failure.update_blocker = again.skipped_optimizer or "its outputs differ"
