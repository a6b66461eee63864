"""The one Hypothesis driver: fixed examples first, then drawn ones, shrunk to the minimal failure.

Every check of the project (round trips, migrations, resume, goldens) is
"run this example; it fails if the result is not ok".  The driver runs the
fixed examples (already minimal by construction, so never shrunk), then lets
Hypothesis draw ``examples`` more and shrink a failure.

The report leads with the most dangerous failure.  A load that raises is
seen at once; one that loads wrong without a word is what ships.  So when
a fixed example fails loudly (the save or load raised), the remaining fixed
examples still run, and the first silent failure among them is reported
instead, with the others counted; if none of them is silent, Hypothesis
looks for one.  Plain Python: pytest is not needed, Hypothesis is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky


class Result(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def silent(self) -> bool: ...

    def summary(self) -> str: ...


Example = dict[str, Any]


class _Failed(AssertionError):
    def __init__(self, result: Result) -> None:
        super().__init__(result.summary())
        self.result = result


@dataclass
class Search:
    """What the search found: the failure to report (or None) and how it got there."""

    failure: Any | None
    examples_run: int
    # The failure did not come back when its example ran again.
    not_reproducible: bool = False
    # Every other failing example's result, in the order found.
    others: list[Any] = field(default_factory=list)


@dataclass
class _Run:
    run: Callable[..., Result]
    smaller: Callable[[Example], list[Example]] | None
    count: int = 0
    failures: list[tuple[Example, Result]] = field(default_factory=list)

    def __call__(self, example: Example) -> Result:
        self.count += 1
        return self.run(**example)

    def minimal(self, example: Example, result: Result) -> tuple[Example, Result]:
        """A fixed example combining several small ones: the first small one that fails."""
        for part in (self.smaller(example) if self.smaller else []):
            found = self(part)
            if not found.ok:
                return part, found
        return example, result


def _hypothesis(run: _Run, strategies: dict[str, Any], examples: int, seed: int | None,
                fails: Callable[[Result], bool]) -> tuple[Example, Result, bool] | None:
    """Draw ``examples`` examples: (the minimal one for which ``fails`` holds, its result,
    whether Hypothesis's own replay repeated it), or None."""
    seen: list[tuple[Example, Result]] = []

    # No example database (nothing is written outside the temp dir; reproduce by
    # seed), no deadline (saves are slow), and no explain phase, which re-runs a
    # failure once per boolean of the masks to say what the report already says.
    @settings(max_examples=examples, deadline=None, database=None, report_multiple_bugs=False,
              phases=[p for p in _default_phases() if p not in (Phase.explain, Phase.explicit)],
              suppress_health_check=list(HealthCheck))
    @given(**strategies)
    def property_(**example: Any) -> None:
        result = run(example)
        if fails(result):
            seen.append((example, result))
            raise _Failed(result)

    if seed is not None:
        property_ = hypothesis_seed(seed)(property_)
    try:
        property_()
    except _Failed:
        return (*seen[-1], True)
    except Flaky:  # shrunk to a failure that its final replay could not repeat
        return (*seen[0], False)
    return None


def _default_phases() -> tuple[Phase, ...]:
    """The phases of the profile in force (--hypothesis-profile keeps working)."""
    default = settings.default
    return tuple(default.phases) if default is not None else tuple(Phase)


def search(run: Callable[..., Result], *, fixed: list[Example], strategies: dict[str, Any],
           examples: int, seed: int | None, generate: bool = True,
           smaller: Callable[[Example], list[Example]] | None = None) -> Search:
    """Run ``run(**example)`` on the fixed examples, then on ``examples`` drawn from
    ``strategies`` (none with ``generate=False``).

    A fixed example may combine several small ones (see
    :func:`pytest_ckpt.search.fixed_pairs.split`): when it fails, ``smaller(example)``
    lists those, and the first of them that fails is reported instead.
    """
    runner = _Run(run, smaller)
    for example in fixed:
        result = runner(example)
        if result.ok:
            continue
        runner.failures.append(runner.minimal(example, result))
        if runner.failures[-1][1].silent:
            break
    if not any(r.silent for _, r in runner.failures) and generate:
        drawn = _hypothesis(runner, strategies, examples, seed,
                            fails=(lambda r: r.silent) if runner.failures else (lambda r: not r.ok))
        if drawn is not None and not drawn[2]:
            return Search(drawn[1], runner.count, not_reproducible=True,
                          others=[r for _, r in runner.failures])
        if drawn is not None:
            runner.failures.append(drawn[:2])
    if not runner.failures:
        return Search(None, runner.count)
    chosen = next((f for f in runner.failures if f[1].silent), runner.failures[0])
    others = [r for f, r in runner.failures if f is not chosen[0]]
    # Replay the reported example once, so a save or load that is not deterministic is told apart.
    replay = runner(chosen[0])
    return Search(chosen[1], runner.count, not_reproducible=replay.ok, others=others)
