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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_ckpt.checks.comparison import fingerprint
from pytest_ckpt.checks.isolation import Isolation
from pytest_ckpt.checks.loading import ResumeRequest
from pytest_ckpt.checks.optimizer_state import (
    OPTIMIZER_PREFIX,
    attach_fresh_optimizer,
    is_compiled,
    prebuilt_keys,
    slots_of,
    trainable_keys,
)
from pytest_ckpt.checks.outcomes import CheckOutcome
from pytest_ckpt.checks.roundtrip import ModelPair
from pytest_ckpt.checks.training import Batch, fit_steps, restore, rng_variables, snapshot, state
from pytest_ckpt.errors import ConfigError, FactoryError
from pytest_ckpt.framework import compat, nested, probe
from pytest_ckpt.framework.bulk import read
from pytest_ckpt.framework.chatter import framework_chatter
from pytest_ckpt.framework.formats import get_format, refuse_adapters_only
from pytest_ckpt.framework.messages import describe
from pytest_ckpt.framework.tree import LayerTree
from pytest_ckpt.search.masks import FreezeMask, current_mask, frozen_by, masked

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
    # Two resumed runs from the same checkpoint differed from each other.
    nondeterministic: bool = False
    load_lost_state: bool = False
    # The loading model's optimizer was not built when the checkpoint was loaded.
    optimizer_unbuilt_at_load: bool = False
    # A format that restores where training stands restored another epoch: (restored, saved).
    epoch_mismatch: tuple[int | None, int] | None = None
    # The resumed fit trained fewer steps than the run that never stopped (None: all of them).
    steps_run: int | None = None

    @property
    def silent(self) -> bool:
        return not self.ok and not (self.save_error or self.load_error)

    @property
    def ok(self) -> bool:
        return not (self.save_error or self.load_error or self.train_error or self.divergence or self.blew_up
                    or self.epoch_mismatch or self.steps_run is not None)

    def verdict_words(self) -> list[str]:
        words = [f"{what} {error[0]}" for what, error in (("save", self.save_error),
                 ("load", self.load_error), ("training", self.train_error)) if error]
        if self.divergence and self.nondeterministic:
            words.append("not deterministic")
        elif self.divergence:
            optimizer = self.divergence.key.startswith(OPTIMIZER_PREFIX) or self.optimizer_unbuilt_at_load
            words.append("optimizer, diverged" if optimizer else "diverged")
        if self.blew_up:
            words.append("training reached NaN")
        if self.epoch_mismatch:
            words.append("epoch not restored")
        if self.steps_run is not None:
            words.append("trained fewer steps")
        return words

    def summary(self) -> str:
        if self.ok:
            return f"{self.factory} [{self.format}]: resuming equals not stopping"
        if self.divergence:
            d = self.divergence
            return f"{self.factory} [{self.format}]: resumed training diverged at step {d.step} ({d.display})"
        if self.blew_up:
            return f"{self.factory} [{self.format}]: training that never stopped reached NaN or inf"
        if self.epoch_mismatch:
            got, saved = self.epoch_mismatch
            return f"{self.factory} [{self.format}]: fit would go on from epoch {got}, not {saved}"
        if self.steps_run is not None:
            return f"{self.factory} [{self.format}]: the resumed fit trained {self.steps_run} of {self.steps} steps"
        error = self.save_error or self.load_error or self.train_error
        return f"{self.factory} [{self.format}]: {error[0] if error else 'failed'}"


def synthetic_batches(model: Any, steps: int) -> list[Batch]:
    """Deterministic (x, y) batches from the model's input specs and compiled loss."""
    batches = []
    for step in range(steps):
        # On the scale of normalized data: the probe's far-out samples blow up training.
        x = probe.probe_inputs(model, batch=BATCH, seed=1000 + step, far_out=False)
        batch = len(nested.leaves(x)[0])
        y = _targets(model, x, batch, np.random.default_rng(2000 + step))
        batches.append((x, y))
    return batches


