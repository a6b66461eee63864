"""Resume equivalence: training resumed from a checkpoint must equal training that never stopped.

One example, for a save mask S and a load mask L:

- the saving model trains ``steps`` steps under S and saves;
- the reference goes on uninterrupted: it switches to L and trains ``steps``
  more.  Switching builds a new optimizer for the variables trainable under
  L; ``iterations`` (and every optimizer variable serving no model variable)
  and the slots of variables trainable under both S and L carry over; slots
  of newly trainable variables start fresh, as Keras creates them.  That is
  what "not stopping" means when the freeze state changes;
- the resumed run is the other model (a fresh build), which loads the
  checkpoint under L and trains the same ``steps`` steps on the same data.

After each resumed step, every model variable and every optimizer variable
must equal the reference's, exactly (CPU runs are deterministic).  Random
state that no checkpoint carries is out of scope: the seed generators'
state (Dropout) is copied from the reference into the resumed model before
its first step, so both draw the same masks.  Data are synthetic and
deterministic, made from the model's input and output specs.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pytest_ckpt import probe
from pytest_ckpt.bulk import read
from pytest_ckpt.chatter import framework_chatter
from pytest_ckpt.engine import ModelPair, describe
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.formats import get_format
from pytest_ckpt.masks import FreezeMask, masked
from pytest_ckpt.optimizer_state import trainable_keys, attach_fresh_optimizer, is_compiled, slots_of
from pytest_ckpt.tree import LayerTree

STEPS = 3
BATCH = 8


class NotCompiled(FactoryError):
    """A resume check of a model that is not compiled: there is nothing to train."""


@dataclass
class Divergence:
    step: int  # 1-based step of the resumed phase
    key: str
    display: str
    detail: str


@dataclass
class ResumeResult:
    factory: str
    format: str
    framework: str
    save_mask: FreezeMask
    load_mask: FreezeMask
    steps: int
    new_model: bool = False
    save_error: tuple[str, str] | None = None
    load_error: tuple[str, str] | None = None
    train_error: tuple[str, str] | None = None
    warnings: list[str] = field(default_factory=list)
    divergence: Divergence | None = None
    diverged: int = 0  # variables that differ after the last step
    # Where the uninterrupted run itself reached NaN or inf: nothing after it can be compared.
    blew_up: Divergence | None = None

    @property
    def ok(self) -> bool:
        return not (self.save_error or self.load_error or self.train_error or self.divergence or self.blew_up)

    def verdict_words(self) -> list[str]:
        words = [f"{what} {error[0]}" for what, error in (("save", self.save_error),
                 ("load", self.load_error), ("training", self.train_error)) if error]
        if self.divergence:
            optimizer = self.divergence.key.startswith("optimizer:") or any(
                "optimizer" in w for w in self.warnings)
            words.append("optimizer, diverged" if optimizer else "diverged")
        if self.blew_up:
            words.append("training reached NaN")
        return words

    def summary(self) -> str:
        if self.ok:
            return f"{self.factory} [{self.format}]: resuming equals not stopping"
        if self.divergence:
            d = self.divergence
            return f"{self.factory} [{self.format}]: resumed training diverged at step {d.step} ({d.display})"
        if self.blew_up:
            return f"{self.factory} [{self.format}]: training that never stopped reached NaN or inf"
        error = self.save_error or self.load_error or self.train_error
        return f"{self.factory} [{self.format}]: {error[0]}"


def synthetic_batches(model, steps: int) -> list[tuple]:
    """Deterministic (x, y) batches from the model's input specs and compiled loss."""
    batches = []
    for step in range(steps):
        # On the scale of normalized data: the probe's far-out samples blow up training.
        x = probe.probe_inputs(model, batch=BATCH, seed=1000 + step, far_out=False)
        batch = len(next(iter(_leaves(x))))
        y = _targets(model, x, batch, np.random.default_rng(2000 + step))
        batches.append((x, y))
    return batches


def _leaves(structure):
    if isinstance(structure, dict):
        for v in structure.values():
            yield from _leaves(v)
    elif isinstance(structure, (list, tuple)):
        for v in structure:
            yield from _leaves(v)
    else:
        yield structure


def _targets(model, x, batch, rng):
    outputs = probe.outputs(model, x)
    losses = model.loss if isinstance(model.loss, (list, tuple)) else [model.loss] * len(outputs)
    ys = []
    for (name, out), loss in zip(outputs.items(), losses):
        text = (getattr(loss, "name", None) or getattr(loss, "__name__", None) or str(loss)).lower()
        classes = out.shape[-1] if out.ndim > 1 else 2
        if "sparse_categorical" in text:
            ys.append(rng.integers(0, classes, size=out.shape[:-1]).astype("int32"))
        elif "categorical" in text:
            ys.append(np.eye(classes, dtype="float32")[rng.integers(0, classes, size=out.shape[:-1])])
        elif "binary" in text:
            ys.append(rng.integers(0, 2, size=out.shape).astype("float32"))
        else:
            ys.append(rng.standard_normal(out.shape).astype("float32"))
    return ys[0] if len(ys) == 1 else ys


