"""Training steps as ``fit`` takes them, and the state they leave.

Resume checks compare training resumed from a checkpoint with training that
never stopped, so both must train the way users' code does: through
``model.fit``, which hands a custom ``train_step`` exactly what its data
yields (``x, y = data`` works), not ``train_on_batch``, which adds a third
element.  Each batch is one step; the state after each step is read by a
callback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pytest_ckpt.checks.comparison import fingerprint
from pytest_ckpt.checks.optimizer_state import is_compiled, slots_of
from pytest_ckpt.framework.bulk import read
from pytest_ckpt.framework.detection import TF_KERAS, backend_of, framework_of
from pytest_ckpt.framework.tree import LayerTree

Batch = tuple[Any, Any]


def _callback_base(model: Any) -> type:
    module = importlib.import_module("tf_keras" if framework_of(model) == TF_KERAS else "keras")
    return module.callbacks.Callback  # type: ignore[no-any-return]


def fit_steps(model: Any, batches: list[Batch], after_step: Callable[[int], bool] | None = None, *,
              epochs: int = 1, initial_epoch: int = 0) -> None:
    """One training step per batch, as ``fit`` runs them; ``after_step(n)`` (1-based) after
    each, and training stops when it returns True.  ``epochs``: the epoch fit is asked to end
    at, one epoch after the epoch a restoring callback left the model at (Keras starts there)."""
    base = _callback_base(model)

    class _AfterEach(base):  # type: ignore[valid-type,misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            # JAX trains on a copy of the state and writes it back to the variables at
            # the end of fit, unless asked: each step's state is read here.
            sync = getattr(self.model, "jax_state_sync", None)
            if after_step is not None and callable(sync):
                sync()
            if after_step is not None and after_step(batch + 1):
                self.model.stop_training = True

    model.fit(_dataset(model, batches), steps_per_epoch=len(batches), epochs=epochs, initial_epoch=initial_epoch,
              verbose=0, shuffle=False,
              callbacks=[_AfterEach()])


def _dataset(model: Any, batches: list[Batch]) -> Any:
    """The batches, one per step.  On TensorFlow a tf.data dataset: ``fit`` on a Python
    generator costs it a tenth of a second of set-up per call; elsewhere the generator."""
    if framework_of(model) == TF_KERAS or backend_of(framework_of(model) or "keras3") == "tensorflow":
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensors(batches[0])
        for batch in batches[1:]:
            dataset = dataset.concatenate(tf.data.Dataset.from_tensors(batch))
        return dataset

    def data() -> Iterator[Batch]:
        yield from batches

    return data()


def rng_variables(model: Any) -> list[Any]:
    """Seed-generator state: in ``model.variables`` but in no checkpoint."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def state(tree: LayerTree) -> dict[str, tuple[str, np.ndarray]]:
    """Every model variable and optimizer variable by identity: (display, value)."""
    found = {e.key: (e.display, read(e.variable)) for e in tree.variables()}
    if is_compiled(tree.model) and getattr(tree.model.optimizer, "built", False):
        found.update({s.key: (f"optimizer: {s.display}", read(s.variable)) for s in slots_of(tree)})
    return found


def state_digests(tree: LayerTree) -> dict[str, str]:
    return {key: fingerprint(value) for key, (_, value) in state(tree).items()}


def snapshot(model: Any) -> list[np.ndarray]:
    return [read(v) for v in model.variables]


def restore(model: Any, values: list[np.ndarray]) -> None:
    for v, value in zip(model.variables, values):
        v.assign(value)


# What fit runs besides the layers' calls: code there may update state no call updates.
_TRAINING_HOOKS = ("train_step", "compute_loss", "stateless_compute_loss", "compute_metrics")


def own_training_code(model: Any) -> str | None:
    """``Class.method`` of the first of fit's hooks the model's class overrides (None: Keras's own)."""
    for hook in _TRAINING_HOOKS:
        for cls in type(model).__mro__:
            if hook in vars(cls):
                if not cls.__module__.startswith(("keras.", "keras_hub.", "tf_keras.")):
                    return f"{cls.__module__}.{cls.__qualname__}.{hook}"
                break
    return None


CALLS_PER_PROBE = 4


def trained_keys(tree: LayerTree, probes: list[Any], batches: list[Batch] | None = None) -> set[str]:
    """The variables training can change under the flags the model has now: the trainable
    ones (the optimizer moves them), those a training-mode call on any of ``probes`` updates
    (batch statistics, caches), and, given ``batches``, those a real ``fit`` step on them
    updates (the model's own ``train_step`` or ``compute_loss``).  Every model variable is put
    back afterwards."""
    model = tree.model
    before = snapshot(model)
    entries = tree.variables()
    held = [fingerprint(read(e.variable)) for e in entries]
    updated: set[str] = set()

    def seen() -> None:
        updated.update(e.key for e, digest in zip(entries, held) if fingerprint(read(e.variable)) != digest)

    try:
        # A few calls each: state may start to move only after some (a warm-up count).
        for inputs in probes:
            for _ in range(CALLS_PER_PROBE):
                model(inputs, training=True)
            seen()
        if batches is not None:
            fit_steps(model, batches)
            seen()
    finally:
        restore(model, before)
    trainable = {id(v) for v in model.trainable_weights}
    return {e.key for e in entries if id(e.variable) in trainable} | updated
