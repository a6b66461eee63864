"""The round-trip engine: save under one freeze mask, load under another, compare.

Plain Python: no pytest, no Hypothesis.  One check (a factory in a format)
builds its own pair of models, as two processes would: the saving model and
the loading model each come from a fresh call of the factory, with
auto-generated names as in a new process.  The check then

1. compares the two models' outputs after a plain save and load of the
   factory's own state (catches state outside the variables, such as cached
   statistics or vocabularies, that differs between two builds);
2. gives every variable of the saving model a distinct value, and verifies
   that resetting the loading model cannot touch the saving one (a factory
   that hands out a cached backbone shares variables between the two);
3. runs round trips under mask pairs (see :mod:`pytest_ckpt.driver`), each
   comparing every variable exactly.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pytest_ckpt import compat, probe
from pytest_ckpt.bulk import BulkOps, read
from pytest_ckpt.chatter import framework_chatter
from pytest_ckpt.comparison import ExpectedValues, VariableOutcome, classify, fingerprint
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.factories import as_callable, build
from pytest_ckpt.formats import Format, get_format
from pytest_ckpt.frameworks import backend_of, framework_of
from pytest_ckpt.masks import INDEPENDENT, FreezeMask, masked, translate
from pytest_ckpt.optimizer_state import OptimizerCheck, fresh_optimizer, is_compiled
from pytest_ckpt.result import CheckOutcome, RoundTripResult
from pytest_ckpt.tempfiles import workdir
from pytest_ckpt.tree import LayerTree
from pytest_ckpt.unsaved import unsaved
from pytest_ckpt.values import iter_distinct_values, numpy_dtype, preload_values

# TensorFlow's C++ start-up banner lands in every failure's captured stderr;
# the engine is imported before any factory module, so before TensorFlow.
# A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VALUES_SEED = 20260101
# Outputs of two models holding the same variables, computed by the same
# code: equal up to float reassociation; across frameworks (a migration)
# kernels differ a little more.
OUTPUT_TOLERANCE = {"same": (1e-5, 1e-6), "migration": (1e-4, 1e-5)}


class ArchitectureMismatch(Exception):
    """A model loaded with load_model does not have the saved model's variables."""


