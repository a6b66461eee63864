"""The property: every variable survives save/load under any pair of freeze masks.

Hypothesis draws a save mask and a load mask, shrinks a failure to the
minimal pair, and the check hands back that pair's result.  Plain Python:
pytest is not needed, Hypothesis is.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from pytest_ckpt.engine import ModelPair, RoundTrip
from pytest_ckpt.errors import RoundTripFailure
from pytest_ckpt.result import RoundTripResult
from pytest_ckpt.strategies import freeze_masks


@dataclass
class PropertyOutcome:
    """How a check ended: ``failure`` is the minimal failing round trip, if any."""

    format: str
    seed: int | None
    examples_run: int
    failure: RoundTripResult | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None


def choose_seed(forced=None) -> int | None:
    """The seed a check runs with: ``--hypothesis-seed`` if given, else a fresh one.

    Choosing it here rather than letting Hypothesis do so lets every report
    print the seed that reproduces it.  An explicit seed wins even over a
    derandomized profile (as ``@seed`` does in Hypothesis); without one, a
    derandomized profile (Hypothesis loads its "ci" profile when ``CI`` is
    set) is already reproducible and needs none.
    """
    if forced is not None:
        return forced
    if settings.default.derandomize:
        return None
    return random.SystemRandom().getrandbits(32)


def find_failure(check, strategies: dict, *, examples: int, seed, failure: type[Exception]):
    """Run ``check(**drawn)`` for Hypothesis-drawn arguments; the minimal ``failure`` raised, or None.

    Every check of the project runs under these settings on top of the user's
    profile: reproduce by seed (an example database would write outside the
    temp dir), no deadline (saves are slow), and no explain phase, which
    re-runs a failure for every boolean of the masks (hundreds of saves) to
    say what the reports already say.
    """

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        report_multiple_bugs=False,
        phases=[p for p in settings.default.phases if p is not Phase.explain],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.large_base_example],
    )
    @given(**strategies)
    def run(**drawn):
        check(**drawn)

    if seed is not None:
        run = hypothesis_seed(seed)(run)
    try:
        run()
    except failure as exc:
        return exc
    return None


def check_format(
    pair: ModelPair,
    format_name: str,
    *,
    examples: int,
    seed: int | None = None,
    tmp_root: str | Path | None = None,
) -> PropertyOutcome:
    """Run the property for one model pair and format; never raises on a failing round trip."""
    workdir = Path(tempfile.mkdtemp(prefix="pytest-ckpt-", dir=tmp_root))
    try:
        engine = RoundTrip(pair, format_name, workdir)
        # Drawn on each side's own tree: a migration's two models differ.
        save_masks = freeze_masks(pair.saver)
        load_masks = save_masks if not pair.is_migration else freeze_masks(pair.loader)

        def every_variable_survives(save_mask, load_mask):
            result = engine.run(save_mask, load_mask)
            if not result.ok:
                raise RoundTripFailure(result)

        failure = find_failure(every_variable_survives,
                               {"save_mask": save_masks, "load_mask": load_masks},
                               examples=examples, seed=seed, failure=RoundTripFailure)
        return PropertyOutcome(format_name, seed, engine.examples_run,
                               failure.result if failure else None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
