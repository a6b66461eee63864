"""The round-trip engine: save under one freeze mask, load under another, compare.

Plain Python: no pytest, no Hypothesis.  One check (a factory in a format)
saves with a model built here and loads with a model built where a user's
checkpoint is loaded: in a fresh process (see :mod:`pytest_ckpt.checks.isolation`),
as the factory returns it.  The check then

1. compares the two models' outputs after a plain save and load of the
   factory's own state (catches state outside the variables, such as cached
   statistics or vocabularies, that differs between two builds);
2. gives every variable of the saving model a distinct value that keeps its
   scale, brings caches computed from them up to date as training would,
   and has the loading side put every variable at a pre-load value that
   differs from the saved one everywhere;
3. runs round trips under mask pairs (see :mod:`pytest_ckpt.search.driver`), each
   comparing every variable exactly, and on the first one the outputs too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_ckpt.checks.comparison import ExpectedValues, VariableKind, VariableOutcome, Verdict, classify, fingerprint
from pytest_ckpt.checks.isolation import InlineLoader, Isolation, Loader, process_loaders
from pytest_ckpt.checks.loading import LoadReport, LoadRequest, Structure, refresh_caches, structure_of
from pytest_ckpt.checks.optimizer_state import OptimizerCheck, fresh_optimizer, is_compiled
from pytest_ckpt.checks.outcomes import AdapterLoss, CheckOutcome, Facts, Matching, RoundTripResult
from pytest_ckpt.checks.tolerance import OUTPUT_TOLERANCE
from pytest_ckpt.checks.training import own_training_code, trained_keys
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.framework import compat, probe
from pytest_ckpt.framework.bulk import read
from pytest_ckpt.framework.chatter import framework_chatter
from pytest_ckpt.framework.detection import backend_of
from pytest_ckpt.framework.factories import as_callable, build, factory_ref
from pytest_ckpt.framework.formats import (
    Format,
    FormatNotApplicable,
    MatchesBy,
    get_format,
    matching,
    unsavable_adapters,
)
from pytest_ckpt.framework.messages import describe, first_line
from pytest_ckpt.framework.tempfiles import workdir
from pytest_ckpt.framework.tree import LayerTree, adapted_state, lora_layers, quantized_layers, untracked_layers
from pytest_ckpt.framework.unsaved import unsaved
from pytest_ckpt.framework.values import iter_distinct_values, numpy_dtype, preload_values
from pytest_ckpt.search.masks import INDEPENDENT, FreezeMask, MaskPolicy, current_mask, frozen_by, masked, translate

# TensorFlow's C++ start-up banner lands in every failure's captured stderr;
# the engine is imported before any factory module, so before TensorFlow.
# A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VALUES_SEED = 20260101


class ArchitectureMismatch(Exception):
    """A model loaded with load_model does not have the saved model's variables."""


def _first_layout_difference(a: list[str], b: list[str]) -> tuple[str, bool] | None:
    """How two builds differ, and whether in their layers or wiring (not only a constant of
    their config); None if they do not."""
    for line_a, line_b in zip(a, b):
        if line_a == line_b:
            continue
        if line_a.startswith("wiring"):
            return "the same layers, wired differently (the config's inbound nodes differ)", True
        if line_a.startswith("config"):
            return ("the same layers and wiring, configured differently (a constant or option "
                    "computed when the model is built)"), False
        where, here = line_a.split(" ", 1)
        return f"at layer {where}: {here} here, {line_b.split(' ', 1)[1]} there", True
    return None if len(a) == len(b) else (f"{len(a)} layout lines here, {len(b)} there", True)


def open_loader(isolation: Isolation, factory: Any, saver: Structure) -> tuple[Loader, Structure]:
    """A loading side with the factory's model built, and its structure.

    With processes, a build whose layout differs from the saving model's is
    preferred: that is the process where the build shows its dependence.
    """
    if isolation is Isolation.INLINE:
        inline = InlineLoader()
        return inline, inline.call("build", factory)
    loaders = process_loaders()
    for loader in loaders:  # side by side: each builds in its own process
        loader.send("build", factory)
    built = []
    for loader in loaders:
        try:
            built.append((loader, loader.receive("build")))
        except Exception:
            for other in loaders[len(built) + 1:]:
                _drain(other)
            raise
    chosen = next((b for b in built if b[1].layout != saver.layout), built[0])
    for loader, structure in built:
        if loader is not chosen[0]:
            loader.call("release", structure.handle)
    return chosen


