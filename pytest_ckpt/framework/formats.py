"""Checkpoint formats: one small object per way of saving and loading.

Each format saves through the framework's public API to a real file and
loads it back the way users do.  Formats that mean the same thing in Keras 3
and tf-keras share a name ("h5"), one object per framework.  Adding a format
means adding one class here and one line to ``_ALL``; :func:`applicable` is
the one place that decides which formats a model gets.

Users add their own checkpoint code as ``module:attr`` in ``ckpt_formats``:
an object (or a class, made without arguments) with ``save(model, directory)``
and ``load(model, directory)``.  It is imported only when a check runs, and
is then one more :class:`Format`, checked like the built-in ones.
"""

from __future__ import annotations

import enum
import importlib.util
import math
from pathlib import Path
from typing import Any

from pytest_ckpt.errors import UnknownFormatError, UserFormatError
from pytest_ckpt.framework.detection import KERAS3, TENSORFLOW, TF_KERAS


class MatchesBy(enum.StrEnum):
    """How a format's loader pairs stored values with variables."""

    PATH = "path"  # object path, order-independent
    POSITION = "position"  # legacy HDF5: trainable_weights + non_trainable_weights, in order
    NAME = "name"  # top-level layer name, then position inside
    GRAPH = "graph"  # TensorFlow's object graph
    # Model.set_state_tree: by path inside the trainable / non-trainable / optimizer
    # group the variable was saved in; what matches nothing is ignored, silently.
    GROUP = "group"
    # keras-hub's LoRA files: an adapted layer's index among the layers that hold weights.
    LAYER_INDEX = "layer-index"


class FormatNotApplicable(UnknownFormatError):
    """A known format that this framework or backend cannot use; says which can."""


class Format:
    """Save a model to ``path`` and load it back into a model."""

    name: str = ""
    suffix: str = ""
    frameworks: frozenset[str] = frozenset({KERAS3})
    # None: any backend.  tf.train.Checkpoint exists only with TensorFlow.
    backends: frozenset[str] | None = None
    matches_by: MatchesBy = MatchesBy.PATH
    # load_model-style formats return a new model; the load mask cannot apply.
    loads_new_model: bool = False
    # Values for objects created after the load (an optimizer built at the first training
    # step) are restored when they are created, not skipped (TensorFlow checkpoints).
    restores_on_creation: bool = False
    # Saves the model's whole state tree, optimizer included: a model that was never
    # compiled has no optimizer and cannot be saved this way.
    needs_compiled: bool = False
    # The checkpoint is a folder of files (path_in names the folder), not one file.
    writes_folder: bool = False
    # Restores where training stands (the epoch fit goes on from), not only its state.
    restores_epoch: bool = False
    # Its load builds the model's optimizer before reading the file (BackupAndRestore does).
    builds_optimizer: bool = False
    # Made to ship a model, not to resume training: its loader compiles a fresh optimizer
    # and does not build it, so whatever optimizer state the file holds is skipped.
    ships_model: bool = False
    # The file holds only what training changes (LoRA adapters): everything else reaches the
    # loading model from the base both sides start from (a preset). Checked under the
    # factory's own flags, since they decide what trains and so what the file must hold.
    adapters_only: bool = False
    # A module the format needs beyond Keras, and how to install it.
    requires: tuple[str, str] | None = None

    def path_in(self, directory: Path) -> Path:
        return Path(directory) / f"ckpt{self.suffix}"

    def save(self, model: Any, path: Path) -> None:
        raise NotImplementedError

    def load(self, model: Any, path: Path) -> Any:
        """Load ``path`` into ``model``; returns the model now holding the loaded state."""
        raise NotImplementedError

    def resume_epoch(self, model: Any) -> int | None:
        """After a load: the epoch ``fit`` goes on from (formats that restore it), else None."""
        return None

    def base_of(self, model: Any) -> Any:
        """Adapters-only formats: the part of ``model`` its base (a preset) gives a loading model."""
        return model

    def unfit(self, model: Any, subject: str) -> str | None:
        """Why ``model`` (``subject`` names it: "the model of factory x") cannot be saved this way."""
        if self.needs_compiled and getattr(model, "optimizer", None) is None:
            return (f"format {self.name} saves the model's whole state tree, optimizer included "
                    f"(Keras writes it during fit); {subject} is not compiled: compile it to test "
                    "this format")
        return None

    def __repr__(self) -> str:
        return f"<format {self.name}>"


