"""What a check found: one round trip's result, and a whole check's outcome."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pytest_ckpt.comparison import CHANGED, NOT_LOADED, OUTPUTS_DIFFER, SWAPPED, VariableOutcome
from pytest_ckpt.masks import FreezeMask, frozen_by
from pytest_ckpt.probe import OutputDifference
from pytest_ckpt.tree import LayerTree


@dataclass
class RoundTripResult:
    """One save under ``save_mask`` and one load under ``load_mask``."""

    factory: str
    format: str
    framework: str | None
    save_mask: FreezeMask
    load_mask: FreezeMask
    tree: LayerTree | None = field(default=None, repr=False)
    variable_count: int | None = None
    outcomes: list[VariableOutcome] = field(default_factory=list)
    save_error: tuple[str, str] | None = None
    load_error: tuple[str, str] | None = None
    # Warnings the framework gave while loading (quoted in the report).
    warnings: list[str] = field(default_factory=list)
    # Only checked once every variable survived (see engine.check_outputs).
    output_differences: list[OutputDifference] = field(default_factory=list)
    # The loading side was a new model (keras.saving.load_model): no load mask.
    new_model: bool = False

    @property
    def ok(self) -> bool:
        return not (self.outcomes or self.save_error or self.load_error or self.output_differences)

    def counts(self) -> Counter:
        counts = Counter(o.verdict for o in self.outcomes)
        if self.output_differences:
            counts[OUTPUTS_DIFFER] = len(self.output_differences)
        return counts

    def verdict_words(self) -> list[str]:
        """The verdict in a few words, for the results matrix and JUnit."""
        words = [f"{what} {error[0]}" for what, error in (("save", self.save_error),
                 ("load", self.load_error)) if error]
        counts = self.counts()
        words += [v for v in (SWAPPED, NOT_LOADED, CHANGED, OUTPUTS_DIFFER) if counts.get(v)]
        if any(o.kind == "optimizer" for o in self.outcomes):
            words.insert(0, "optimizer")
        return words

    def summary(self) -> str:
        if self.ok:
            return f"{self.factory} [{self.format}]: every variable survived"
        parts = []
        if self.save_error:
            parts.append(f"save raised {self.save_error[0]}")
        if self.load_error:
            parts.append(f"load raised {self.load_error[0]}")
        parts += [f"{n} {verdict}" for verdict, n in sorted(self.counts().items())]
        return f"{self.factory} [{self.format}]: " + ", ".join(parts)

    def containers_with_changed_freeze_state(self) -> list[str]:
        """Nested models directly under the root whose freeze state differs.

        Legacy HDF5 stores each top-level layer's weights as one positional
        list, so these are the layers whose saved order no longer matches.
        """
        if self.tree is None:
            return []
        names = []
        for node in self.tree.nodes:
            if len(node.index_path) != 1 or not node.is_container:
                continue
            inside = [n.index_path for n in self.tree.nodes if n.index_path[:1] == node.index_path]
            if [frozen_by(self.save_mask, p) for p in inside] != [frozen_by(self.load_mask, p) for p in inside]:
                names.append(node.display)
        return names


@dataclass
class CheckOutcome:
    """How one check (a factory in a format) ended."""

    format: str
    seed: int | None
    examples_run: int
    failure: RoundTripResult | None = None
    # The failure did not come back when the same example ran again.
    not_reproducible: bool = False
    # Why the outputs were not compared, when they could not be.
    outputs_note: str | None = None
    # Variables left out of the exact comparison: (path, reason), see unsaved.py.
    excluded: list[tuple[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.failure is None