def _drain(loader: Any) -> None:
    """Read the answer of a request whose result is not wanted (another one failed first)."""
    try:
        loader.receive("build")
    except Exception:
        pass


def _pairing(saved: list[Any], structure: Structure, migration: bool, label: str) -> tuple[Matching, dict[str, str]]:
    """How the saving model's variables pair with the loading model's: saving key -> loading key."""
    loaded = structure.variables
    if migration:
        _same_shapes(f"{label} do not build the same architecture", saved, loaded)
        return Matching.POSITION, {e.key: v.key for e, v in zip(saved, loaded)}
    problem = f"model factory {label} built another model in the loading process"
    names = {e.display: e.key for e in saved}
    their_names = {v.display: v for v in loaded}
    if len(names) == len(saved) and len(their_names) == len(loaded) and set(names) == set(their_names):
        _same_shapes(problem, saved, [their_names[e.display] for e in saved], by_key=False)
        return Matching.NAME, {names[d]: their_names[d].key for d in names}
    _same_shapes(problem, saved, loaded, by_key=True)
    return Matching.TREE, {e.key: e.key for e in saved}


def _same_shapes(problem: str, a: list[Any], b: list[Any], by_key: bool = False) -> None:
    """Same variables in the same order: by key and shape (one factory), or by shape alone
    (two factories, whose layer trees may differ in weightless layers).  Counts are
    compared, never zipped."""
    def sig(e: Any) -> tuple[Any, ...]:
        return (e.key, tuple(e.shape), e.dtype) if by_key else (tuple(e.shape), e.dtype)

    if [sig(e) for e in a] == [sig(e) for e in b]:
        return
    diffs = [f"#{i}: {x.display} {x.shape} {x.dtype} vs {y.display} {y.shape} {y.dtype}"
             for i, (x, y) in enumerate(zip(a, b)) if sig(x) != sig(y)]
    if len(a) != len(b):
        diffs.insert(0, f"{len(a)} variables vs {len(b)}")
    raise FactoryError(f"{problem}; first differences: {'; '.join(diffs[:5])}")


