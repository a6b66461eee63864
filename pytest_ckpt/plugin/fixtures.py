"""Fixtures for ordinary tests in ML repositories.

Registered through ``pytest_plugins`` in :mod:`pytest_ckpt.plugin`, so
``-p no:ckpt`` removes them too.  Nothing heavy is imported until a fixture
is used.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import pytest

from pytest_ckpt.errors import CkptError
from pytest_ckpt.plugin.session import SESSION_KEY, reproduce_line

if TYPE_CHECKING:
    from pytest_ckpt.checks.outcomes import CheckOutcome



def _fail(message: str) -> None:
    """pytest.fail from inside an ``except`` block, without the exception it replaces:
    chained, pytest would print the message twice."""
    try:
        pytest.fail(message, pytrace=False)
    except pytest.fail.Exception as failed:
        raise failed from None

class _Checker:
    """What the round-trip, migration and resume fixtures share: one check runner."""

    def __init__(self, request: Any) -> None:
        self._request = request
        self._state = request.config.stash[SESSION_KEY]
        self._calls = 0

    def _check(self, factory: Any, load_factory: Any, *, formats: Any, examples: Any, masks: Any,
               resume: dict | None = None) -> list[CheckOutcome]:
        __tracebackhide__ = True
        from pytest_ckpt.checks.resume import check_resume
        from pytest_ckpt.checks.roundtrip import check_format
        from pytest_ckpt.errors import ConfigError
        from pytest_ckpt.framework.formats import applicable, get_format, is_user_format, parse_format_list
        from pytest_ckpt.plugin.options import parse_examples, parse_masks
        from pytest_ckpt.report.diagnosis import render, render_resume

        settings = self._state.settings
        self._calls += 1
        try:
            if settings.blocked:
                raise ConfigError("; ".join(settings.errors))
            examples = parse_examples(examples) if examples is not None else settings.examples
            masks = parse_masks(masks) if masks is not None else settings.masks
            frameworks, backend = _frameworks(factory, load_factory)
            migration = load_factory is not None
            if formats is not None:
                names = parse_format_list([formats] if isinstance(formats, str) else formats)
                for name in names:
                    for framework in frameworks:
                        get_format(name, framework, backend)  # raises, naming what applies
            else:
                names = [n for n in settings.formats if is_user_format(n)
                         or all(n in applicable(fw, backend, migration=migration) for fw in frameworks)]
            outcomes = []
            for name in names:
                seed = self._state.seed_for(f"{self._request.node.nodeid}#{self._calls}#{name}")
                if resume is not None:
                    outcomes.append(check_resume(factory, name, examples=examples, seed=seed,
                                                 masks=masks, tmp_root=settings.tmpdir,
                                                 isolation=settings.isolation, **resume))
                else:
                    outcomes.append(check_format(factory, name, examples=examples, seed=seed,
                                                 masks=masks, load_factory=load_factory,
                                                 tmp_root=settings.tmpdir, isolation=settings.isolation))
        except CkptError as exc:
            _fail(str(exc))
        failed = [o for o in outcomes if not o.passed]
        if failed:
            reproduce = reproduce_line([shlex.quote(self._request.node.nodeid)], self._state.seed)
            show = render_resume if resume is not None else render
            pytest.fail("\n\n".join(show(cast(Any, o.failure), seed=self._state.seed, reproduce=reproduce,
                                         not_reproducible=o.not_reproducible, others=o.others,
                                         notes=[o.isolation_note] if o.isolation_note else ())
                                    for o in failed), pytrace=False)
        return outcomes


def _frameworks(factory: Any, load_factory: Any) -> tuple[set[str], str]:
    """The frameworks of the two models, from the factories' modules' source when
    it tells, else from one build; and the backend."""
    from pytest_ckpt.framework.detection import backend_of, framework_from_source, framework_of
    from pytest_ckpt.framework.factories import as_callable, build

    found: set[str] = set()
    for f in (factory, load_factory or factory):
        module = f.partition(":")[0] if isinstance(f, str) else getattr(f, "__module__", "")
        framework = framework_from_source(module) if module else None
        if framework is None:
            framework = framework_of(build(*as_callable(f)))
        found.add(framework or "keras3")
    return found, backend_of(next(iter(found)))


class RoundTripChecker(_Checker):
    """``ckpt_roundtrip.check(factory, *, formats=None, examples=None, masks=None)``.

    Runs the round-trip check of ``factory`` (a zero-argument callable
    returning a new, built model, or a ``"module:callable"`` string) in each
    format, and fails the test with the report of every failing format.
    Returns one :class:`~pytest_ckpt.checks.outcomes.CheckOutcome` per format.
    """

    def check(self, factory: Callable | str, *, formats: str | Sequence[str] | None = None,
              examples: int | None = None, masks: str | None = None) -> list[CheckOutcome]:
        return self._check(factory, None, formats=formats, examples=examples, masks=masks)

    __call__ = check


class MigrationChecker(_Checker):
    """``ckpt_migration.check(old_factory, new_factory, *, formats=None, examples=None, masks=None)``."""

    def check(self, old_factory: Callable | str, new_factory: Callable | str, *,
              formats: str | Sequence[str] | None = None, examples: int | None = None,
              masks: str | None = None) -> list[CheckOutcome]:
        return self._check(old_factory, new_factory, formats=formats, examples=examples, masks=masks)

    __call__ = check


class ResumeChecker(_Checker):
    """``ckpt_resume.check(factory, *, formats=None, examples=None, masks=None, steps=3,
    data=None, save_frozen=None, load_frozen=None)``.

    Training resumed from a checkpoint must equal training that never
    stopped (see :mod:`pytest_ckpt.checks.resume`).  ``data`` is a list of ``(x, y)``
    batches (at least ``2 * steps``) from your own training setup; by default
    synthetic batches are made from the model's specs.  ``save_frozen`` and
    ``load_frozen`` (layer name paths) check exactly that scenario.
    """

    def check(self, factory: Callable | str, *, formats: str | Sequence[str] | None = None,
              examples: int | None = None, masks: str | None = None, steps: int = 3,
              data: Sequence | None = None, save_frozen: Sequence[str] | None = None,
              load_frozen: Sequence[str] | None = None) -> list[CheckOutcome]:
        scenario = None
        if save_frozen is not None or load_frozen is not None:
            scenario = (list(save_frozen or ()), list(load_frozen or ()))
        return self._check(factory, None, formats=formats, examples=examples, masks=masks,
                           resume=dict(steps=steps, batches=list(data) if data is not None else None,
                                       scenario=scenario))

    __call__ = check


@pytest.fixture
def ckpt_resume(request: Any) -> ResumeChecker:
    """Check that training resumed from a checkpoint equals training that never stopped.

    ``ckpt_resume.check(factory, formats="keras-weights", save_frozen=["base"],
    load_frozen=["base/conv1"])``; the factory returns a new, compiled model.
    """
    return ResumeChecker(request)


@pytest.fixture
def ckpt_roundtrip(request: Any) -> RoundTripChecker:
    """Check that a model factory's checkpoints survive any freeze masks.

    ``ckpt_roundtrip.check(factory, formats=["h5"], examples=10)``; ``factory``
    is a zero-argument callable (or a "module:callable" string) returning a
    new, built model.  Each check works in a fresh temporary directory.
    """
    return RoundTripChecker(request)


@pytest.fixture
def ckpt_migration(request: Any) -> MigrationChecker:
    """Check that checkpoints of an old model load into its port, every variable in place.

    ``ckpt_migration.check(old_factory, new_factory, formats=None, examples=None)``:
    saves with the old model (say tf-keras) under freeze masks, loads into the
    new one (say Keras 3) under others, and compares every variable by
    architecture position.  Formats default to those both frameworks read
    (legacy ``h5``, ``h5-by-name``) among the configured ones.
    """
    return MigrationChecker(request)


@pytest.fixture(scope="session")
def ckpt_models() -> dict[str, Callable]:
    """The built-in model factories by name (``ckpt_models["classic_nested"]``)."""
    from pytest_ckpt import models

    return {f.__name__: f for f in (*models.BUILTIN, *models.COMPILED, models.resnet50_nested)}


@pytest.fixture(scope="session")
def ckpt_tf_keras_models() -> dict[str, Callable]:
    """The tf-keras builds of the built-in models by name (needs tf-keras installed)."""
    from pytest_ckpt import tf_keras_models

    return {f.__name__: f for f in tf_keras_models.BUILTIN}


class RegressionChecker:
    """``ckpt_regression.check(model, *, format=None, name=None, values="distinct",
    examples=None, masks=None, rtol=None, atol=None)``.

    With ``--ckpt-update`` it writes the golden; otherwise it loads it into
    ``model`` as the test built it and fails the test with the report of any
    mismatch.  Variables are compared exactly; outputs within a tolerance
    derived from the compute dtype and the outputs' scale (``rtol``/``atol``
    replace it).  ``masks="independent"`` also loads under drawn freeze masks.
    """

    def __init__(self, request: Any) -> None:
        self._request = request
        self._state = request.config.stash[SESSION_KEY]
        self._count = 0

    def check(self, model: Any, *, format: str | None = None, name: str | None = None,
              values: str = "distinct", examples: int | None = None, masks: str | None = None,
              rtol: float | None = None, atol: float | None = None) -> None:
        __tracebackhide__ = True
        from pytest_ckpt.framework.detection import TF_KERAS, framework_of
        from pytest_ckpt.golden.check import check_arguments, check_golden, write_golden
        from pytest_ckpt.golden.store import GoldenFolder, golden_location
        from pytest_ckpt.plugin.options import parse_examples, parse_masks

        try:
            check_arguments(format=format, name=name, values=values, examples=examples, masks=masks,
                            rtol=rtol, atol=atol)
        except CkptError as exc:
            _fail(str(exc))
        settings = self._state.settings
        self._count += 1
        node = self._request.node
        label = name if name is not None else f"check-{self._count}"
        names = [n.name for n in node.listchain() if isinstance(n, (pytest.Class, pytest.Function))]
        folder = GoldenFolder(golden_location(node.path, settings.golden_dir, names, label))
        owner = f"{node.nodeid}, check {self._count}" + (f" (name={name!r})" if name is not None else "")
        seed = self._state.seed_for(f"{node.nodeid}#{self._count}")
        try:
            taken = self._state.golden_folders.setdefault(str(folder.path).casefold(), owner)
            if taken != owner:
                pytest.fail(f"two golden checks map to one folder {folder.path}: {taken} and {owner}; "
                            "give one of them another name=...", pytrace=False)
            if framework_of(model) is None:
                pytest.fail(f"ckpt_regression.check: expected a Keras model, got "
                            f"{type(model).__module__}.{type(model).__qualname__}", pytrace=False)
            if settings.update:
                fmt = format or ("h5" if framework_of(model) == TF_KERAS else "keras-weights")
                write_golden(model, folder, fmt, values=values, tmp_root=settings.tmpdir)
                return
            if not folder.exists():
                pytest.fail(f"no golden checkpoint at {folder.path} for this check; create it with "
                            "pytest --ckpt-update (a run without it never writes goldens)",
                            pytrace=False)
            examples = parse_examples(examples) if examples is not None else settings.examples
            # A golden asks whether the model as built loads it: drawn masks only when asked.
            masks = parse_masks(masks) if masks is not None else None
            mismatch = check_golden(model, folder, format_name=format, examples=examples, seed=seed,
                                    masks=masks, rtol=rtol, atol=atol, tmp_root=settings.tmpdir)
        except CkptError as exc:
            _fail(str(exc))
        if mismatch is not None:
            reproduce = reproduce_line([shlex.quote(node.nodeid)], self._state.seed)
            pytest.fail(mismatch.render(seed=self._state.seed, reproduce=reproduce), pytrace=False)


@pytest.fixture
def ckpt_regression(request: Any) -> Any:
    """Regression test against a stored, known-good checkpoint ("golden").

    ``ckpt_regression.check(model)``: with ``--ckpt-update`` it writes the
    golden beside the test module (``<golden_dir>/<module>/<Class>/<test>/<check>/``);
    later runs load it into ``model`` as the test built it and compare every
    variable exactly and the outputs on a fixed probe within tolerance.
    Models the test and its fixtures build get the auto-generated names a
    fresh process would give, so by-name goldens do not depend on which tests
    ran before (the plugin's ``pytest_runtest_setup`` resets the counters
    before the first fixture).
    """
    from pytest_ckpt.plugin.session import FRESH_NAMES_KEY

    if FRESH_NAMES_KEY in request.node.stash:
        yield RegressionChecker(request)
        return
    # Requested with getfixturevalue: the plugin could not know in time.
    from pytest_ckpt.framework.compat import fresh_process_names

    with fresh_process_names():
        yield RegressionChecker(request)