def _state(tree: LayerTree) -> dict[str, tuple[str, np.ndarray]]:
    """Every model variable and optimizer variable, by stable key."""
    state = {e.key: (e.display, read(e.variable)) for e in tree.variables()}
    if is_compiled(tree.model) and tree.model.optimizer.built:
        state.update({s.key: (f"optimizer: {s.display}", read(s.variable)) for s in slots_of(tree)})
    return state


def _rng_variables(model) -> list:
    """Seed-generator state: in ``model.variables`` but in no checkpoint."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _snapshot(model) -> list[np.ndarray]:
    return [read(v) for v in model.variables]


def _restore(model, values) -> None:
    for v, value in zip(model.variables, values):
        v.assign(value)


class _Trainer:
    """One model's optimizers, one per trainable set, kept with their initial values.

    Keras traces its train function for one optimizer and one trainable set;
    switching either means tracing again, which costs more than the steps.
    So an optimizer is built once per trainable set and put back to its
    initial values for the next example, and the train function is traced
    again only when the optimizer in use changes.
    """

    def __init__(self, tree: LayerTree):
        self.tree = tree
        self._built: dict[frozenset, tuple[object, list, list[np.ndarray]]] = {}
        self._current = None

    def start(self) -> list:
        """Under the current mask: a fresh optimizer state and a train function for it; its slots."""
        model = self.tree.model
        key = trainable_keys(self.tree)
        if key in self._built:
            optimizer, slots, initial = self._built[key]
            model.optimizer = optimizer
            for v, value in zip(optimizer.variables, initial):
                v.assign(value)
        else:
            while len(self._built) >= 2:  # keep memory bounded: S and L of the last pair
                self._built.pop(next(iter(self._built)))
            slots = attach_fresh_optimizer(self.tree)
            optimizer = model.optimizer
            self._built[key] = (optimizer, slots, [read(v) for v in optimizer.variables])
        if self._current is not optimizer:
            model.make_train_function(force=True)
            self._current = optimizer
        return slots


def _train(model, batch) -> None:
    x, y = batch
    model.train_on_batch(x, y)


def _checked_batches(model, batches, steps: int) -> list:
    """The user's ``data``, proven usable by one training step on a copy of nothing: the
    first batch is tried on the model before any check, so a bad batch is one clear error."""
    from pytest_ckpt.errors import ConfigError

    batches = list(batches)
    if len(batches) < 2 * steps or not all(isinstance(b, (tuple, list)) and len(b) == 2 for b in batches):
        raise ConfigError(f"data must be a list of at least {2 * steps} (x, y) batches (2 x steps={steps}); "
                          f"got {len(batches)} item(s) of type(s) "
                          f"{', '.join(sorted({type(b).__name__ for b in batches})) or 'none'}")
    snapshot = _snapshot(model)
    try:
        with framework_chatter():
            _train(model, batches[0])
    except Exception as exc:
        raise ConfigError(f"data: the model cannot train on the first (x, y) batch: "
                          f"{type(exc).__name__}: {str(exc)[:300]}") from None
    finally:
        _restore(model, snapshot)
    return batches


class ResumeRun:
    """A compiled factory's pair and one format; ``run`` does one example."""

    def __init__(self, pair: ModelPair, format_name: str, workdir: Path, steps: int = STEPS,
                 batches: list | None = None):
        if not is_compiled(pair.saver.model):
            raise NotCompiled(f"model factory {pair.name} returns a model that is not compiled: a "
                               "resume check trains it; call model.compile(...) in the factory")
        self.pair, self.format_name, self.workdir, self.steps = pair, format_name, workdir, steps
        backend = pair.backend()
        self.save_format = get_format(format_name, pair.save_framework, backend)
        self.load_format = get_format(format_name, pair.load_framework, backend)
        self.batches = (synthetic_batches(pair.saver.model, 2 * steps) if batches is None
                        else _checked_batches(pair.saver.model, batches, steps))
        self._initial = (_snapshot(pair.saver.model), _snapshot(pair.loader.model))
        self._trainers = (_Trainer(pair.saver), _Trainer(pair.loader))

    def run(self, save_mask: FreezeMask, load_mask: FreezeMask) -> ResumeResult:
        saver, loader = self.pair.saver, self.pair.loader
        new_model = self.load_format.loads_new_model
        load_mask = save_mask if new_model else load_mask
        result = ResumeResult(self.pair.label, self.format_name, self.pair.framework, save_mask,
                              load_mask, self.steps, new_model=new_model)
        _restore(saver.model, self._initial[0])
        _restore(loader.model, self._initial[1])
        directory = Path(tempfile.mkdtemp(prefix="resume", dir=self.workdir))
        try:
            path = self.save_format.path_in(directory)
            with framework_chatter(), masked(saver, save_mask):
                phase_one = self._trainers[0].start()
                trained_first = trainable_keys(saver)
                for batch in self.batches[:self.steps]:
                    _train(saver.model, batch)
                try:
                    self.save_format.save(saver.model, path)
                except Exception as exc:
                    result.save_error = describe(exc)
                    return result
            rng_state = [read(v) for v in _rng_variables(saver.model)]
            reference = []
            with framework_chatter(), masked(saver, load_mask):
                if trainable_keys(saver) != trained_first:
                    carried = {slot.key: read(slot.variable) for slot in phase_one}
                    for slot in self._trainers[0].start():
                        if slot.key in carried:
                            slot.variable.assign(carried[slot.key])
                for batch in self.batches[self.steps:]:
                    _train(saver.model, batch)
                    reference.append(_state(saver))
            result.blew_up = _first_non_finite(reference)
            if result.blew_up:
                return result  # all-NaN runs agree whatever was restored: that proves nothing
            with framework_chatter() as said, masked(loader, FreezeMask.nothing() if new_model else load_mask):
                if not new_model:
                    self._trainers[1].start()
                try:
                    holder = self.load_format.load(loader.model, path)
                except Exception as exc:
                    result.load_error = describe(exc)
                    return result
                result.warnings = said
                tree = loader if holder is loader.model else LayerTree(holder)
                for v, value in zip(_rng_variables(holder), rng_state):
                    v.assign(value)
                if new_model:
                    holder.make_train_function(force=True)
                for step, (batch, expected) in enumerate(zip(self.batches[self.steps:], reference), 1):
                    try:
                        _train(holder, batch)
                    except Exception as exc:
                        result.train_error = describe(exc)
                        return result
                    got = _state(tree)
                    result.divergence, result.diverged = _first_difference(step, expected, got)
                    if result.divergence:
                        return result
            return result
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def _first_non_finite(states) -> Divergence | None:
    for step, state in enumerate(states, 1):
        for key, (display, value) in state.items():
            if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
                return Divergence(step, key, display, "NaN or inf")
    return None