class ModelPair:
    """The saving model, built here, and the loading model, built where the load happens.

    Both come from one factory, or, for a migration check, the saving model
    from ``factory`` and the loading one from ``load_factory`` (say a
    tf-keras model and its Keras 3 port), matched by architecture position.
    """

    def __init__(self, factory: Callable[[], Any] | str, *, load_factory: Callable[[], Any] | str | None = None,
                 isolation: Isolation = Isolation.PROCESS) -> None:
        save, self.name = as_callable(factory)
        target = load_factory if load_factory is not None else factory
        load, self.load_name = as_callable(target) if load_factory is not None else (save, self.name)
        if isolation is Isolation.PROCESS:
            process_loaders(start=True)  # they import the frameworks while the saving model is built
        self.saver = LayerTree(build(save, self.name))
        self.saved = self.saver.variables()
        self.save_structure = structure_of(self.saver)
        ref = factory_ref(target if isinstance(target, str) else load)
        self.isolation_note = None
        if ref is None and isolation is Isolation.PROCESS:
            isolation = Isolation.INLINE
            self.isolation_note = (f"loaded in the saving process: {self.load_name} cannot be imported "
                                   "by a fresh process (a local function or a lambda); define it at "
                                   "module level for the real check")
        self.isolation = isolation
        self.isolation_note = self.isolation_note or isolation.weaker_note
        self.loader, self.structure = open_loader(isolation, ref if ref is not None else load, self.save_structure)
        self.handle = self.structure.handle
        self.matching, self.to_loader = _pairing(self.saved, self.structure, self.is_migration, self.label)
        self.from_loader = {v: k for k, v in self.to_loader.items()}
        layout = None if self.is_migration else _first_layout_difference(self.save_structure.layout,
                                                                          self.structure.layout)
        self.facts = Facts(custom_saving=sorted(set(self.save_structure.custom_saving)
                                                | set(self.structure.custom_saving)),
                           layout_difference=layout[0] if layout else None,
                           layout_moved=bool(layout and layout[1]))
        if isolation is Isolation.INLINE:
            _refuse_shared_layers(self)
        self.expected: ExpectedValues | None = None
        self.expected_digests: dict[str, str] = {}
        self.before: dict[str, str] = {}
        self.filled_outputs: dict[str, np.ndarray] | None = None
        self.filled_inputs: dict[str, np.ndarray] | None = None
        # A compiled model carries its optimizer's state into the checkpoint.
        self.optimizers = (OptimizerCheck(self.saver)
                           if not self.is_migration and is_compiled(self.saver.model) else None)
        if self.optimizers is not None:
            fresh_optimizer(self.saver.model)  # a copy that cannot be made is the factory's error, up front

    def close(self) -> None:
        """Let the loading side drop its model."""
        self.loader.call("release", self.handle)

    def __enter__(self) -> ModelPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_migration(self) -> bool:
        return self.load_name != self.name

    @property
    def label(self) -> str:
        return f"{self.name} -> {self.load_name}" if self.is_migration else self.name

    @property
    def save_framework(self) -> str:
        return self.save_structure.framework

    @property
    def load_framework(self) -> str:
        return self.structure.framework

    @property
    def framework(self) -> str:
        if self.save_framework == self.load_framework:
            return self.save_framework
        return f"{self.save_framework} -> {self.load_framework}"

    def backend(self) -> str:
        return backend_of(self.save_framework)

    @property
    def load_outline(self) -> Any:
        """The tree load masks are drawn on: the loading model's for a migration, else the
        saving model's (the loading side maps each layer by name or position)."""
        return self.structure if self.is_migration else self.saver

    def translate(self, mask: FreezeMask) -> FreezeMask:
        """A save-side mask as it applies to the loading model."""
        return translate(mask, self.save_structure, self.structure) if self.is_migration else mask

    def loader_paths(self, mask: FreezeMask) -> list[tuple[int, ...]]:
        """A load mask as index paths of the loading model."""
        if self.is_migration or self.matching is not Matching.NAME:
            return sorted(mask.frozen)
        theirs = {n.display: n.index_path for n in self.structure.nodes}
        return sorted(theirs.get(self.saver.node(p).display, p) for p in mask.frozen)

    def fill(self) -> None:
        """Give every saving variable a distinct value like its initializer's (statistics
        ``adapt()`` computed keep theirs: training never changes them), refresh the caches
        computed from them, and hand the loading side its pre-load values."""
        rng = np.random.default_rng(VALUES_SEED)
        adapted = adapted_state(self.saver)
        trained = [e for e in self.saved if id(e.variable) not in adapted]
        specs = ((e.shape, numpy_dtype(e.variable), read(e.variable)) for e in trained)
        for entry, value in zip(trained, iter_distinct_values(specs, rng)):
            entry.variable.assign(value)
        preloads = {}
        for entry in self.saved:
            held = read(entry.variable)  # as stored: a backend may narrow the dtype
            self.expected_digests[entry.key] = fingerprint(held)
            preloads[self.to_loader[entry.key]] = preload_values(held)
        with framework_chatter():
            refresh_caches(self.saver)
        self.expected = ExpectedValues((e.key, e.display, self.expected_digests[e.key]) for e in self.saved)
        offsets: dict[str, float] = {}
        unowned: list[np.ndarray] = []
        if self.optimizers is not None:
            # The first example saves with nothing frozen: its optimizer, built now, tells
            # the loading side what the optimizer's own variables (iterations...) hold.
            with framework_chatter(), masked(self.saver, FreezeMask.nothing()):
                self.optimizers.prepare_save()
            offsets, unowned = dict(self.optimizers.offsets), self.optimizers.unowned_preloads()
        before = self.loader.call("set_preloads", self.handle, preloads, offsets, unowned)
        self.before = {self.from_loader[k]: d for k, d in before.items() if k in self.from_loader}
        if self.isolation is Isolation.INLINE:
            _refuse_shared_storage(self)

    def kind_offsets_changed(self) -> None:
        """The saving optimizer met a new kind of slot: the loading side's pre-loads follow."""
        assert self.optimizers is not None
        self.loader.call("set_offsets", self.handle, dict(self.optimizers.offsets))

    def compare(self, report: LoadReport) -> list[VariableOutcome]:
        """The variables that did not survive the last load, classified: the model's, then the optimizer's."""
        assert self.expected is not None
        to_loader, before = self.to_loader, self.before
        if report.new_structure is not None:
            # A new model (keras.saving.load_model): paired again; it held no pre-load value.
            try:
                _, to_loader = _pairing(self.saved, report.new_structure, self.is_migration, self.label)
            except FactoryError as exc:  # the format's load built it, not the factory
                raise ArchitectureMismatch(str(exc).replace(
                    f"model factory {self.label} built another model in the loading process",
                    "the load built a new model with other variables than the saved one")) from None
            before = {}
        outcomes = self._compare_model(report, to_loader, before)
        if self.optimizers is not None:
            outcomes += self.optimizers.compare(report.slots, {v: k for k, v in to_loader.items()},
                                                report.new_structure is not None)
        return outcomes

    def _compare_model(self, report: LoadReport, to_loader: dict[str, str],
                       before: dict[str, str]) -> list[VariableOutcome]:
        assert self.expected is not None
        outcomes = []
        for e in self.saved:
            got = report.digests.get(to_loader.get(e.key, ""))
            if got is None:
                raise ArchitectureMismatch(
                    f"the model loaded from the checkpoint has no variable {e.key} ({e.display}): "
                    "load_model rebuilt another architecture")
            if got != self.expected_digests[e.key]:
                outcomes.append(classify(key=e.key, display=e.display, shape=e.shape, dtype=e.dtype, got=got,
                                         preload=before.get(e.key), expected=self.expected))
        return outcomes

    def base_values(self, keys: set[str]) -> dict[str, np.ndarray]:
        """What a loading model gets from the base both sides start from (a preset): the
        saving model's values of ``keys``, by loading-side key."""
        return {self.to_loader[e.key]: read(e.variable) for e in self.saved if e.key in keys}

    @property
    def parameter_bytes(self) -> int:
        return sum(int(np.prod(e.shape)) * numpy_dtype(e.variable).itemsize for e in self.saved)


