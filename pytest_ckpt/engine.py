"""The round-trip engine: save under one freeze mask, load under another, compare.

Plain Python: no pytest, no Hypothesis.  Building a Keras model costs far
more than one save and load, so a factory's two models (one saves, one
loads) are built once and reused for every example and every format; only
flags and the loader's values are reset between examples.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pytest_ckpt import values
from pytest_ckpt.bulk import BulkOps
from pytest_ckpt.comparison import classify
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.factories import build, factory_name, framework_of, resolve
from pytest_ckpt.formats import Format, get_format
from pytest_ckpt.masks import FreezeMask, masked
from pytest_ckpt.result import RoundTripResult
from pytest_ckpt.tree import LayerTree


# TensorFlow's C++ start-up banner lands in every failure's captured stderr;
# the engine is imported before any factory module, so before TensorFlow.
# A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class ModelPair:
    """Two models prepared for honest round trips: one saves, one loads.

    Both come from one factory, or, for a migration check, the saving model
    from ``factory`` and the loading one from ``load_factory`` (say a
    tf-keras model and its Keras 3 port), matched by architecture position.
    """

    def __init__(self, factory: Callable, name: str | None = None, *,
                 load_factory: Callable | None = None, load_name: str | None = None):
        self.name = name or factory_name(factory)
        self.load_name = (load_name or factory_name(load_factory)) if load_factory else self.name
        saver = build(factory, self.name)
        loader = build(load_factory or factory, self.load_name)
        if saver is loader:
            raise FactoryError(
                f"model factory {self.name} returned the same model object twice; "
                "it must build a new model on every call"
            )
        self.save_framework = framework_of(saver)
        self.load_framework = framework_of(loader)
        self.saver = LayerTree(saver)
        self.loader = LayerTree(loader)
        self.saved = self.saver.variables()
        self.loaded = self.loader.variables()
        if load_factory is None:
            _check_same_architecture(f"model factory {self.name} built two different models "
                                     "on two calls", self.saved, self.loaded, keys=True)
        else:
            _check_same_architecture(f"{self.name} and {self.load_name} do not build the same "
                                     "architecture", self.saved, self.loaded, keys=False)
        self._dtypes = [values.numpy_dtype(e.variable) for e in self.loaded]
        self.sentinels = [values.sentinel(i, d) for i, d in enumerate(self._dtypes)]
        rng = np.random.default_rng(20260101)
        for entry, dtype in zip(self.saved, self._dtypes):
            entry.variable.assign(values.saved_values(entry.shape, dtype, rng))
        self._bulk = BulkOps(self.saved, self.loaded, self.sentinels, self._dtypes)

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

    def reset_loader(self) -> None:
        self._bulk.reset()

    def compare(self):
        """The variables that did not survive the last load, classified."""
        return classify(self.saved, self.loaded, self.sentinels, self._bulk.survived())

    @property
    def parameter_bytes(self) -> int:
        return sum(int(np.prod(e.shape)) * d.itemsize for e, d in zip(self.saved, self._dtypes))


def _check_same_architecture(problem: str, a, b, *, keys: bool) -> None:
    """Same variables in the same order: by key and shape (one factory), or by
    shape alone (two factories, whose layer trees may differ in weightless
    layers).  Counts are compared, never zipped."""

    def sig(e):
        return (e.key, e.shape) if keys else (e.shape, e.dtype)

    if [sig(e) for e in a] == [sig(e) for e in b]:
        return
    diffs = [f"#{i}: {x.display} {x.shape} {x.dtype} vs {y.display} {y.shape} {y.dtype}"
             for i, (x, y) in enumerate(zip(a, b)) if sig(x) != sig(y)]
    if len(a) != len(b):
        diffs.insert(0, f"{len(a)} variables vs {len(b)}")
    raise FactoryError(f"{problem}; first differences: {'; '.join(diffs[:5])}")


class PairCache:
    """The most recently used factories' model pairs (and their errors).

    Items are ordered factory by factory, so a small cache builds each
    factory once while keeping at most a few models alive.
    """

    def __init__(self, size: int = 2):
        self.size = size
        self._pairs: OrderedDict[object, ModelPair | FactoryError] = OrderedDict()

    def get(self, factory: Callable | str, load_factory: Callable | str | None = None) -> ModelPair:
        """The pair for ``factory`` (a callable or a "module:callable" spec),
        or the migration pair ``factory`` -> ``load_factory``."""
        key = (factory, load_factory)
        hit = self._pairs.get(key)
        if hit is None:
            try:
                save, save_name = _callable(factory)
                if load_factory is None:
                    hit = ModelPair(save, save_name)
                else:
                    load, load_name = _callable(load_factory)
                    hit = ModelPair(save, save_name, load_factory=load, load_name=load_name)
            except FactoryError as exc:
                hit = exc
            self._pairs[key] = hit
            while len(self._pairs) > self.size:
                self._pairs.popitem(last=False)
        self._pairs.move_to_end(key)
        if isinstance(hit, FactoryError):
            raise hit
        return hit

    def clear(self) -> None:
        self._pairs.clear()


def _callable(factory):
    if isinstance(factory, str):
        return resolve(factory), factory.strip()
    return factory, factory_name(factory)


@dataclass
class RoundTrip:
    """One factory's model pair and one format; ``run`` does one example."""

    pair: ModelPair
    format_name: str
    workdir: Path
    examples_run: int = field(default=0, init=False)

    def __post_init__(self):
        # Same name, each side's own framework: a migration saves with the
        # tf-keras "h5" and loads with the Keras 3 one.
        self.save_format: Format = get_format(self.format_name, self.pair.save_framework)
        self.load_format: Format = get_format(self.format_name, self.pair.load_framework)

    def run(self, save_mask: FreezeMask, load_mask: FreezeMask) -> RoundTripResult:
        self.examples_run += 1
        directory = Path(tempfile.mkdtemp(prefix="ex", dir=self.workdir))
        path = self.save_format.path_in(directory)
        result = RoundTripResult(
            factory=self.pair.label,
            format=self.format_name,
            framework=self.pair.framework,
            save_mask=save_mask,
            load_mask=load_mask,
            tree=self.pair.saver,
            variable_count=len(self.pair.saved),
        )
        try:
            with _quiet(), masked(self.pair.saver, save_mask):
                try:
                    self.save_format.save(self.pair.saver.model, path)
                except Exception as exc:
                    result.save_error = _describe(exc)
                    return result
            self.pair.reset_loader()
            with _quiet(), masked(self.pair.loader, load_mask):
                try:
                    self.load_format.load(self.pair.loader.model, path)
                except Exception as exc:
                    result.load_error = _describe(exc)
            result.outcomes = self.pair.compare()
            return result
        finally:
            shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _quiet():
    """Silence Keras's per-save chatter (the legacy-HDF5 notice, NumPy 2
    deprecations inside Keras): thousands of copies would bury the report."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        absl.setLevel(level)


def _describe(exc: BaseException) -> tuple[str, str]:
    message = str(exc).strip()
    if len(message) > 600:
        message = message[:600] + " ..."
    return type(exc).__name__, message


def roundtrip(factory: Callable, format_name: str, save_mask: FreezeMask, load_mask: FreezeMask,
              *, cache: PairCache | None = None, workdir: Path | None = None) -> RoundTripResult:
    """One round trip, for scripts and notebooks: no Hypothesis involved."""
    pair = (cache or PairCache(1)).get(factory)
    with tempfile.TemporaryDirectory(prefix="pytest-ckpt-", dir=workdir) as tmp:
        return RoundTrip(pair, format_name, Path(tmp)).run(save_mask, load_mask)