class KerasWeights(Format):
    name = "keras-weights"
    suffix = ".weights.h5"

    def save(self, model: Any, path: Any) -> None:
        model.save_weights(str(path))

    def load(self, model: Any, path: Any) -> Any:
        model.load_weights(str(path))
        return model


class KerasSharded(KerasWeights):
    name = "keras-sharded"
    suffix = ".weights.json"
    shards = 3

    def save(self, model: Any, path: Any) -> None:
        from pytest_ckpt.framework.values import numpy_dtype

        sizes = [math.prod(w.shape) * numpy_dtype(w).itemsize for w in model.weights]
        # A shard must hold the largest variable; beyond that, aim for several.
        shard_bytes = max(max(sizes, default=1), sum(sizes) / self.shards)
        model.save_weights(str(path), max_shard_size=shard_bytes / 1024**3)


class KerasArchive(KerasWeights):
    name = "keras"
    suffix = ".keras"

    def save(self, model: Any, path: Any) -> None:
        model.save(str(path))


class KerasModel(KerasArchive):
    """``model.save("x.keras")`` then ``keras.saving.load_model``: a new model,
    with the trainable flags and the optimizer from the file."""

    name = "keras-model"
    loads_new_model = True

    def load(self, model: Any, path: Any) -> Any:
        import keras

        return keras.saving.load_model(str(path), safe_mode=True)


class LegacyH5(Format):
    name = "h5"
    suffix = ".h5"
    matches_by = MatchesBy.POSITION

    def save(self, model: Any, path: Any) -> None:
        model.save(str(path))

    def load(self, model: Any, path: Any) -> Any:
        model.load_weights(str(path))
        return model


class LegacyH5ByName(LegacyH5):
    name = "h5-by-name"
    matches_by = MatchesBy.NAME

    def load(self, model: Any, path: Any) -> Any:
        model.load_weights(str(path), by_name=True)
        return model


class TfCheckpoint(Format):
    name = "tf-checkpoint"
    suffix = ""  # a prefix: TF writes prefix.index and prefix.data-*
    backends = frozenset({TENSORFLOW})
    matches_by = MatchesBy.GRAPH
    restores_on_creation = True

    def save(self, model: Any, path: Any) -> None:
        import tensorflow as tf

        tf.train.Checkpoint(model=model).write(str(path))

    def load(self, model: Any, path: Any) -> Any:
        import tensorflow as tf

        # Every object that exists must be matched; values for objects created
        # later (an optimizer built at the first training step) are restored then,
        # as TensorFlow does: the check reads them after building the optimizer.
        status = tf.train.Checkpoint(model=model).read(str(path))
        try:
            status.assert_existing_objects_matched()
        finally:
            # Else the status object logs every unmatched value when it is
            # collected, long after the verdict (hundreds of lines).
            status.expect_partial()
        return model


class TfKerasH5(LegacyH5):
    frameworks = frozenset({TF_KERAS})

    def save(self, model: Any, path: Any) -> None:
        model.save_weights(str(path))


class TfKerasH5ByName(TfKerasH5):
    name = LegacyH5ByName.name
    matches_by = LegacyH5ByName.matches_by
    load = LegacyH5ByName.load


class TfKerasCheckpoint(TfCheckpoint):
    frameworks = frozenset({TF_KERAS})

    def save(self, model: Any, path: Any) -> None:
        model.save_weights(str(path), save_format="tf")

    def load(self, model: Any, path: Any) -> Any:
        status = model.load_weights(str(path))
        try:
            status.assert_existing_objects_matched()
        finally:
            status.expect_partial()
        return model


class TfKerasModel(KerasModel):
    frameworks = frozenset({TF_KERAS})

    def load(self, model: Any, path: Any) -> Any:
        import tf_keras

        return tf_keras.models.load_model(str(path), safe_mode=True)