def _refuse_shared_layers(pair: ModelPair) -> None:
    """Inline only: layers or variables that are the same objects in both models (a cached backbone)."""
    loader_tree = pair.loader.side._model(pair.handle).tree  # type: ignore[attr-defined]
    if loader_tree.model is pair.saver.model:
        raise FactoryError(f"model factory {pair.label} returned the same model object twice; "
                           "it must build a new model on every call")
    loader_layers = {id(n.layer) for n in loader_tree.nodes}
    shared = [n for n in pair.saver.nodes if n.index_path and id(n.layer) in loader_layers]
    loader_storage = {id(compat.storage_identity(e.variable)) for e in loader_tree.variables()}
    variables = [e for e in pair.saved if id(compat.storage_identity(e.variable)) in loader_storage]
    if not shared and not variables:
        return
    if shared:
        top = [n for n in shared if n.index_path[:-1] not in {m.index_path for m in shared}]
        what = f"layer(s) {', '.join(repr(n.display) for n in top[:5])}"
    else:
        what = f"variable(s) {', '.join(repr(e.display) for e in variables[:5])}"
    raise FactoryError(
        f"model factory {pair.label} returned two models that share {what} "
        f"({len(variables)} shared variables): loading into one would overwrite the other, so no "
        "round trip can be checked in one process. Build a new backbone on every call instead of "
        "reusing a cached one (a module-level model or layer), or check in a fresh process "
        "(--ckpt-isolation=process).")


def _refuse_shared_storage(pair: ModelPair) -> None:
    """Inline only: writing the loading model's pre-load values must leave the saving model as it was."""
    moved = [e for e in pair.saved if fingerprint(read(e.variable)) != pair.expected_digests[e.key]]
    if moved:
        names = ", ".join(e.display for e in moved[:5])
        raise FactoryError(
            f"model factory {pair.label} built two models that share variable storage "
            f"({len(moved)} variables, e.g. {names}): writing to the loading model changed the "
            "saving one, so no round trip can be checked in one process. Build every layer and "
            "backbone anew on each call (no module-level cache).")


@dataclass
class Loaded:
    holder: Any  # the model holding the loaded state (a new one for load_model)
    error: tuple[str, str] | None
    warnings: list[str]


