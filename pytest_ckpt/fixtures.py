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
    """``ckpt_roundtrip(factory, formats=..., examples=...)``: fails the test with the report."""

    def __init__(self, config):
        self._config = config
        self._state = config.stash[STATE_KEY]

    def __call__(self, factory, formats=None, examples: int | None = None, seed=None):
        from pytest_ckpt.formats import get_format, parse_format_list
        from pytest_ckpt.options import parse_examples
        from pytest_ckpt.property import check_format, choose_seed
        from pytest_ckpt.report import render

        settings = self._state.settings
        try:
            names = parse_format_list(formats) if formats is not None else settings.formats
            fmts = [get_format(n) for n in names]
            examples = parse_examples(examples) if examples is not None else settings.examples
            pair = self._state.pairs.get(factory)
        except CkptError as exc:
            pytest.fail(str(exc), pytrace=False)
        seed = choose_seed(seed if seed is not None else hypothesis_seed(self._config))
        outcomes = [
            check_format(pair, fmt, examples=examples, seed=seed, tmp_root=settings.tmpdir)
            for fmt in fmts
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
    return RoundTripChecker(request.config)


@pytest.fixture(scope="session")
def ckpt_models():
    """The built-in model factories by name (``ckpt_models["classic_nested"]``)."""
    from pytest_ckpt import models

    return {f.__name__: f for f in (*models.BUILTIN, models.resnet50_nested)}