class Orbax(Format):
    """What ``keras.callbacks.OrbaxCheckpoint`` writes during ``fit``: one step
    folder under the checkpoint directory, loaded with ``model.load_weights(dir)``."""

    name = "orbax"
    suffix = ""  # a directory of step folders
    writes_folder = True
    matches_by = MatchesBy.GROUP
    needs_compiled = True
    requires = ("orbax.checkpoint", "pip install 'pytest-ckpt[orbax]'")

    def save(self, model: Any, path: Any) -> None:
        import keras

        # The callback as fit() drives it: set_model, a step at the end of an
        # epoch, close at the end of training.  Saved in the foreground, so
        # the folder is complete when save() returns.
        callback = keras.callbacks.OrbaxCheckpoint(directory=str(path), save_on_background=False)
        callback.set_model(model)
        # The next epoch's step when the folder holds earlier ones, as a later epoch of fit writes.
        steps = [int(p.name) for p in Path(path).iterdir() if p.name.isdigit()] if Path(path).is_dir() else []
        callback.on_epoch_end(max(steps, default=-1) + 1)
        callback.on_train_end()

    def load(self, model: Any, path: Any) -> Any:
        model.load_weights(str(path))
        return model


class OrbaxModel(Orbax):
    """The same directory loaded with ``keras.saving.load_model(dir)``: a new model
    from the config the callback stores beside the state."""

    name = "orbax-model"
    loads_new_model = True

    def load(self, model: Any, path: Any) -> Any:
        import keras

        return keras.saving.load_model(str(path), safe_mode=True)


class StateTree(Format):
    """``model.get_state_tree()`` written to an ``.npz`` and read back with
    ``model.set_state_tree()``: the seam users' own checkpointers (Orbax used
    directly, msgpack, safetensors) go through."""

    name = "state-tree"
    suffix = ".npz"
    matches_by = MatchesBy.GROUP
    needs_compiled = True

    def save(self, model: Any, path: Any) -> None:
        from pytest_ckpt.framework.statetree import write_state_tree

        write_state_tree(model.get_state_tree(value_format="numpy_array"), Path(path))

    def load(self, model: Any, path: Any) -> Any:
        from pytest_ckpt.framework.statetree import read_state_tree

        model.set_state_tree(read_state_tree(Path(path)))
        return model


class KerasHubPreset(Format):
    """``model.save_to_preset(dir)`` of a keras-hub Backbone or Task, loaded the way its
    users load one: ``ModelClass.from_preset(dir)``, a new model built from the preset's
    config (trainable flags and optimizer are not part of a preset)."""

    name = "keras-hub-preset"
    suffix = ""  # a folder: config.json, metadata.json, model.weights.h5 (and task files)
    writes_folder = True
    loads_new_model = True
    ships_model = True
    requires = ("keras_hub", "pip install --no-deps keras-hub && pip install 'pytest-ckpt[keras-hub]' "
                "(keras-hub's tensorflow-text dependency needs the full tensorflow wheel; "
                "saving and loading presets do not use it)")

    def path_in(self, directory: Path) -> Path:
        return Path(directory) / "preset"

    def unfit(self, model: Any, subject: str) -> str | None:
        if not callable(getattr(model, "save_to_preset", None)):
            return (f"format {self.name} saves keras-hub models (a Backbone or a Task); {subject} is a "
                    f"{type(model).__name__}, which has no save_to_preset")
        return super().unfit(model, subject)

    def save(self, model: Any, path: Any) -> None:
        model.save_to_preset(str(path))

    def load(self, model: Any, path: Any) -> Any:
        return type(model).from_preset(str(path))


def _lora_owner(model: Any) -> Any:
    """The object with ``save_lora_weights``: a keras-hub Backbone, or a Task's backbone."""
    for candidate in (model, getattr(model, "backbone", None)):
        if callable(getattr(candidate, "save_lora_weights", None)):
            return candidate
    return None


def unsavable_adapters(model: Any) -> list[str]:
    """Layers a keras-hub backbone adapted whose adapters ``save_lora_weights`` cannot read: it
    reads ``lora_kernel_a``/``_b``, which an Embedding's adapter (``lora_embeddings_a``) lacks."""
    owner = _lora_owner(model)
    if owner is None:
        return []
    layers = [layer for layer in owner._flatten_layers(include_self=False) if layer.weights]
    return [layers[i].name for i in getattr(owner, "_lora_enabled_layers", None) or []
            if i < len(layers) and not hasattr(layers[i], "lora_kernel_a")]