def _targets(model: Any, x: Any, batch: Any, rng: Any) -> Any:
    outputs = probe.outputs(model, x)
    losses = model.loss if isinstance(model.loss, (list, tuple)) else [model.loss] * len(outputs)
    ys = []
    for out, loss in zip(outputs.values(), losses):
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


class _Trainer:
    """The reference run's optimizers, one per trainable set, kept with their initial values.

    Keras traces its train function for one optimizer and one trainable set;
    switching either means tracing again, which costs more than the steps.
    So an optimizer is built once per trainable set and put back to its
    initial values for the next example, and the train function is traced
    again only when the optimizer in use changes.
    """

    def __init__(self, tree: LayerTree) -> None:
        self.tree = tree
        self._built: dict[frozenset[str], tuple[Any, list[Any], list[np.ndarray]]] = {}
        self._current: Any = None
        # A factory that built its optimizer trains with it while the trainable set is the one it
        # was built for (Keras refuses others); then training goes on as after compile().
        built = prebuilt_keys(tree)
        self._prebuilt = frozenset(built) if built is not None else None

    def start(self) -> list[Any]:
        """Under the current mask: a fresh optimizer state and a train function for it; its slots."""
        model = self.tree.model
        key = trainable_keys(self.tree)
        if key == self._prebuilt and key not in self._built:
            self._built[key] = (model.optimizer, slots_of(self.tree), [read(v) for v in model.optimizer.variables])
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
        # The train function is traced for one optimizer and one trainable set.
        current = (id(optimizer), trainable_keys(self.tree))
        if self._current != current:
            model.make_train_function(force=True)
            self._current = current
        return slots


def _checked_batches(model: Any, batches: Any, steps: int) -> list[Batch]:
    """The user's ``data``, proven usable by one training step before any check (the model is
    put back afterwards), so a bad batch is one clear error."""
    batches = list(batches)
    if len(batches) < 2 * steps or not all(isinstance(b, (tuple, list)) and len(b) == 2 for b in batches):
        raise ConfigError(f"data must be a list of at least {2 * steps} (x, y) batches (2 x steps={steps}); "
                          f"got {len(batches)} item(s) of type(s) "
                          f"{', '.join(sorted({type(b).__name__ for b in batches})) or 'none'}")
    before = snapshot(model)
    try:
        with framework_chatter():
            fit_steps(model, [tuple(batches[0])])  # type: ignore[list-item]
    except Exception as exc:
        raise ConfigError(f"data: the model cannot train on the first (x, y) batch: "
                          f"{type(exc).__name__}: {str(exc)[:300]}") from None
    finally:
        restore(model, before)
    return [tuple(b) for b in batches]  # type: ignore[misc]


def _has_trainable(tree: LayerTree) -> Callable[[FreezeMask], bool]:
    """Whether a mask leaves any variable trainable (training with none proves nothing)."""
    owners: list[tuple[int, ...]] = []
    trainable = {id(v) for v in tree.model.trainable_variables}
    for node in tree.nodes:
        owners += [node.index_path for w in compat.own_weights(node.layer) if id(w) in trainable]
    return lambda mask: any(not frozen_by(mask, path) for path in owners)


def _to_loader_key(key: str, to_loader: dict[str, str]) -> str:
    """A saving-side state key (a variable's, or an optimizer slot's) as the loading side keys it."""
    if key in to_loader:
        return to_loader[key]
    if key.startswith(OPTIMIZER_PREFIX) and "/" in key:
        owner, kind = key.removeprefix(OPTIMIZER_PREFIX).rsplit("/", 1)
        return f"{OPTIMIZER_PREFIX}{to_loader.get(owner, owner)}/{kind}"
    return key