def load_into(tree: LayerTree, fmt: Format, path: Path, mask: FreezeMask, *,
              prepare: Callable[[], None] | None = None, as_found: bool = False) -> Loaded:
    """Load ``path`` into a model of this process (a golden check's) under ``mask``, after
    ``prepare()``, keeping the framework's warnings and the exception if it raised.
    ``as_found``: the model's flags are left exactly as they are (``mask`` only describes them)."""
    holder, error = tree.model, None
    with framework_chatter() as said, (nullcontext() if as_found else masked(tree, mask)):
        if prepare is not None:
            prepare()
        try:
            holder = fmt.load(tree.model, path)
        except Exception as exc:
            error = describe(exc)
    return Loaded(holder, error, said)


@dataclass
class RoundTrip:
    """One model pair and one format; ``run`` does one example.

    Saving does not change the saving model, so two examples with the same
    save mask would write the same file: the last file is kept and loaded
    again (the fixed pairs save with nothing frozen every other example).
    An example run twice in a row (the driver's replay) always saves afresh,
    so a save that is not deterministic is still told apart.  The first
    example also compares the outputs (and so does its replay).
    """

    pair: ModelPair
    format_name: str
    workdir: Path
    examples_run: int = field(default=0, init=False)
    _saved: tuple[FreezeMask, Path, Path] | None = field(default=None, init=False)
    _last: tuple[FreezeMask, FreezeMask] | None = field(default=None, init=False)
    # The example whose outputs are compared (the first), also when it runs again.
    _outputs_example: tuple[FreezeMask, FreezeMask] | None = field(default=None, init=False)
    # An adapters-only format: the variables training changes, which its file must hold, and
    # those the base (a preset) gives the loading model: the rest of the base's part.
    trained: set[str] = field(default_factory=set, init=False)
    owned: set[str] = field(default_factory=set, init=False)  # the variables of the base's part
    base_keys: set[str] | None = field(default=None, init=False)
    _trained_with_values: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        # Same name, each side's own framework: a migration saves with the
        # tf-keras "h5" and loads with the Keras 3 one.
        backend = self.pair.backend()
        self.save_format: Format = get_format(self.format_name, self.pair.save_framework, backend)
        self.load_format: Format = get_format(self.format_name, self.pair.load_framework, backend)
        unfit = self.save_format.unfit(self.pair.saver.model, f"the model of factory {self.pair.name}")
        if unfit is not None:
            raise FormatNotApplicable(unfit)
        if self.save_format.adapters_only:
            # An adapter file ships adapters and never holds an optimizer: none is compared, and
            # the saving model's is left to the training step below (built for what trains).
            self.pair.optimizers = None
            base = {id(v) for v in self.save_format.base_of(self.pair.saver.model).weights}
            self.owned = {e.key for e in self.pair.saved if id(e.variable) in base}
            self.trained = self._trained_keys()
            # Only the base: a head one process draws like another (seeded) is not taken as
            # rebuilt alike, since long-lived processes carry seeded RNG state from check to check.
            self.base_keys = self.owned - self.trained

    @property
    def as_found(self) -> bool:
        """Both models keep their factory's flags: for an adapters-only format they decide
        what trains, so what the file must hold (enable_lora sets them)."""
        return self.base_keys is not None

    def _trained_keys(self) -> set[str]:
        """What training changes; run again once every variable holds a distinct value (a
        cache that follows trainable weights shows only when they differ from it)."""
        pair, model = self.pair, self.pair.saver.model
        custom = own_training_code(model)
        if custom is not None and not is_compiled(model):
            raise FormatNotApplicable(
                f"format {self.format_name} holds only what fine-tuning changes; the model of factory "
                f"{pair.name} trains through its own code ({custom}), which may update more, and "
                "only fit can run it: compile the model in the factory")
        try:
            first = probe.probe_inputs(model, tokens=pair.structure.tokens)
            # Far-out inputs too: state some updates only on large values (a running maximum).
            probes = [first, probe.scaled(first, 100.0)]
            batches = None
            if custom is not None:
                from pytest_ckpt.checks.resume import synthetic_batches  # resume imports this module

                batches = synthetic_batches(model, 1)
            with framework_chatter():
                return trained_keys(pair.saver, probes, batches)
        except Exception as exc:
            step = f" and one fit step (it trains through {custom})" if custom else ""
            raise FactoryError(
                f"format {self.format_name} holds only what fine-tuning changes; to tell which "
                f"variables that is, the check calls the model of factory {pair.name} in training "
                f"mode on a probe input{step}, which raised {first_line(exc)}") from None

    def _refresh_trained(self) -> None:
        if self.base_keys is None or self._trained_with_values:
            return
        self._trained_with_values = True
        self.trained |= self._trained_keys()
        self.base_keys -= self.trained

    def run(self, save_mask: FreezeMask, load_mask: FreezeMask) -> RoundTripResult:
        self.examples_run += 1
        self._refresh_trained()
        new_model = self.load_format.loads_new_model
        result = RoundTripResult(
            factory=self.pair.label, format=self.format_name, framework=self.pair.framework,
            save_mask=save_mask, load_mask=FreezeMask.nothing() if new_model else load_mask,
            tree=self.pair.saver, variable_count=len(self.pair.saved), new_model=new_model,
            factory_flags=self.as_found, facts=Facts(**vars(self.pair.facts)))
        replay, self._last = self._last == (save_mask, load_mask), (save_mask, load_mask)
        if self._saved is None or self._saved[0] != save_mask or replay:
            self.forget_file()
            if not self._save(save_mask, result):
                return result
        assert self._saved is not None
        if self._outputs_example is None:
            self._outputs_example = (save_mask, load_mask)
        inputs = self._probe() if self._outputs_example == (save_mask, load_mask) else None
        frozen = None if self.as_found else self.pair.loader_paths(result.load_mask)
        base = self.pair.base_values(self.base_keys) if self.base_keys is not None else None
        report = self.pair.loader.call("load", self.pair.handle, LoadRequest(
            str(self._saved[1]), self.format_name, frozen, inputs=inputs, base=base))
        result.load_error, result.warnings = report.error, report.warnings
        result.facts.optimizer_unbuilt_at_load = (not report.optimizer_built_at_load and not new_model
                                                  and not self.load_format.builds_optimizer)
        if result.load_error is None or not new_model:
            try:
                result.outcomes = self.pair.compare(report)
            except ArchitectureMismatch as exc:
                result.load_error = describe(exc)
            if self.as_found:  # an adapter file ships adapters; it never holds an optimizer
                result.outcomes = [o for o in result.outcomes if o.kind is VariableKind.MODEL]
        if inputs is not None and result.ok:
            result.output_differences = self._output_differences(report)
        self._facts(result, report)
        return result

    def _facts(self, result: RoundTripResult, report: LoadReport) -> None:
        """What the causes are decided from, beyond the verdicts."""
        if result.ok:
            return
        not_loaded = [o.key for o in result.outcomes
                      if o.verdict is Verdict.NOT_LOADED and o.kind is VariableKind.MODEL]
        if self.as_found:
            result.facts.adapter_losses = self._adapter_losses(not_loaded)
        elif not_loaded and result.save_mask.frozen == result.load_mask.frozen and result.load_error is None:
            result.facts.untracked = untracked_layers(self.pair.saver, not_loaded)
        failed = [o.key for o in result.outcomes if o.kind is VariableKind.MODEL]
        if report.new_structure is not None and result.load_error is not None:
            # The rebuilt model lacks variables: adapters a config does not record are the usual ones.
            rebuilt = {v.key for v in report.new_structure.variables}
            failed = [e.key for e in self.pair.saved if e.key not in rebuilt]
        result.facts.lora = lora_layers(self.pair.saver, failed)
        result.facts.quantized = quantized_layers(self.pair.saver, failed)
        if report.new_structure is not None:
            saved_flags = {n.display: not frozen_by(result.save_mask, n.index_path) for n in self.pair.saver.nodes}
            result.facts.unrecorded_flags = [n.display for n in report.new_structure.nodes
                                             if n.display in saved_flags and n.trainable != saved_flags[n.display]
                                             and n.has_weights]
            if matching(self.format_name) is MatchesBy.GROUP:
                rebuilt = {v.path for v in report.new_structure.variables}
                result.facts.unmatched_paths = [p for e in self.pair.saver.variables()
                                                if (p := str(getattr(e.variable, "path", ""))) not in rebuilt]

    def _adapter_losses(self, not_loaded: list[str]) -> dict[AdapterLoss, list[str]]:
        """Why each variable an adapters-only file did not bring back was its to hold."""
        saver = self.pair.saver
        entries = {e.key: e for e in self.pair.saved}
        trainable = {id(v) for v in saver.model.trainable_weights}
        found: dict[AdapterLoss, list[str]] = {}
        for key in not_loaded:
            entry = entries[key]
            leaf = entry.display.rsplit("/", 1)[-1]
            if key not in self.owned:
                why = AdapterLoss.OUTSIDE_BASE
            elif leaf.startswith("lora_"):
                why = AdapterLoss.ADAPTER
            elif id(entry.variable) not in trainable:
                why = AdapterLoss.STATE
            elif leaf == "bias" and lora_layers(saver, [key]):
                why = AdapterLoss.BIAS
            else:
                why = AdapterLoss.TRAINED
            found.setdefault(why, []).append(entry.display)
        return found

    def _save(self, save_mask: FreezeMask, result: RoundTripResult) -> bool:
        directory = Path(tempfile.mkdtemp(prefix="ex", dir=self.workdir))
        path = self.save_format.path_in(directory)
        optimizers = self.pair.optimizers
        flags = nullcontext() if self.as_found else masked(self.pair.saver, save_mask)
        with framework_chatter(), flags:
            if optimizers is not None:
                kinds = len(optimizers.offsets)
                optimizers.prepare_save()
                if len(optimizers.offsets) != kinds:
                    self.pair.kind_offsets_changed()
            try:
                self.save_format.save(self.pair.saver.model, path)
            except Exception as exc:
                shutil.rmtree(directory, ignore_errors=True)
                result.save_error = describe(exc)
                if self.as_found:
                    result.facts.unsavable_adapters = unsavable_adapters(self.pair.saver.model)
                return False
        self._saved = (save_mask, path, directory)
        return True

    def _probe(self) -> dict[str, np.ndarray] | None:
        pair = self.pair
        if pair.filled_outputs is None:
            try:
                inputs = probe.probe_inputs(pair.saver.model, tokens=pair.structure.tokens)
                with framework_chatter():
                    pair.filled_outputs = probe.outputs(pair.saver.model, inputs)
            except Exception:
                return None  # the factory-state step says why, once
            pair.filled_inputs = probe.by_name(pair.saver.model, inputs)
        return pair.filled_inputs

    def _output_differences(self, report: LoadReport) -> list[probe.OutputDifference]:
        if report.outputs is None or self.pair.filled_outputs is None:
            return []
        rtol, atol = OUTPUT_TOLERANCE["migration" if self.pair.is_migration else "same"]
        return probe.differences(self.pair.filled_outputs, report.outputs, rtol=rtol, atol=atol)

    def forget_file(self) -> None:
        if self._saved is not None:
            shutil.rmtree(self._saved[2], ignore_errors=True)
            self._saved = None


