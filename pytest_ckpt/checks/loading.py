"""The loading side of a check: the model a fresh process builds, loads into and reports on.

A user's checkpoint is loaded by another process than the one that wrote
it: one with its own hash seed (so its own ``set`` iteration order), its own
name counters and its own module state.  :class:`LoadSide` is that process's
part of a check.  It runs in a long-lived child process (see
:mod:`pytest_ckpt.checks.isolation`) or, in the weaker inline mode, in this one.

It builds the factory's model *as returned*, compiled or not, its optimizer
built or not, and loads the way user code does (compile, then
``load_weights``).  It never decides a verdict: it reports what each
variable holds (a SHA-256 of its bytes) and what the model computes, and the
checking side compares that with what it saved.

Everything crossing the process boundary is plain data (this module's
dataclasses, strings and NumPy arrays).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_ckpt.checks.comparison import fingerprint
from pytest_ckpt.checks.optimizer_state import build_optimizer, fresh_optimizer
from pytest_ckpt.checks.training import fit_steps, rng_variables, state, state_digests
from pytest_ckpt.errors import CkptError
from pytest_ckpt.framework import compat, probe
from pytest_ckpt.framework.bulk import read
from pytest_ckpt.framework.chatter import framework_chatter
from pytest_ckpt.framework.detection import backend_of, framework_of, framework_roots
from pytest_ckpt.framework.factories import FactoryRef, build, resolve
from pytest_ckpt.framework.formats import get_format
from pytest_ckpt.framework.messages import describe
from pytest_ckpt.framework.tree import LayerTree
from pytest_ckpt.search.masks import FreezeMask, apply_mask

IndexPath = tuple[int, ...]


@dataclass(frozen=True)
class NodeInfo:
    index_path: IndexPath
    display: str
    key: str
    class_name: str
    has_weights: bool
    is_container: bool
    trainable: bool
    # Positions (in Structure.variables) of the weights the layer holds: how a
    # migration maps a layer of one framework's tree onto the other's.
    weights: tuple[int, ...]


@dataclass(frozen=True)
class VariableInfo:
    key: str
    display: str
    shape: tuple[int, ...]
    dtype: str
    # Keras 3's variable path, by which the state tree (Orbax) matches; "" in tf-keras.
    path: str = ""


@dataclass
class Structure:
    """What a model is, as plain data: its layer tree, variables and optimizer."""

    framework: str
    backend: str
    nodes: list[NodeInfo]
    variables: list[VariableInfo]
    # The layers' names, classes and wiring: two builds that differ here were built
    # differently (say from a set's iteration order, which follows the hash seed).
    layout: list[str]
    tokens: tuple[list[str], list[int]]
    input_names: list[str]
    compiled: bool
    optimizer_built: bool
    # Layer classes that save or load their variables with their own code.
    custom_saving: list[str] = field(default_factory=list)
    # Which model of the loading side this is (see LoadSide).
    handle: int = -1

    def maskable(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.has_weights]


@dataclass(frozen=True)
class SlotReport:
    """One optimizer variable after a load."""

    owner: str | None  # the key of the model variable it serves; None for iterations & co
    kind: str  # "momentum", or the variable's own name for the others
    position: int  # among the optimizer variables that serve no model variable
    digest: str
    # Its digest right before the load; None if it did not exist then (created by
    # building the optimizer after the load, as the first training step does).
    before: str | None
    shape: tuple[int, ...]
    dtype: str


@dataclass
class LoadRequest:
    path: str
    format_name: str
    # Layers frozen for the load (index paths in the loading model); None: the
    # factory's own flags, untouched.
    frozen: list[IndexPath] | None
    # Put every variable at its pre-load value first (see LoadSide.set_preloads).
    preload: bool = True
    # Probe inputs by input name: the outputs are computed after the load.
    inputs: dict[str, np.ndarray] | None = None
    # An adapters-only format: values by variable key that reach the model from its base
    # (the preset it is built from), assigned before the load.
    base: dict[str, np.ndarray] | None = None


@dataclass
class LoadReport:
    error: tuple[str, str] | None
    warnings: list[str]
    digests: dict[str, str]  # variable key -> SHA-256 of what it holds
    slots: list[SlotReport]
    optimizer_built_at_load: bool
    # load_model built a new model: its structure (its keys are the digests' keys).
    new_structure: Structure | None = None
    outputs: dict[str, np.ndarray] | None = None
    outputs_error: str | None = None


@dataclass
class ResumeRequest:
    path: str
    format_name: str
    frozen: list[IndexPath]
    batches: list[Any]
    # The seed generators' state the run that never stopped had after the save.
    rng_state: list[np.ndarray]
    # Per step, the digest of every model and optimizer variable (loading-side keys).
    expected: list[dict[str, str]]
    # Formats that restore where training stands: the epoch fit must go on from.
    epoch: int | None = None


@dataclass
class ResumeReport:
    error: tuple[str, str] | None
    train_error: tuple[str, str] | None
    warnings: list[str]
    optimizer_unbuilt_at_load: bool
    step: int | None = None  # the first resumed step after which something differs
    differing: dict[str, np.ndarray] = field(default_factory=dict)  # at that step (at most 40)
    count: int = 0  # how many differ then
    digests: dict[str, str] | None = None  # everything at that step, to tell two runs apart
    # Everything right after the load: two loads of one file that differ here lost state.
    loaded: dict[str, str] | None = None
    steps_run: int = 0  # training steps the resumed fit ran
    epoch: int | None = None  # the epoch fit went on from, where the request expects one


MAX_DIFFERING = 40


def _digest_text(text: str) -> str:
    return fingerprint(np.frombuffer(text.encode(), dtype=np.uint8))[:16]


def _layout(tree: LayerTree) -> list[str]:
    """The tree's layer names and classes by position, then how the top-level layers are wired
    (inbound nodes of the config), then the whole config: each one line, compared in order."""
    lines = [f"{'.'.join(map(str, n.index_path)) or '.'} {n.display} {type(n.layer).__name__}"
             for n in tree.nodes]
    try:
        config = tree.model.get_config()
        text = json.dumps(config, sort_keys=True, default=str)
    except Exception:  # a subclassed model without get_config: its tree is all there is
        return lines
    layers = config.get("layers", []) if isinstance(config, dict) else []
    wiring: list[Any] = [[layer.get("name"), layer.get("inbound_nodes")] for layer in layers
                         if isinstance(layer, dict)]
    wiring += [config.get("input_layers"), config.get("output_layers")] if isinstance(config, dict) else []
    return lines + [f"wiring {_digest_text(json.dumps(wiring, sort_keys=True, default=str))}",
                    f"config {_digest_text(text)}"]


def _custom_saving(tree: LayerTree) -> list[str]:
    found = []
    for node in tree.nodes:
        cls = type(node.layer)
        for method in ("save_own_variables", "load_own_variables"):
            owner = next((c for c in cls.__mro__ if method in vars(c)), None)
            if owner is not None and not owner.__module__.startswith(("keras", "tf_keras")):
                found.append(f"{cls.__module__}.{cls.__qualname__}")
                break
    return sorted(set(found))


def structure_of(tree: LayerTree) -> Structure:
    """The plain-data description of a model (the same code on both sides of a check)."""
    model = tree.model
    entries = tree.variables()
    position = {id(e.variable): i for i, e in enumerate(entries)}
    nodes = [NodeInfo(n.index_path, n.display, n.key, type(n.layer).__name__, n.has_weights,
                      n.is_container, bool(n.layer.trainable),
                      tuple(sorted(position[id(w)] for w in _weights(n.layer) if id(w) in position)))
             for n in tree.nodes]
    framework = framework_of(model) or "unknown"
    optimizer = getattr(model, "optimizer", None)
    try:
        names = probe.input_names(model)
    except probe.ProbeUnavailable:
        names = []
    return Structure(
        framework=framework, backend=backend_of(framework), nodes=nodes,
        variables=[VariableInfo(e.key, e.display, e.shape, e.dtype, str(getattr(e.variable, "path", "")))
                   for e in entries],
        layout=_layout(tree), tokens=probe.vocabulary_tokens(model), input_names=names,
        compiled=optimizer is not None, optimizer_built=bool(getattr(optimizer, "built", False)),
        custom_saving=_custom_saving(tree))


def _weights(layer: Any) -> list[Any]:
    try:
        return list(layer.weights)
    except (AttributeError, TypeError, ValueError):
        return []


def refresh_caches(tree: LayerTree) -> None:
    """Bring state computed from the variables up to date, as ``adapt()`` and loading do.

    Keras's preprocessing layers keep such state (Normalization's mean and
    variance as tensors beside their variables) and recompute it in
    ``finalize_state()``.  Values assigned to the variables leave it stale:
    the model would compute with the old statistics, and a format that does
    not refresh them on load would go unnoticed.
    """
    for node in tree.nodes:
        finalize = getattr(node.layer, "finalize_state", None)
        if callable(finalize) and getattr(node.layer, "built", True):
            finalize()


def import_factory(ref: FactoryRef) -> Callable[[], Any]:
    """The factory, imported by module name, else from the module's file under its name."""
    module_name, _, _ = ref.spec.partition(":")
    if module_name not in sys.modules and ref.module_file:
        try:
            importlib.import_module(module_name)
        except ImportError:
            spec = importlib.util.spec_from_file_location(module_name, ref.module_file)
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
    return resolve(ref.spec)