class KerasHubLora(Format):
    """keras-hub's adapter file: ``backbone.save_lora_weights("x.lora.h5")`` writes the LoRA
    adapters only, keyed by each adapted layer's index among the layers holding weights;
    ``load_lora_weights`` puts them into a model built from the same base (the preset)."""

    name = "keras-hub-lora"
    suffix = ".lora.h5"
    matches_by = MatchesBy.LAYER_INDEX
    adapters_only = True
    requires = KerasHubPreset.requires

    def unfit(self, model: Any, subject: str) -> str | None:
        owner = _lora_owner(model)
        if owner is None:
            return (f"format {self.name} saves the LoRA adapters of a keras-hub Backbone (or a Task's); "
                    f"{subject} is a {type(model).__name__}, which has no save_lora_weights")
        if not getattr(owner, "_lora_enabled_layers", None):
            return (f"format {self.name} saves LoRA adapters; {subject} has none: call "
                    "backbone.enable_lora(rank) in the factory, as the fine-tuning code does")
        return super().unfit(model, subject)

    def base_of(self, model: Any) -> Any:
        return _lora_owner(model)

    def save(self, model: Any, path: Any) -> None:
        _lora_owner(model).save_lora_weights(str(path))

    def load(self, model: Any, path: Any) -> Any:
        _lora_owner(model).load_lora_weights(str(path))
        return model


class ModelCheckpointWeights(KerasWeights):
    """``keras.callbacks.ModelCheckpoint("x.weights.h5", save_weights_only=True)`` as ``fit``
    drives it at the end of an epoch; loaded with ``load_weights``."""

    name = "model-checkpoint"

    def save(self, model: Any, path: Any) -> None:
        import keras

        callback = keras.callbacks.ModelCheckpoint(str(path), save_weights_only=True)
        callback.set_model(model)
        callback.on_epoch_end(0, logs={})


class ModelCheckpointModel(KerasModel):
    """``keras.callbacks.ModelCheckpoint("x.keras")`` (the whole model) at the end of an epoch;
    loaded with ``keras.saving.load_model``."""

    name = "model-checkpoint-model"

    def save(self, model: Any, path: Any) -> None:
        import keras

        callback = keras.callbacks.ModelCheckpoint(str(path))
        callback.set_model(model)
        callback.on_epoch_end(0, logs={})


