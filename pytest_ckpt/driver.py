"""The one Hypothesis driver: fixed examples first, then drawn ones, shrunk to the minimal failure.

Every check of the project (round trips, migrations, goldens) is "run this
example; it fails if the result is not ok".  The driver runs the fixed
examples (explicit ``@example``s, already minimal by construction, so never
shrunk), then lets Hypothesis draw ``examples`` more and shrink a failure.
Plain Python: pytest is not needed, Hypothesis is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, example, given, seed as hypothesis_seed, settings
from hypothesis.errors import Flaky


class _Failed(AssertionError):
    def __init__(self, result):
        super().__init__(getattr(result, "summary", lambda: repr(result))())
        self.result = result


@dataclass
class Search:
    """What the search found: the minimal failing result (or None) and how it got there."""

    failure: object | None
    examples_run: int
    # The failure did not come back when its example ran again.
    not_reproducible: bool = False


def search(run: Callable[..., object], *, fixed: list[dict], strategies: dict, examples: int,
           seed: int | None, generate: bool = True,
           smaller: Callable[[dict], list[dict]] | None = None) -> Search:
    """Run ``run(**kwargs)`` (returning a result with ``.ok``) on the fixed
    examples, then on ``examples`` drawn from ``strategies``.

    With ``generate=False`` only the fixed examples run.  A fixed example
    may combine several small ones (see :func:`pytest_ckpt.fixed_pairs.split`):
    when it fails, ``smaller(kwargs)`` lists those, and the first of them
    that fails is reported instead.  Settings on top of
    the user's profile: no example database (nothing is
    written outside the temp dir; reproduce by seed), no deadline (saves are
    slow), and no explain phase, which re-runs a failure once per boolean of
    the masks (hundreds of saves) to say what the report already says.
    """
    seen = []
    count = 0

    def check(**kwargs):
        nonlocal count
        count += 1
        result = run(**kwargs)
        if not result.ok:
            seen.append((kwargs, result))
            raise _Failed(result)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        report_multiple_bugs=False,
        # The fixed examples are the guarantee against flaky misses: always run.
        phases=[p for p in Phase if p is not Phase.explain
                and (p is Phase.explicit or (generate and p in settings.default.phases))],
        suppress_health_check=list(HealthCheck),
    )
    @given(**strategies)
    def property_(**kwargs):
        check(**kwargs)

    for kwargs in reversed(fixed):  # @example runs in the order written, outermost first
        property_ = example(**kwargs)(property_)
    if seed is not None:
        property_ = hypothesis_seed(seed)(property_)
    try:
        property_()
    except _Failed as failed:
        # A fixed example's failure is reported as it happened, unshrunk and
        # unreplayed; replay it once, so a flaky save is told apart.
        kwargs, result = seen[-1]
        if len(seen) == 1:
            for part in (smaller(kwargs) if smaller else []):
                count += 1
                found = run(**part)
                if not found.ok:
                    kwargs, result = part, found
                    break
            if run(**kwargs).ok:
                return Search(result, count, not_reproducible=True)
        return Search(result, count)
    except Flaky:
        # Hypothesis shrank a failure that its final replay could not repeat.
        return Search(seen[0][1], count, not_reproducible=True)
    return Search(None, count)