def _slot_owner_keys(tree: LayerTree) -> dict[int, str]:
    return {id(e.variable): e.key for e in tree.variables()}


def slot_reports(tree: LayerTree, before: dict[int, str] | None = None) -> list[SlotReport]:
    """The optimizer's variables, each with the key of the model variable it serves."""
    model = tree.model
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return []
    keys = _slot_owner_keys(tree)
    found, unowned = [], 0
    for variable, owner, kind in compat.optimizer_slots(optimizer, list(model.weights)):
        owner_key = keys.get(id(owner)) if owner is not None else None
        position = -1 if owner_key is not None else unowned
        unowned += owner_key is None
        value = read(variable)
        found.append(SlotReport(owner_key, kind, position, fingerprint(value),
                                (before or {}).get(id(variable)), tuple(value.shape), str(value.dtype)))
    return found


class LoadSide:
    """The loading models of the checks in progress, by handle (checks may overlap: a
    test keeps a pair while it builds another).  At most :data:`MAX_MODELS` are kept."""

    def __init__(self) -> None:
        self._models: dict[int, LoadingModel] = {}
        self._next = 0

    def build(self, factory: FactoryRef | Callable[[], Any]) -> Structure:
        """Build the factory's model as a fresh process does; its structure, with its handle."""
        model = LoadingModel()
        structure = model.build(factory)
        self._next += 1
        self._models[self._next] = model
        while len(self._models) > MAX_MODELS:
            del self._models[next(iter(self._models))]
        structure.handle = self._next
        return structure

    def _model(self, handle: int) -> LoadingModel:
        try:
            return self._models[handle]
        except KeyError:
            raise CkptError(f"internal error in pytest-ckpt: loading model #{handle} was released") from None

    def release(self, handle: int) -> None:
        self._models.pop(handle, None)

    def set_preloads(self, handle: int, preloads: dict[str, np.ndarray], kind_offsets: dict[str, float],
                     unowned: list[np.ndarray]) -> dict[str, str]:
        return self._model(handle).set_preloads(preloads, kind_offsets, unowned)

    def set_offsets(self, handle: int, kind_offsets: dict[str, float]) -> None:
        self._model(handle).set_offsets(kind_offsets)

    def load(self, handle: int, request: LoadRequest) -> LoadReport:
        return self._model(handle).load(request)

    def outputs(self, handle: int, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._model(handle).outputs(inputs)

    def resume(self, handle: int, request: ResumeRequest) -> ResumeReport:
        return self._model(handle).resume(request)


MAX_MODELS = 16


class LoadingModel:
    """One check's loading model, and what it holds after each load."""

    def __init__(self) -> None:
        self.tree: LayerTree | None = None
        self._preloads: dict[str, np.ndarray] = {}
        self._kind_offsets: dict[str, float] = {}
        self._unowned: list[np.ndarray] = []
        self._initial: list[np.ndarray] = []
        self._optimizer_initial: list[np.ndarray] = []
        self._unbuilt = False
        self._traced: tuple[int, ...] | tuple[int, int, tuple[int, ...]] = ()

    # -- building -------------------------------------------------------------------

    def build(self, factory: FactoryRef | Callable[[], Any]) -> Structure:
        """Build the factory's model as a fresh process does; its structure."""
        if isinstance(factory, FactoryRef):
            name = factory.spec
            factory = import_factory(factory)
        else:
            name = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', factory)}"
        self.tree = LayerTree(build(factory, name))
        self._initial = [read(v) for v in self.tree.model.variables]
        optimizer = getattr(self.tree.model, "optimizer", None)
        variables = getattr(optimizer, "variables", None) or []
        if callable(variables):  # tf-keras's legacy optimizers: a method (refused on the saving side)
            variables = variables()
        self._optimizer_initial = [read(v) for v in variables]
        # An optimizer the factory left unbuilt meets every load unbuilt, as in the
        # process that loads a user's checkpoint: a fresh copy each time.
        self._unbuilt = optimizer is not None and not getattr(optimizer, "built", False)
        return structure_of(self.tree)

    @property
    def _tree(self) -> LayerTree:
        if self.tree is None:
            raise CkptError("internal error in pytest-ckpt: the loading model was not built")
        return self.tree

    # -- pre-load values --------------------------------------------------------------

    def set_preloads(self, preloads: dict[str, np.ndarray], kind_offsets: dict[str, float],
                     unowned: list[np.ndarray]) -> dict[str, str]:
        """Keep the values each variable holds before every load; their digests as stored.

        ``preloads`` by variable key; an optimizer slot's pre-load value is its
        variable's minus its kind's offset (saved slots are the variable's plus
        it: see :mod:`pytest_ckpt.checks.optimizer_state`); ``unowned`` are those of
        the optimizer variables serving no model variable, by position.
        """
        self._preloads, self._kind_offsets, self._unowned = preloads, kind_offsets, unowned
        self._assign_preloads()
        return {e.key: fingerprint(read(e.variable)) for e in self._tree.variables()}

    def set_offsets(self, kind_offsets: dict[str, float]) -> None:
        self._kind_offsets = kind_offsets

    def _assign_preloads(self) -> dict[int, str]:
        """Pre-load values on every variable that has one, the optimizer's too; the
        optimizer variables' digests right after (by id)."""
        tree = self._tree
        for e in tree.variables():
            value = self._preloads.get(e.key)
            if value is not None:
                e.variable.assign(value)
        optimizer = getattr(tree.model, "optimizer", None)
        if optimizer is None:
            return {}
        keys = _slot_owner_keys(tree)
        before, unowned = {}, 0
        for variable, owner, kind in compat.optimizer_slots(optimizer, list(tree.model.weights)):
            value = self._slot_preload(variable, keys.get(id(owner)) if owner is not None else None,
                                       kind, unowned)
            unowned += owner is None or keys.get(id(owner)) is None
            if value is not None:
                variable.assign(value)
            before[id(variable)] = fingerprint(read(variable))
        return before

    def _slot_preload(self, variable: Any, owner_key: str | None, kind: str, unowned: int) -> Any:
        shape = tuple(int(d) for d in variable.shape)
        if owner_key is not None and owner_key in self._preloads:
            base = np.asarray(self._preloads[owner_key])
            if base.shape == shape:
                offset = self._kind_offsets.get(kind, 100.0 + len(kind))
                return (base.astype(np.float32) - np.float32(offset)).astype(read(variable).dtype)
            return None
        if owner_key is None and unowned < len(self._unowned) and self._unowned[unowned].shape == shape:
            return self._unowned[unowned]
        return None

    # -- loading ------------------------------------------------------------------------

    def load(self, request: LoadRequest) -> LoadReport:
        tree = self._tree
        fmt = get_format(request.format_name, framework_of(tree.model) or "keras3",
                         backend_of(framework_of(tree.model) or "keras3"))
        error, holder, before = None, tree.model, {}
        with framework_chatter() as said:
            if request.frozen is not None:
                apply_mask(tree, FreezeMask(frozenset(request.frozen)))
            if self._unbuilt:
                tree.model.optimizer = fresh_optimizer(tree.model)
            if request.preload:
                before = self._assign_preloads()
            base = request.base or {}
            for e in tree.variables() if base else []:
                if e.key in base:
                    e.variable.assign(base[e.key])
            optimizer = getattr(tree.model, "optimizer", None)
            built = bool(getattr(optimizer, "built", False))
            try:
                holder = fmt.load(tree.model, Path(request.path))
            except Exception as exc:
                error = describe(exc)
            target = tree if holder is tree.model else LayerTree(holder)
            loaded_optimizer = getattr(holder, "optimizer", None)
            if error is None and loaded_optimizer is not None and not getattr(loaded_optimizer, "built", False):
                # What the first training step does: build it for what is trainable now, in
                # whichever model the load left (from_preset's new Task is compiled, unbuilt).
                # A format that restores on creation (tf.train.Checkpoint) fills it here.
                build_optimizer(holder)
            report = LoadReport(error, said, {e.key: fingerprint(read(e.variable)) for e in target.variables()},
                                slot_reports(target, before), built,
                                new_structure=None if target is tree else structure_of(target))
        if request.inputs is not None and error is None:
            try:
                with framework_chatter():
                    report.outputs = probe.outputs(holder, probe.for_model(holder, request.inputs))
            except Exception as exc:
                report.outputs_error = "{}: {}".format(*describe(exc))
        return report

    def outputs(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's outputs on named probe inputs, in its current state."""
        model = self._tree.model
        with framework_chatter():
            return probe.outputs(model, probe.for_model(model, inputs))

    def restore_initial(self) -> None:
        """Every variable back at the value the factory gave it; its optimizer as it gave it."""
        model = self._tree.model
        for v, value in zip(model.variables, self._initial):
            v.assign(value)
        compat.forget_resume_epoch(model)
        optimizer = getattr(model, "optimizer", None)
        if self._unbuilt:
            model.optimizer = fresh_optimizer(model)
        elif optimizer is not None:
            for v, value in zip(optimizer.variables, self._optimizer_initial):
                v.assign(value)

    def resume(self, request: ResumeRequest) -> ResumeReport:
        """Load the checkpoint under the load mask as the factory's model, train the same steps
        with ``fit``; where the state first differs from the run that never stopped."""
        tree = self._tree
        framework = framework_of(tree.model) or "keras3"
        fmt = get_format(request.format_name, framework, backend_of(framework))
        self.restore_initial()
        with framework_chatter() as said:
            apply_mask(tree, FreezeMask(frozenset(request.frozen)))
            unbuilt = not getattr(getattr(tree.model, "optimizer", None), "built", False)
            try:
                holder = fmt.load(tree.model, Path(request.path))
            except Exception as exc:
                return ResumeReport(describe(exc), None, said, unbuilt)
            target = tree if holder is tree.model else LayerTree(holder)
            for v, value in zip(rng_variables(holder), request.rng_state):
                v.assign(value)
            self._trace_for(holder)
            report = ResumeReport(None, None, said, unbuilt, loaded=state_digests(target))
            if request.epoch is not None:
                try:
                    report.epoch = fmt.resume_epoch(holder)
                except Exception as exc:
                    report.error = describe(exc)
                    return report
                if report.epoch != request.epoch:
                    return report  # fit would train other epochs than the run that never stopped
            # A load that built the optimizer itself (BackupAndRestore, a user's code) met none unbuilt.
            report.optimizer_unbuilt_at_load = unbuilt and not getattr(
                getattr(holder, "optimizer", None), "built", False)

            def after(step: int) -> bool:
                report.steps_run = step
                return self._differs(target, request, step, report)

            try:
                # The same fit call as the run that never stopped: one epoch past the restored one.
                fit_steps(holder, request.batches, after, epochs=(request.epoch or 0) + 1,
                          initial_epoch=report.epoch or 0)
            except Exception as exc:
                report.train_error = (type(exc).__name__, user_frames(exc))
        return report

    def _trace_for(self, model: Any) -> None:
        """Keras traces its train function for one optimizer and one trainable set: again only
        when either changed (tracing costs more than the steps)."""
        current = (id(model), id(model.optimizer), tuple(id(v) for v in model.trainable_variables))
        if current != self._traced:
            model.make_train_function(force=True)
            self._traced = current

    def _differs(self, tree: LayerTree, request: ResumeRequest, step: int, report: ResumeReport) -> bool:
        digests = state_digests(tree)
        expected = request.expected[step - 1]
        keys = [k for k in expected if digests.get(k) != expected[k]]
        if not keys:
            return False
        values = {k: v for k, (_, v) in state(tree).items() if k in keys[:MAX_DIFFERING]}
        values.update({k: None for k in keys[:MAX_DIFFERING] if k not in values})  # type: ignore[misc]
        report.step, report.differing, report.count, report.digests = step, values, len(keys), digests
        return True


def user_frames(exc: BaseException, limit: int = 20) -> str:
    """The exception with the frames of the user's code only (not Keras's, not ours)."""
    roots = framework_roots()
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not any(str(Path(f.filename).resolve()).startswith(r) for r in roots)]
    lines = traceback.format_list(frames[-limit:])
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