@dataclass
class OutputsCheck:
    """Outputs of the saving model and of the loading model after a plain save and load."""

    differences: list[probe.OutputDifference] = field(default_factory=list)
    note: str | None = None  # why the outputs were not compared


def check_outputs(pair: ModelPair, format_name: str, workdir: Path,
                  base_keys: set[str] | None = None) -> OutputsCheck:
    """Save the factory's own state, load it into the loading model as its factory left it, compare outputs.

    This runs before any value is filled in: the loading model starts from
    its own factory state, so state that differs between two builds and that
    the format does not restore shows as a difference.  For an adapters-only
    format, ``base_keys`` come from the saving model, as from the base both
    start from.
    """
    saver = pair.saver.model
    try:
        inputs = probe.probe_inputs(saver, tokens=pair.structure.tokens)
        with framework_chatter():
            expected = probe.outputs(saver, inputs)
    except probe.ProbeUnavailable as exc:
        return OutputsCheck(note=f"outputs not compared: {exc}")
    except Exception as exc:
        return OutputsCheck(note="outputs not compared: calling the model on a probe input built "
                                 f"from its input specs raised {type(exc).__name__}: {str(exc)[:200]}")
    save_format = get_format(format_name, pair.save_framework, pair.backend())
    directory = Path(tempfile.mkdtemp(prefix="outputs", dir=workdir))
    try:
        path = save_format.path_in(directory)
        with framework_chatter():
            try:
                save_format.save(saver, path)
            except Exception as exc:
                return OutputsCheck(note="outputs not compared: saving the factory's own model raised "
                                         "{}: {}".format(*describe(exc))[:400])
        base = pair.base_values(base_keys) if base_keys is not None else None
        report = pair.loader.call("load", pair.handle, LoadRequest(str(path), format_name, None, preload=False,
                                                      inputs=probe.by_name(saver, inputs), base=base))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if report.error is not None or report.outputs is None:
        # Usually the round trips fail on it too; not always (their optimizers are built:
        # tf-keras cannot save a LossScaleOptimizer before it is), so say what it was.
        why = ("loading it raised {}: {}".format(*report.error) if report.error
               else f"the loaded model could not compute them ({report.outputs_error})")
        return OutputsCheck(note=f"outputs not compared: {why}"[:400])
    rtol, atol = OUTPUT_TOLERANCE["migration" if pair.is_migration else "same"]
    return OutputsCheck(probe.differences(expected, report.outputs, rtol=rtol, atol=atol))