class ModelPair:
    """Two fresh models: one saves, one loads.

    Both come from one factory, or, for a migration check, the saving model
    from ``factory`` and the loading one from ``load_factory`` (say a
    tf-keras model and its Keras 3 port), matched by architecture position.
    """

    def __init__(self, factory: Callable | str, *, load_factory: Callable | str | None = None):
        save, self.name = as_callable(factory)
        load, self.load_name = as_callable(load_factory) if load_factory is not None else (save, self.name)
        saver = build(save, self.name)
        loader = build(load, self.load_name)
        if saver is loader:
            raise FactoryError(f"model factory {self.name} returned the same model object twice; "
                               "it must build a new model on every call")
        self.save_framework = framework_of(saver)
        self.load_framework = framework_of(loader)
        self.saver = LayerTree(saver)
        self.loader = LayerTree(loader)
        self.saved = self.saver.variables()
        self.loaded = self.loader.variables()
        if self.is_migration:
            _check_same_architecture(f"{self.name} and {self.load_name} do not build the same "
                                     "architecture", self.saved, self.loaded, keys=False)
        else:
            _check_same_architecture(f"model factory {self.name} built two different models "
                                     "on two calls", self.saved, self.loaded, keys=True)
        _refuse_shared_layers(self)
        self._dtypes = [numpy_dtype(e.variable) for e in self.saved]
        self._bulk: BulkOps | None = None
        self.expected: ExpectedValues | None = None
        # A compiled model carries its optimizer's state into the checkpoint.
        self.optimizers = (OptimizerCheck(self.saver, self.loader)
                           if not self.is_migration and is_compiled(saver) else None)
        if self.optimizers is not None:
            fresh_optimizer(saver)  # a copy that cannot be made is the factory's error, up front

    @property
    def is_migration(self) -> bool:
        return self.load_name != self.name

    @property
    def label(self) -> str:
        return f"{self.name} -> {self.load_name}" if self.is_migration else self.name

    @property
    def framework(self) -> str:
        if self.save_framework == self.load_framework:
            return self.save_framework
        return f"{self.save_framework} -> {self.load_framework}"

    def backend(self) -> str:
        return backend_of(self.save_framework)

    def translate(self, mask: FreezeMask) -> FreezeMask:
        """A save-side mask as it applies to the loading model."""
        return translate(mask, self.saver, self.loader) if self.is_migration else mask

    def fill(self) -> None:
        """Give every saving variable a distinct value, and prove the loader is separate.

        Right after a reset, no loading variable may equal its saving twin
        (the pre-load value differs from the saved one everywhere), and the
        saving model must still hold what it was given: otherwise the two
        models share storage, and every comparison would agree.
        """
        rng = np.random.default_rng(VALUES_SEED)
        prints = []
        for entry, value in zip(self.saved, iter_distinct_values(
                [(e.shape, d) for e, d in zip(self.saved, self._dtypes)], rng)):
            entry.variable.assign(value)
            prints.append(fingerprint(value))
        self.expected = ExpectedValues(
            (e.key, e.display, p) for e, p in zip(self.saved, prints))
        self._bulk = BulkOps([e.variable for e in self.saved], [e.variable for e in self.loaded],
                             self._dtypes)
        self._bulk.reset()
        agree = self._bulk.survived()
        moved = [e for e, p in zip(self.saved, prints) if fingerprint(read(e.variable)) != p]
        shared = [e for e, same in zip(self.saved, agree) if same and int(np.prod(e.shape))]
        if shared or moved:
            names = ", ".join(e.display for e in (shared or moved)[:5])
            raise FactoryError(
                f"model factory {self.label} built two models that share variable storage "
                f"({len(shared or moved)} variables, e.g. {names}): writing to the loading model "
                "changed the saving one, so no round trip can be checked. Build every layer and "
                "backbone anew on each call (no module-level cache).")

    def reset_loader(self) -> None:
        self._bulk.reset()

    def compare(self, holder) -> list[VariableOutcome]:
        """The variables that did not survive the last load, classified."""
        if holder is self.loader.model:
            failed = [i for i, ok in enumerate(self._bulk.survived()) if not ok]
            return [classify(key=self.saved[i].key, display=self.saved[i].display,
                             got=read(self.loaded[i].variable),
                             preload=preload_values(read(self.saved[i].variable)),
                             expected=self.expected) for i in failed]
        # A new model (keras.saving.load_model): matched by stable key; it
        # never held a pre-load value of ours.
        entries = {e.key: e for e in LayerTree(holder).variables()}
        outcomes = []
        for e in self.saved:
            got = entries.get(e.key)
            if got is None:
                raise ArchitectureMismatch(
                    f"the model loaded from the checkpoint has no variable {e.key} ({e.display}): "
                    "load_model rebuilt another architecture")
            value = read(got.variable)
            if fingerprint(value) != fingerprint(read(e.variable)):
                outcomes.append(classify(key=e.key, display=e.display, got=value, preload=None,
                                         expected=self.expected))
        return outcomes

    @property
    def parameter_bytes(self) -> int:
        return sum(int(np.prod(e.shape)) * d.itemsize for e, d in zip(self.saved, self._dtypes))


def _check_same_architecture(problem: str, a, b, *, keys: bool) -> None:
    """Same variables in the same order: by key and shape (one factory), or by
    shape alone (two factories, whose layer trees may differ in weightless
    layers).  Counts are compared, never zipped."""

    def sig(e):
        return (e.key, e.shape, e.dtype) if keys else (e.shape, e.dtype)

    if [sig(e) for e in a] == [sig(e) for e in b]:
        return
    diffs = [f"#{i}: {x.display} {x.shape} {x.dtype} vs {y.display} {y.shape} {y.dtype}"
             for i, (x, y) in enumerate(zip(a, b)) if sig(x) != sig(y)]
    if len(a) != len(b):
        diffs.insert(0, f"{len(a)} variables vs {len(b)}")
    raise FactoryError(f"{problem}; first differences: {'; '.join(diffs[:5])}")


