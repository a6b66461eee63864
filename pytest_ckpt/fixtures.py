"""Fixtures for ordinary tests in ML repositories.

Registered through ``pytest_plugins`` in :mod:`pytest_ckpt.plugin`, so
``-p no:ckpt`` removes them too.  Nothing heavy is imported until a fixture
is used.
"""

from __future__ import annotations

import pytest

from pytest_ckpt.errors import CkptError
from pytest_ckpt.options import hypothesis_seed
from pytest_ckpt.state import STATE_KEY


class RoundTripChecker:
    """``check(factory, formats=..., examples=...)``: fails the test with the report.

    With ``load_factory`` it is a migration check: save with ``factory``,
    load into ``load_factory``.  Formats left out default to the configured
    ones that apply to both models' frameworks.
    """

    def __init__(self, config):
        self._config = config
        self._state = config.stash[STATE_KEY]

    def check(self, factory, load_factory=None, formats=None, examples=None, seed=None):
        from pytest_ckpt.formats import MIGRATION_FORMATS, format_names, get_format, parse_format_list
        from pytest_ckpt.options import parse_examples
        from pytest_ckpt.property import check_format, choose_seed
        from pytest_ckpt.report import render

        settings = self._state.settings
        try:
            examples = parse_examples(examples) if examples is not None else settings.examples
            pair = self._state.pairs.get(factory, load_factory)
            frameworks = {pair.save_framework, pair.load_framework}
            if formats is not None:
                names = parse_format_list(formats)
                for name, fw in ((n, fw) for n in names for fw in frameworks):
                    get_format(name, fw)  # raises, naming the formats that do apply
            else:
                names = [n for n in settings.formats
                         if all(n in format_names(fw) for fw in frameworks)
                         and (load_factory is None or n in MIGRATION_FORMATS)]
        except CkptError as exc:
            pytest.fail(str(exc), pytrace=False)
        seed = choose_seed(seed if seed is not None else hypothesis_seed(self._config))
        outcomes = [
            check_format(pair, name, examples=examples, seed=seed, tmp_root=settings.tmpdir)
            for name in names
        ]
        failed = [o for o in outcomes if not o.passed]
        if failed:
            pytest.fail(
                "\n\n".join(render(o.failure, seed=seed, reproduce=f"--hypothesis-seed={seed}")
                            for o in failed),
                pytrace=False,
            )
        return outcomes


@pytest.fixture
def ckpt_roundtrip(request) -> RoundTripChecker:
    """Check that a model factory's checkpoints survive any freeze masks.

    ``ckpt_roundtrip(factory, formats=["h5"], examples=10)``; ``factory`` is a
    zero-argument callable (or a "module:callable" string) returning a new,
    built model.  Each check works in a fresh temporary directory.
    """
    return RoundTripChecker(request.config).check


@pytest.fixture
def ckpt_migration(request):
    """Check that checkpoints of an old model load into its port, every variable in place.

    ``ckpt_migration(old_factory, new_factory, formats=None, examples=None)``:
    saves with the old model (say tf-keras) under random freeze masks, loads
    into the new one (say Keras 3) under others, and compares every variable
    by architecture position.  Formats default to those both frameworks read
    (legacy ``h5``, ``h5-by-name``) among the configured ones.
    """
    checker = RoundTripChecker(request.config)

    def ckpt_migration(old_factory, new_factory, formats=None, examples=None, seed=None):
        return checker.check(old_factory, new_factory, formats=formats, examples=examples, seed=seed)

    return ckpt_migration


@pytest.fixture(scope="session")
def ckpt_models():
    """The built-in model factories by name (``ckpt_models["classic_nested"]``)."""
    from pytest_ckpt import models

    return {f.__name__: f for f in (*models.BUILTIN, models.resnet50_nested)}


@pytest.fixture(scope="session")
def ckpt_tf_keras_models():
    """The tf-keras builds of the built-in models by name (needs tf-keras installed)."""
    from pytest_ckpt import tf_keras_models

    return {f.__name__: f for f in tf_keras_models.BUILTIN}


class RegressionChecker:
    """``ckpt_regression.check(model, format=None, examples=None, rtol=1e-6, atol=1e-6)``."""

    def __init__(self, request):
        self._request = request
        self._state = request.config.stash[STATE_KEY]
        self._count = 0

    def check(self, model, format=None, examples=None, rtol: float = 1e-6, atol: float = 1e-6):
        from pytest_ckpt.factories import framework_of
        from pytest_ckpt.formats import TF_KERAS
        from pytest_ckpt.golden import GoldenFolder, golden_path
        from pytest_ckpt.options import parse_examples
        from pytest_ckpt.property import choose_seed
        from pytest_ckpt.regression import check_golden, write_golden

        settings = self._state.settings
        self._count += 1
        node = self._request.node
        folder = GoldenFolder(golden_path(node.path, settings.golden_dir, node.name, self._count))
        try:
            if settings.update:
                fmt = format or ("h5" if framework_of(model) == TF_KERAS else "keras-weights")
                write_golden(model, folder, fmt)
                return
            if not folder.exists():
                pytest.fail(f"no golden checkpoint at {folder.path} for this check; create it with "
                            "pytest --ckpt-update (a run without it never writes goldens)",
                            pytrace=False)
            examples = parse_examples(examples) if examples is not None else settings.examples
            seed = choose_seed(hypothesis_seed(self._request.config))
            mismatch = check_golden(model, folder, examples=examples, seed=seed, rtol=rtol, atol=atol)
        except CkptError as exc:
            pytest.fail(str(exc), pytrace=False)
        if mismatch is not None:
            pytest.fail(mismatch.render(seed=seed), pytrace=False)


@pytest.fixture
def ckpt_regression(request) -> RegressionChecker:
    """Regression test against a stored, known-good checkpoint ("golden").

    ``ckpt_regression.check(model)``: with ``--ckpt-update`` it writes the
    golden beside the test module (``<golden_dir>/<module>/<test>[-N]/``);
    later runs load it into ``model`` under random freeze masks and compare
    every variable exactly and the outputs on a fixed probe within tolerance.
    """
    return RegressionChecker(request)
