"""Checkpoint formats: one small object per way of saving and loading.

Each format saves through the framework's public API to a real file and
loads it back the way users do.  Formats that mean the same thing in Keras 3
and tf-keras share a name ("h5"), one object per framework.  Adding a format
means adding one class here and one line to ``_ALL``; nothing else in the
project lists formats.
"""

from __future__ import annotations

import math
from pathlib import Path

from pytest_ckpt.errors import UnknownFormatError

KERAS3 = "keras3"
TF_KERAS = "tf-keras"


class Format:
    """Save a model's weights to ``path`` and load them into another model."""

    name: str = ""
    suffix: str = ""
    frameworks: frozenset[str] = frozenset({KERAS3})
    description: str = ""
    # How the loader pairs stored values with variables: "path" (object
    # path, order-independent), "position" (legacy HDF5) or "name".
    matches_by: str = "path"

    def path_in(self, directory: Path) -> Path:
        return Path(directory) / f"ckpt{self.suffix}"

    def save(self, model, path: Path) -> None:
        raise NotImplementedError

    def load(self, model, path: Path) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<format {self.name}>"


class KerasWeights(Format):
    name = "keras-weights"
    suffix = ".weights.h5"
    description = "Keras 3 save_weights('x.weights.h5') / load_weights"

    def save(self, model, path):
        model.save_weights(str(path))

    def load(self, model, path):
        model.load_weights(str(path))


class KerasSharded(KerasWeights):
    name = "keras-sharded"
    suffix = ".weights.json"
    description = "Keras 3 save_weights('x.weights.json', max_shard_size=...) in several shards"
    shards = 3

    def save(self, model, path):
        sizes = [math.prod(w.shape) * _itemsize(w) for w in model.weights]
        # A shard must hold the largest variable; beyond that, aim for several.
        shard_bytes = max(max(sizes), sum(sizes) / self.shards)
        model.save_weights(str(path), max_shard_size=shard_bytes / 1024**3)


class KerasArchive(Format):
    name = "keras"
    suffix = ".keras"
    description = "Keras 3 model.save('x.keras') / load_weights('x.keras')"

    def save(self, model, path):
        model.save(str(path))

    def load(self, model, path):
        model.load_weights(str(path))


class LegacyH5(Format):
    name = "h5"
    suffix = ".h5"
    description = "legacy HDF5: model.save('x.h5') / load_weights('x.h5'), matched by position"
    matches_by = "position"

    def save(self, model, path):
        model.save(str(path))

    def load(self, model, path):
        model.load_weights(str(path))


class LegacyH5ByName(LegacyH5):
    name = "h5-by-name"
    description = "legacy HDF5 loaded with load_weights(..., by_name=True)"
    matches_by = "name"

    def load(self, model, path):
        model.load_weights(str(path), by_name=True)


class TfCheckpoint(Format):
    name = "tf-checkpoint"
    suffix = ""  # a prefix: TF writes prefix.index and prefix.data-*
    description = "tf.train.Checkpoint(model=...).write / read, every saved value must be consumed"

    def save(self, model, path):
        import tensorflow as tf

        tf.train.Checkpoint(model=model).write(str(path))

    def load(self, model, path):
        import tensorflow as tf

        tf.train.Checkpoint(model=model).read(str(path)).assert_consumed()


class TfKerasH5(LegacyH5):
    frameworks = frozenset({TF_KERAS})
    description = "tf-keras save_weights('x.h5') / load_weights('x.h5'), matched by position"

    def save(self, model, path):
        model.save_weights(str(path))


class TfKerasH5ByName(TfKerasH5):
    name = LegacyH5ByName.name
    description = "tf-keras legacy HDF5 loaded with load_weights(..., by_name=True)"
    matches_by = LegacyH5ByName.matches_by
    load = LegacyH5ByName.load


class TfKerasCheckpoint(Format):
    name = "tf-checkpoint"
    suffix = ""
    frameworks = frozenset({TF_KERAS})
    description = "tf-keras save_weights('x') in TF checkpoint format, matched by object graph"

    def save(self, model, path):
        model.save_weights(str(path), save_format="tf")

    def load(self, model, path):
        model.load_weights(str(path)).assert_consumed()


def _itemsize(variable) -> int:
    from pytest_ckpt.values import numpy_dtype

    return numpy_dtype(variable).itemsize


_ALL: tuple[Format, ...] = (
    KerasWeights(),
    KerasSharded(),
    KerasArchive(),
    LegacyH5(),
    LegacyH5ByName(),
    TfCheckpoint(),
    TfKerasH5(),
    TfKerasH5ByName(),
    TfKerasCheckpoint(),
)
FRAMEWORKS = (KERAS3, TF_KERAS)
# Formats both frameworks read: a tf-keras file loads into a Keras 3 model.
MIGRATION_FORMATS = ("h5", "h5-by-name")


def format_names(framework: str | None = None) -> list[str]:
    """Format names in a stable order, for one framework or for any."""
    names: list[str] = []
    for f in _ALL:
        if (framework is None or framework in f.frameworks) and f.name not in names:
            names.append(f.name)
    return names


def get_format(name: str, framework: str = KERAS3) -> Format:
    for f in _ALL:
        if f.name == name and framework in f.frameworks:
            return f
    if name in format_names():
        raise UnknownFormatError(
            f"format {name!r} does not apply to {framework} models; formats for {framework}: "
            f"{', '.join(format_names(framework))}"
        )
    raise UnknownFormatError(
        f"unknown checkpoint format {name!r}; valid formats: {', '.join(format_names())}"
    )


def matching(name: str) -> str:
    """How format ``name`` pairs stored values with variables (same in every framework)."""
    return next((f.matches_by for f in _ALL if f.name == name), "path")


def parse_format_list(text) -> list[str]:
    """'a, b' or ['a', 'b'] -> ['a', 'b'] (order kept, duplicates dropped)."""
    if isinstance(text, str):
        parts = text.replace("\n", ",").split(",")
    else:
        parts = [p for item in text for p in str(item).replace("\n", ",").split(",")]
    names = []
    for p in (p.strip() for p in parts):
        if p and p not in names:
            names.append(p)
    return names