def _refuse_shared_layers(pair: ModelPair) -> None:
    """Layers or variables that are the same objects in both models."""
    loader_layers = {id(n.layer) for n in pair.loader.nodes}
    shared = [n for n in pair.saver.nodes if n.index_path and id(n.layer) in loader_layers]
    loader_storage = {id(compat.storage_identity(e.variable)) for e in pair.loaded}
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
        "round trip can be checked. Build a new backbone on every call instead of reusing a "
        "cached one (a module-level model or layer).")


def describe(exc: BaseException) -> tuple[str, str]:
    message = str(exc).strip()
    if len(message) > 600:
        # Keras puts the class it could not find after the whole config: keep that line.
        unknown = re.search(r"Could not locate (?:class|function) '[^']+'[^\n]*", message[600:])
        message = message[:600] + " ..." + (f" {unknown.group(0)[:300]}" if unknown else "")
    return type(exc).__name__, message


@dataclass
class Loaded:
    holder: object  # the model holding the loaded state (a new one for load_model)
    error: tuple[str, str] | None
    warnings: list[str]


def load_into(tree: LayerTree, fmt: Format, path: Path, mask: FreezeMask, *, prepare=None,
              as_found: bool = False) -> Loaded:
    """The load half of every check (round trip, migration, golden): under ``mask``,
    after ``prepare()``, load ``path`` the way users do, keeping the
    framework's warnings and the exception if it raised.  ``as_found``: the
    model's flags are left exactly as they are (``mask`` only describes them);
    applying a mask resets per-variable flags (``kernel.trainable = False``)."""
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
    so a save that is not deterministic is still told apart.
    """

    pair: ModelPair
    format_name: str
    workdir: Path
    examples_run: int = field(default=0, init=False)
    _saved: tuple | None = field(default=None, init=False)  # (save mask, path, folder)
    _last: tuple | None = field(default=None, init=False)  # the previous (save, load) pair

    def __post_init__(self):
        # Same name, each side's own framework: a migration saves with the
        # tf-keras "h5" and loads with the Keras 3 one.
        backend = self.pair.backend()
        self.save_format: Format = get_format(self.format_name, self.pair.save_framework, backend)
        self.load_format: Format = get_format(self.format_name, self.pair.load_framework, backend)

    def run(self, save_mask: FreezeMask, load_mask: FreezeMask) -> RoundTripResult:
        self.examples_run += 1
        new_model = self.load_format.loads_new_model
        result = RoundTripResult(
            factory=self.pair.label, format=self.format_name, framework=self.pair.framework,
            save_mask=save_mask, load_mask=FreezeMask.nothing() if new_model else load_mask,
            tree=self.pair.saver, variable_count=len(self.pair.saved), new_model=new_model)
        replay, self._last = self._last == (save_mask, load_mask), (save_mask, load_mask)
        optimizers = self.pair.optimizers
        if self._saved is None or self._saved[0] != save_mask or replay:
            self.forget_file()
            directory = Path(tempfile.mkdtemp(prefix="ex", dir=self.workdir))
            path = self.save_format.path_in(directory)
            with framework_chatter(), masked(self.pair.saver, save_mask):
                if optimizers:
                    optimizers.prepare_save()
                try:
                    self.save_format.save(self.pair.saver.model, path)
                except Exception as exc:
                    shutil.rmtree(directory, ignore_errors=True)
                    result.save_error = describe(exc)
                    return result
            self._saved = (save_mask, path, directory)
        path = self._saved[1]
        self.pair.reset_loader()
        loaded = load_into(self.pair.loader, self.load_format, path, result.load_mask,
                           prepare=optimizers.prepare_load if optimizers and not new_model else None)
        holder, result.load_error, result.warnings = loaded.holder, loaded.error, loaded.warnings
        if result.load_error is None or not new_model:
            try:
                result.outcomes = self.pair.compare(holder)
                if optimizers:
                    result.outcomes += optimizers.compare(holder)
            except ArchitectureMismatch as exc:
                result.load_error = describe(exc)
        return result

    def forget_file(self) -> None:
        if self._saved is not None:
            shutil.rmtree(self._saved[2], ignore_errors=True)
            self._saved = None


@dataclass
class OutputsCheck:
    """Outputs of the saving model and of the loading model after a plain save and load."""

    differences: list[probe.OutputDifference] = field(default_factory=list)
    note: str | None = None  # why the outputs were not compared


def check_outputs(pair: ModelPair, format_name: str, workdir: Path) -> OutputsCheck:
    """Save the factory's own state, load it into the other fresh model, compare outputs.

    This runs before any value is filled in: the saving model's outputs are
    computed from exactly the state it saves (a value assigned later would
    leave caches such as adapted statistics behind), and the loading model
    starts from its own factory state, so state that differs between two
    builds and that the format does not restore shows as a difference.
    """
    saver, loader = pair.saver.model, pair.loader.model
    try:
        inputs = probe.probe_inputs(saver, loader)
        expected = probe.outputs(saver, inputs)
    except probe.ProbeUnavailable as exc:
        return OutputsCheck(note=f"outputs not compared: {exc}")
    except Exception as exc:
        return OutputsCheck(note="outputs not compared: calling the model on a probe input built "
                                 f"from its input specs raised {type(exc).__name__}: {str(exc)[:200]}")
    backend = pair.backend()
    save_format = get_format(format_name, pair.save_framework, backend)
    load_format = get_format(format_name, pair.load_framework, backend)
    directory = Path(tempfile.mkdtemp(prefix="outputs", dir=workdir))
    try:
        path = save_format.path_in(directory)
        with framework_chatter():
            try:
                save_format.save(saver, path)
                holder = load_format.load(loader, path)
            except Exception as exc:
                # Usually the round trips fail on it too; not always (their optimizers are built:
                # tf-keras cannot save a LossScaleOptimizer before it is), so say what it was.
                kind, message = describe(exc)
                return OutputsCheck(note="outputs not compared: saving and loading the factory's own "
                                         f"model raised {kind}: {message[:300]}")
            got = probe.outputs(holder, inputs)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    rtol, atol = OUTPUT_TOLERANCE["migration" if pair.is_migration else "same"]
    return OutputsCheck(probe.differences(expected, got, rtol=rtol, atol=atol))


def check_format(factory: Callable | str, format_name: str, *, examples: int, seed: int | None = None,
                 masks: str = INDEPENDENT, load_factory: Callable | str | None = None,
                 tmp_root: str | Path | None = None) -> CheckOutcome:
    """The whole check of one factory (or migration pair) in one format; never raises on a failing round trip.

    Raises FactoryError for a factory that cannot be checked at all.
    """
    from pytest_ckpt import driver
    from pytest_ckpt.fixed_pairs import fixed_pairs, split
    from pytest_ckpt.strategies import mask_pairs

    pair = ModelPair(factory, load_factory=load_factory)
    with workdir(tmp_root) as wd:
        engine = RoundTrip(pair, format_name, wd)  # raises if the format does not apply
        outputs = check_outputs(pair, format_name, wd)
        pair.fill()
        fixed = fixed_pairs(pair.saver, pair.loader, masks, translate=pair.translate)
        strategy = mask_pairs(pair.saver, pair.loader, policy=masks, translate=pair.translate)
        found = driver.search(lambda masks: engine.run(*masks),
                              fixed=[{"masks": p} for p in fixed], strategies={"masks": strategy},
                              examples=examples, seed=seed,
                              smaller=lambda kw: [{"masks": p} for p in split(kw["masks"], pair.translate)])
    failure = found.failure
    if failure is None and outputs.differences:
        failure = RoundTripResult(
            factory=pair.label, format=format_name, framework=pair.framework,
            save_mask=FreezeMask.nothing(), load_mask=FreezeMask.nothing(), tree=pair.saver,
            variable_count=len(pair.saved), output_differences=outputs.differences)
    return CheckOutcome(format_name, seed, found.examples_run, failure,
                        not_reproducible=found.not_reproducible and failure is found.failure,
                        outputs_note=outputs.note, excluded=unsaved(pair.saver))


def roundtrip(factory: Callable | str, format_name: str, save_mask: FreezeMask, load_mask: FreezeMask,
              *, tmp_root: Path | None = None) -> RoundTripResult:
    """One round trip, for scripts and notebooks: no Hypothesis involved."""
    pair = ModelPair(factory)
    with workdir(tmp_root) as wd:
        engine = RoundTrip(pair, format_name, wd)
        pair.fill()
        return engine.run(save_mask, load_mask)