class BackupAndRestore(Format):
    """``keras.callbacks.BackupAndRestore(dir)``: at the end of an epoch it writes
    ``latest.weights.h5`` and ``training_metadata.json`` (the epoch to go on from); a new
    callback restores both when training begins (building the optimizer first), and ``fit``
    then starts at that epoch."""

    name = "backup-and-restore"
    suffix = ""  # a folder
    writes_folder = True
    needs_compiled = True  # it runs inside fit: restoring reads model.optimizer
    restores_epoch = True
    builds_optimizer = True

    def save(self, model: Any, path: Any) -> None:
        import keras

        callback = keras.callbacks.BackupAndRestore(str(path), delete_checkpoint=False)
        callback.set_model(model)
        # The end of the epoch after the one the folder holds, as one fit's epochs follow each
        # other: each save records a later epoch, so two saves never hold the same counter.
        callback.on_epoch_end(self.saved_epoch(Path(path)))

    @staticmethod
    def saved_epoch(path: Path) -> int:
        """The epoch ``fit`` goes on from with what ``path`` holds now (0: nothing saved yet)."""
        import json

        try:
            return int(json.loads((path / "training_metadata.json").read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def load(self, model: Any, path: Any) -> Any:
        import keras

        callback = keras.callbacks.BackupAndRestore(str(path), delete_checkpoint=False)
        callback.set_model(model)
        callback.on_train_begin()
        return model

    def resume_epoch(self, model: Any) -> int | None:
        from pytest_ckpt.framework import compat

        return compat.resume_epoch(model)


class UserFormat(Format):
    """A user's checkpoint code: ``save(model, directory)`` / ``load(model, directory)``,
    ``directory`` an existing folder the format owns.  Optional attributes: ``name`` (shown in
    reports), ``frameworks`` ("keras3", "tf-keras"), ``loads_new_model`` (``load`` returns
    a new model rather than loading into the one given), ``restores_epoch`` with
    ``resume_epoch(model)`` (the epoch the training loop goes on from after ``load``; each
    ``save`` then stands for the end of the next epoch, 1, 2, ...)."""

    matches_by = MatchesBy.PATH  # nothing is known of how it matches: no positional cause is given
    writes_folder = True

    def __init__(self, spec: str, code: Any) -> None:
        self.name, self.code = spec, code
        self.display = str(getattr(code, "name", "") or spec)
        self.frameworks = frozenset(getattr(code, "frameworks", None) or (KERAS3, TF_KERAS))
        self.loads_new_model = bool(getattr(code, "loads_new_model", False))
        self.restores_epoch = bool(getattr(code, "restores_epoch", False))

    def path_in(self, directory: Path) -> Path:
        folder = Path(directory) / "ckpt"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def save(self, model: Any, path: Any) -> None:
        self.code.save(model, Path(path))

    def load(self, model: Any, path: Any) -> Any:
        loaded = self.code.load(model, Path(path))
        return model if loaded is None or not self.loads_new_model else loaded

    def resume_epoch(self, model: Any) -> int | None:
        ask = getattr(self.code, "resume_epoch", None)
        if not callable(ask):
            return None
        try:
            epoch = ask(model)
        except Exception as exc:
            raise UserFormatError(f"format {self.name!r}: resume_epoch(model) raised "
                                  f"{type(exc).__name__}: {exc}") from None
        if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int)):
            raise UserFormatError(f"format {self.name!r}: resume_epoch(model) returned {epoch!r}; "
                                  "fit(initial_epoch=...) takes an int (or None: start from 0)")
        return epoch

    def __repr__(self) -> str:
        return f"<user format {self.name} ({self.display})>"


_USER: dict[str, Format] = {}


def is_user_format(name: str) -> bool:
    """``module:attr`` names a user's format; built-in names have no colon."""
    return ":" in name


def user_format(spec: str) -> Format:
    """The user's format ``module:attr``, imported (once) and checked; raises naming the culprit."""
    if spec not in _USER:
        _USER[spec] = _import_user_format(spec)
    return _USER[spec]


def _import_user_format(spec: str) -> Format:
    module_name, _, attr = spec.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise UserFormatError(f"format {spec!r}: module {module_name!r} cannot be imported "
                              f"({type(exc).__name__}: {exc}); is its folder on sys.path (ini: pythonpath = .)?"
                              ) from None
    for part in attr.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise UserFormatError(f"format {spec!r}: {module_name} has no attribute {attr!r}")
    if isinstance(found, type):
        try:
            found = found()
        except Exception as exc:
            raise UserFormatError(f"format {spec!r}: {attr}() raised {type(exc).__name__}: {exc} "
                                  "(a format class is made without arguments)") from None
    if isinstance(found, Format):
        return found
    missing = [m for m in ("save", "load") if not callable(getattr(found, m, None))]
    if missing:
        raise UserFormatError(f"format {spec!r}: {type(found).__name__} has no {' or '.join(missing)} method; "
                              "a format needs save(model, directory) and load(model, directory)")
    return UserFormat(spec, found)


_ALL: tuple[Format, ...] = (
    KerasWeights(),
    KerasSharded(),
    KerasArchive(),
    KerasModel(),
    LegacyH5(),
    LegacyH5ByName(),
    TfCheckpoint(),
    TfKerasH5(),
    TfKerasH5ByName(),
    TfKerasCheckpoint(),
    TfKerasModel(),
    Orbax(),
    OrbaxModel(),
    StateTree(),
    KerasHubPreset(),
    KerasHubLora(),
    ModelCheckpointWeights(),
    ModelCheckpointModel(),
    BackupAndRestore(),
)
# Formats both frameworks read: a tf-keras file loads into a Keras 3 model.
MIGRATION_FORMATS = ("h5", "h5-by-name")


