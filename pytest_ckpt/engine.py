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
from pytest_ckpt.errors import FactoryError, UnknownFormatError
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
    """Two models from one factory, prepared for honest round trips."""

    def __init__(self, factory: Callable, name: str | None = None):
        self.name = name or factory_name(factory)
        saver = build(factory, self.name)
        loader = build(factory, self.name)
        if saver is loader:
            raise FactoryError(
                f"model factory {self.name} returned the same model object twice; "
                "it must build a new model on every call"
            )
        self.framework = framework_of(saver)
        self.saver = LayerTree(saver)
        self.loader = LayerTree(loader)
        self.saved = self.saver.variables()
        self.loaded = self.loader.variables()
        _check_same_architecture(self.name, self.saved, self.loaded)
        self._dtypes = [values.numpy_dtype(e.variable) for e in self.loaded]
        self.sentinels = [values.sentinel(i, d) for i, d in enumerate(self._dtypes)]
        rng = np.random.default_rng(20260101)
        for entry, dtype in zip(self.saved, self._dtypes):
            entry.variable.assign(values.saved_values(entry.shape, dtype, rng))
        self._bulk = BulkOps(self.saved, self.loaded, self.sentinels, self._dtypes)

    def reset_loader(self) -> None:
        self._bulk.reset()

    def compare(self):
        """The variables that did not survive the last load, classified."""
        return classify(self.saved, self.loaded, self.sentinels, self._bulk.survived())

    @property
    def parameter_bytes(self) -> int:
        return sum(int(np.prod(e.shape)) * d.itemsize for e, d in zip(self.saved, self._dtypes))


def _check_same_architecture(name, a, b) -> None:
    if [(e.key, e.shape) for e in a] == [(e.key, e.shape) for e in b]:
        return
    diffs = []
    for x, y in zip(a, b):
        if (x.key, x.shape) != (y.key, y.shape):
            diffs.append(f"{x.key} {x.shape} vs {y.key} {y.shape}")
    if len(a) != len(b):
        diffs.append(f"{len(a)} variables vs {len(b)}")
    raise FactoryError(
        f"model factory {name} built two different models on two calls; "
        f"first differences: {'; '.join(diffs[:5])}"
    )


class PairCache:
    """The most recently used factories' model pairs (and their errors).

    Items are ordered factory by factory, so a small cache builds each
    factory once while keeping at most a few models alive.
    """

    def __init__(self, size: int = 2):
        self.size = size
        self._pairs: OrderedDict[object, ModelPair | FactoryError] = OrderedDict()

    def get(self, factory: Callable | str) -> ModelPair:
        """The pair for ``factory`` (a callable or a "module:callable" spec)."""
        key = factory
        hit = self._pairs.get(key)
        if hit is None:
            try:
                if isinstance(factory, str):
                    hit = ModelPair(resolve(factory), factory.strip())
                else:
                    hit = ModelPair(factory)
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


@dataclass
class RoundTrip:
    """One factory's model pair and one format; ``run`` does one example."""

    pair: ModelPair
    format: Format
    workdir: Path
    examples_run: int = field(default=0, init=False)

    def __post_init__(self):
        if self.pair.framework not in self.format.frameworks:
            raise UnknownFormatError(
                f"format {self.format.name!r} does not apply to {self.pair.framework} models"
            )

    def run(self, save_mask: FreezeMask, load_mask: FreezeMask) -> RoundTripResult:
        self.examples_run += 1
        directory = Path(tempfile.mkdtemp(prefix="ex", dir=self.workdir))
        path = self.format.path_in(directory)
        result = RoundTripResult(
            factory=self.pair.name,
            format=self.format.name,
            framework=self.pair.framework,
            save_mask=save_mask,
            load_mask=load_mask,
            tree=self.pair.saver,
            variable_count=len(self.pair.saved),
        )
        try:
            with _quiet(), masked(self.pair.saver, save_mask):
                try:
                    self.format.save(self.pair.saver.model, path)
                except Exception as exc:
                    result.save_error = _describe(exc)
                    return result
            self.pair.reset_loader()
            with _quiet(), masked(self.pair.loader, load_mask):
                try:
                    self.format.load(self.pair.loader.model, path)
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
        return RoundTrip(pair, get_format(format_name), Path(tmp)).run(save_mask, load_mask)