def check_format(factory: Callable[[], Any] | str, format_name: str, *, examples: int, seed: int | None = None,
                 masks: str = INDEPENDENT, load_factory: Callable[[], Any] | str | None = None,
                 tmp_root: str | Path | None = None,
                 isolation: Isolation = Isolation.PROCESS) -> CheckOutcome:
    """The whole check of one factory (or migration pair) in one format; never raises on a failing round trip.

    Raises FactoryError for a factory that cannot be checked at all.
    """
    from pytest_ckpt.search import driver
    from pytest_ckpt.search.fixed_pairs import fixed_pairs, split
    from pytest_ckpt.search.strategies import mask_pairs

    policy = MaskPolicy(masks)
    with ModelPair(factory, load_factory=load_factory, isolation=isolation) as pair, workdir(tmp_root) as wd:
        engine = RoundTrip(pair, format_name, wd)  # raises if the format does not apply
        outputs = check_outputs(pair, format_name, wd, engine.base_keys)
        pair.fill()
        # An adapters-only format: one example, the flags the factory set.
        fixed = ([(current_mask(pair.saver),) * 2] if engine.as_found
                 else fixed_pairs(pair.saver, pair.load_outline, policy, translate=pair.translate))
        strategy = mask_pairs(pair.saver, pair.load_outline, policy=policy, translate=pair.translate)
        found = driver.search(lambda masks: engine.run(*masks),
                              fixed=[{"masks": p} for p in fixed], strategies={"masks": strategy},
                              examples=examples, seed=seed, generate=not engine.as_found,
                              smaller=lambda kw: [{"masks": p} for p in split(kw["masks"], pair.translate)])
    failure = found.failure
    excluded = unsaved(pair.saver)
    if engine.as_found and is_compiled(pair.saver.model):
        excluded.append(("the optimizer's state", f"format {format_name} ships adapters: it never holds the "
                         "optimizer's state, so it cannot resume training (a resume check refuses it)"))
    if failure is None and outputs.differences:
        failure = RoundTripResult(
            factory=pair.label, format=format_name, framework=pair.framework,
            save_mask=FreezeMask.nothing(), load_mask=FreezeMask.nothing(), tree=pair.saver,
            variable_count=len(pair.saved), output_differences=outputs.differences,
            facts=Facts(**vars(pair.facts)))
    return CheckOutcome(format_name, seed, found.examples_run, failure,
                        not_reproducible=found.not_reproducible and failure is found.failure,
                        outputs_note=outputs.note, excluded=excluded,
                        others=found.others if failure is found.failure else [],
                        isolation_note=pair.isolation_note)


def roundtrip(factory: Callable[[], Any] | str, format_name: str, save_mask: FreezeMask, load_mask: FreezeMask,
              *, tmp_root: Path | None = None, isolation: Isolation = Isolation.PROCESS) -> RoundTripResult:
    """One round trip, for scripts and notebooks: no Hypothesis involved."""
    with ModelPair(factory, isolation=isolation) as pair, workdir(tmp_root) as wd:
        engine = RoundTrip(pair, format_name, wd)
        pair.fill()
        if engine.as_found:  # the factory's flags decide what the file must hold
            save_mask = load_mask = current_mask(pair.saver)
        return engine.run(save_mask, load_mask)