def format_names(framework: str | None = None) -> list[str]:
    """Format names in one stable order (``_ALL``'s), for one framework or for any."""
    names: list[str] = []
    for f in _ALL:
        if f.name not in names:
            names.append(f.name)
    if framework is None:
        return names
    return [n for n in names if any(f.name == n and framework in f.frameworks for f in _ALL)]


def get_format(name: str, framework: str = KERAS3, backend: str | None = None) -> Format:
    """The format object; raises naming the formats that do apply when it does not."""
    if is_user_format(name):
        return _user_format_for(name, framework, backend)
    known = format_names()
    if name not in known:
        raise UnknownFormatError(
            f"unknown checkpoint format {name!r}; valid formats: {', '.join(known)}")
    for f in _ALL:
        if f.name == name and framework in f.frameworks:
            if not _runs_on(f, backend):
                usable = [g.name for g in _ALL if framework in g.frameworks and _runs_on(g, backend)]
                raise FormatNotApplicable(
                    f"format {name!r} needs the {'/'.join(sorted(f.backends or ()))} backend; Keras runs "
                    f"on {backend} here; formats for it: {', '.join(usable)}")
            _check_installed(f)
            return f
    raise FormatNotApplicable(
        f"format {name!r} does not apply to {framework} models; formats for {framework}: "
        f"{', '.join(format_names(framework))}")


def _user_format_for(name: str, framework: str, backend: str | None) -> Format:
    fmt = user_format(name)
    if framework not in fmt.frameworks:
        raise FormatNotApplicable(f"format {name!r} applies to {', '.join(sorted(fmt.frameworks))} models "
                                  f"(its frameworks attribute), not to {framework} models")
    if not _runs_on(fmt, backend):
        raise FormatNotApplicable(f"format {name!r} needs the {'/'.join(sorted(fmt.backends or ()))} "
                                  f"backend; Keras runs on {backend} here")
    return fmt


def _known(name: str) -> Format | None:
    if is_user_format(name):
        return _USER.get(name)
    return next((f for f in _ALL if f.name == name), None)


def _check_installed(fmt: Format) -> None:
    if fmt.requires is None:
        return
    module, install = fmt.requires
    try:
        # Only the top package is imported to answer (orbax is a namespace package).
        found = importlib.util.find_spec(module) is not None
    except ImportError:
        found = False
    if not found:
        raise FormatNotApplicable(f"format {fmt.name!r} needs {module}, which is not installed here: "
                                  f"{install}")


def _runs_on(fmt: Format, backend: str | None) -> bool:
    return backend is None or fmt.backends is None or backend in fmt.backends


def applicable(framework: str | None, backend: str | None, *, migration: bool = False) -> list[str]:
    """The one answer to "which formats can this model use?".

    ``framework`` None means "not known yet": every format (the rest are
    skipped once the model is built).  A migration needs a format both
    frameworks read.
    """
    names = []
    for name in format_names(framework):
        try:
            if framework is not None:
                get_format(name, framework, backend)
        except FormatNotApplicable:
            continue
        if not migration or name in MIGRATION_FORMATS:
            names.append(name)
    return names


def matching(name: str) -> MatchesBy:
    """How format ``name`` pairs stored values with variables (same in every framework)."""
    fmt = _known(name)
    return fmt.matches_by if fmt is not None else MatchesBy.PATH


def restores_on_creation(name: str) -> bool:
    fmt = _known(name)
    return fmt.restores_on_creation if fmt is not None else False


def ships_model(name: str) -> bool:
    fmt = _known(name)
    return fmt.ships_model if fmt is not None else False


def adapters_only(name: str) -> bool:
    fmt = _known(name)
    return fmt.adapters_only if fmt is not None else False


def refuse_adapters_only(fmt: Format, check: str) -> None:
    """Checks other than the round trip need the whole state in the file."""
    if fmt.adapters_only:
        raise FormatNotApplicable(
            f"format {fmt.name} holds the LoRA adapters only; the rest of the model reaches the "
            f"loading model from the base it is built from (the preset), so {check} cannot read the "
            "whole state from it: it is checked by round trips (--ckpt-roundtrip)")


def parse_format_list(text: Any) -> list[str]:
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