class ResumeRun:
    """A compiled factory's pair and one format; ``run`` does one example."""

    def __init__(self, pair: ModelPair, format_name: str, workdir: Path, steps: int = STEPS,
                 batches: list[Batch] | None = None) -> None:
        if not is_compiled(pair.saver.model):
            raise NotCompiled(f"model factory {pair.name} returns a model that is not compiled: a "
                              "resume check trains it; call model.compile(...) in the factory")
        self.pair, self.format_name, self.workdir, self.steps = pair, format_name, workdir, steps
        backend = pair.backend()
        self.save_format = get_format(format_name, pair.save_framework, backend)
        self.load_format = get_format(format_name, pair.load_framework, backend)
        refuse_adapters_only(self.save_format, "a resume check")
        self.batches = (synthetic_batches(pair.saver.model, 2 * steps) if batches is None
                        else _checked_batches(pair.saver.model, batches, steps))
        self._initial = snapshot(pair.saver.model)
        self._trainer = _Trainer(pair.saver)
        self.has_trainable = _has_trainable(pair.saver)

    def run(self, save_mask: FreezeMask, load_mask: FreezeMask) -> ResumeResult:
        new_model = self.load_format.loads_new_model
        load_mask = save_mask if new_model else load_mask
        result = ResumeResult(self.pair.label, self.format_name, self.pair.framework, save_mask,
                              load_mask, self.steps, new_model=new_model)
        directory = Path(tempfile.mkdtemp(prefix="resume", dir=self.workdir))
        try:
            path = self.save_format.path_in(directory)
            reference = self._reference(save_mask, load_mask, path, result)
            if reference is None:
                return result
            result.blew_up = _first_non_finite(reference)
            if result.blew_up:
                return result  # all-NaN runs agree whatever was restored: that proves nothing
            self._resumed(path, load_mask, reference, result)
            return result
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _reference(self, save_mask: FreezeMask, load_mask: FreezeMask, path: Path,
                   result: ResumeResult) -> list[dict[str, tuple[str, np.ndarray]]] | None:
        """Train under S and save; then go on under L without stopping: the state after each step."""
        saver = self.pair.saver
        restore(saver.model, self._initial)
        with framework_chatter(), masked(saver, save_mask):
            phase_one = self._trainer.start()
            trained_first = trainable_keys(saver)
            fit_steps(saver.model, self.batches[:self.steps])
            try:
                self.save_format.save(saver.model, path)
            except Exception as exc:
                result.save_error = describe(exc)
                return None
        self._rng_state = [read(v) for v in rng_variables(saver.model)]
        reference: list[dict[str, tuple[str, np.ndarray]]] = []
        with framework_chatter(), masked(saver, load_mask):
            if trainable_keys(saver) != trained_first:
                carried = {slot.key: read(slot.variable) for slot in phase_one}
                for slot in self._trainer.start():
                    if slot.key in carried:
                        slot.variable.assign(carried[slot.key])
            def record(step: int) -> bool:
                reference.append(state(saver))
                return False  # never stops: the reference trains every step

            fit_steps(saver.model, self.batches[self.steps:], record)
        return reference

    def _resumed(self, path: Path, load_mask: FreezeMask, reference: list[dict[str, tuple[str, np.ndarray]]],
                 result: ResumeResult) -> None:
        """The loading side loads under L and trains the same steps; the first step that differs."""
        to_loader = self.pair.to_loader
        expected = [{_to_loader_key(k, to_loader): fingerprint(v) for k, (_, v) in step.items()}
                    for step in reference]
        # The saver trained one epoch and saved at its end: fit goes on from epoch 1.
        epoch = 1 if self.load_format.restores_epoch else None
        request = ResumeRequest(str(path), self.format_name, self.pair.loader_paths(load_mask),
                                self.batches[self.steps:], self._rng_state, expected, epoch)
        report = self.pair.loader.call("resume", self.pair.handle, request)
        result.load_error, result.train_error, result.warnings = report.error, report.train_error, report.warnings
        # A format whose load builds the optimizer first (BackupAndRestore) met none unbuilt.
        result.optimizer_unbuilt_at_load = report.optimizer_unbuilt_at_load and not self.load_format.builds_optimizer
        if report.error is not None:
            return
        if epoch is not None and report.epoch != epoch:
            result.epoch_mismatch = (report.epoch, epoch)
            return
        if report.step is None:
            if report.train_error is None and report.steps_run < self.steps:
                result.steps_run = report.steps_run  # a pass would prove nothing about the rest
            return
        from_loader = {_to_loader_key(k, to_loader): k for k in reference[0]}
        expected_step = reference[report.step - 1]
        details = []
        for loader_key, value in report.differing.items():
            key = from_loader.get(loader_key, loader_key)
            display, want = expected_step.get(key, (key, None))
            details.append(Divergence(report.step, key, display, _detail(want, value)))
        result.divergence, result.diverged = (details[0] if details else None), report.count
        again = self.pair.loader.call("resume", self.pair.handle, request)
        # Two loads of one file that already differ lost state (fresh initial values), whatever training does.
        result.load_lost_state = again.loaded != report.loaded
        result.nondeterministic = again.digests != report.digests and not result.load_lost_state