def _first_difference(step, expected, got) -> tuple[Divergence | None, int]:
    first, count = None, 0
    for key, (display, value) in expected.items():
        other = got.get(key)
        if other is None:
            detail = "missing from the resumed model"
        elif other[1].shape != value.shape:
            detail = f"shape {other[1].shape} vs {value.shape}"
        elif np.array_equal(other[1], value):
            continue
        elif value.dtype.kind in "fc":
            detail = f"max |difference| {np.max(np.abs(other[1].astype(float) - value.astype(float))):.6g}"
        else:
            detail = f"{other[1].ravel()[:3].tolist()}... vs {value.ravel()[:3].tolist()}..."
        count += 1
        if first is None:
            first = Divergence(step, key, display, detail)
    return first, count


def check_resume(factory, format_name: str, *, examples: int, seed: int | None = None,
                 masks: str = "independent", tmp_root=None, steps: int = STEPS, batches=None,
                 scenario: tuple[list[str], list[str]] | None = None):
    """The resume check of one compiled factory in one format (see the module docstring).

    ``scenario`` = (layers frozen at save, layers frozen at load), as name
    paths: exactly that pair is checked instead of the fixed and drawn ones
    (say "base frozen, then the top of the base unfrozen").
    """
    from pytest_ckpt import driver
    from pytest_ckpt.tempfiles import workdir
    from pytest_ckpt.fixed_pairs import fixed_pairs, split
    from pytest_ckpt.result import CheckOutcome
    from pytest_ckpt.strategies import mask_pairs

    pair = ModelPair(factory)
    with workdir(tmp_root) as wd:
        run = ResumeRun(pair, format_name, wd, steps=steps, batches=batches)
        pair.fill()  # proves the two models share no storage; run() restores the factory state
        if scenario is not None:
            fixed = [tuple(FreezeMask.from_names(pair.saver, names) for names in scenario)]
            draws = 0
        else:
            fixed, draws = fixed_pairs(pair.saver, pair.loader, masks, limit=RESUME_FIXED_PAIRS), examples
        found = driver.search(lambda masks: run.run(*masks), fixed=[{"masks": p} for p in fixed],
                              strategies={"masks": mask_pairs(pair.saver, policy=masks)},
                              examples=max(draws, 1) if draws else 1, seed=seed,
                              generate=bool(draws),
                              smaller=lambda kw: [{"masks": p} for p in split(kw["masks"])])
    return CheckOutcome(format_name, seed, found.examples_run, found.failure,
                        not_reproducible=found.not_reproducible)


# Each resume example trains 2 x steps steps: fewer fixed pairs than a round trip.
RESUME_FIXED_PAIRS = 16