def _detail(expected: np.ndarray | None, got: np.ndarray | None) -> str:
    if expected is None or got is None:
        return "missing from the " + ("resumed model" if got is None else "run that never stopped")
    if got.shape != expected.shape:
        return f"shape {got.shape} vs {expected.shape}"
    if expected.dtype.kind in "fc":
        with np.errstate(all="ignore"):
            return f"max |difference| {np.nanmax(np.abs(got.astype(float) - expected.astype(float))):.6g}"
    return f"{got.ravel()[:3].tolist()}... vs {expected.ravel()[:3].tolist()}..."


def _first_non_finite(states: Any) -> Divergence | None:
    for step, at_step in enumerate(states, 1):
        for key, (display, value) in at_step.items():
            if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
                return Divergence(step, key, display, "NaN or inf")
    return None


def check_resume(factory: Callable[[], Any] | str, format_name: str, *, examples: int, seed: int | None = None,
                 masks: str = "independent", tmp_root: str | Path | None = None, steps: int = STEPS,
                 batches: list[Batch] | None = None, scenario: tuple[list[str], list[str]] | None = None,
                 isolation: Isolation = Isolation.PROCESS) -> CheckOutcome:
    """The resume check of one compiled factory in one format (see the module docstring).

    ``scenario`` = (layers frozen at save, layers frozen at load), as name
    paths: exactly that pair is checked instead of the fixed and drawn ones
    (say "base frozen, then the top of the base unfrozen").
    """
    from pytest_ckpt.framework.tempfiles import workdir
    from pytest_ckpt.search import driver
    from pytest_ckpt.search.fixed_pairs import fixed_pairs, split
    from pytest_ckpt.search.strategies import mask_pairs

    with ModelPair(factory, isolation=isolation) as pair, workdir(tmp_root) as wd:
        run = ResumeRun(pair, format_name, wd, steps=steps, batches=batches)
        usable = lambda p: run.has_trainable(p[0]) and run.has_trainable(p[1])  # noqa: E731
        if scenario is not None:
            fixed = [tuple(FreezeMask.from_names(pair.saver, names) for names in scenario)]
            draws = 0
        elif prebuilt_keys(pair.saver) is not None:
            # An optimizer the factory built trains the variables it was built for and no
            # others (Keras refuses them): the freeze state the factory returned is the one.
            fixed, draws = [(current_mask(pair.saver), current_mask(pair.saver))], 0
        else:
            fixed = [p for p in fixed_pairs(pair.saver, pair.saver, masks, limit=RESUME_FIXED_PAIRS) if usable(p)]
            draws = examples
        found = driver.search(lambda masks: run.run(*masks), fixed=[{"masks": p} for p in fixed],
                              strategies={"masks": mask_pairs(pair.saver, policy=masks).filter(usable)},
                              examples=max(draws, 1), seed=seed, generate=bool(draws),
                              smaller=lambda kw: [{"masks": p} for p in split(kw["masks"]) if usable(p)])
    return CheckOutcome(format_name, seed, found.examples_run, found.failure,
                        not_reproducible=found.not_reproducible, others=found.others,
                        isolation_note=pair.isolation_note)


# Each resume example trains 2 x steps steps: fewer fixed pairs than a round trip.
RESUME_FIXED_PAIRS = 16
