"""What a check found: one round trip's result, and a whole check's outcome."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

from pytest_ckpt.checks.comparison import VariableKind, VariableOutcome, Verdict
from pytest_ckpt.framework.probe import OutputDifference
from pytest_ckpt.framework.tree import LayerTree
from pytest_ckpt.search.masks import FreezeMask, frozen_by


class Matching(enum.StrEnum):
    """How the saving model's variables are paired with the loading model's."""

    NAME = "layer names"  # the same layer-name paths on both sides
    TREE = "position in the layer tree"  # names differ (another build order): index paths
    POSITION = "architecture position"  # a migration: two frameworks' builds, variable by variable



class AdapterLoss(enum.StrEnum):
    """Why a variable did not come back from an adapters-only file (keras-hub's .lora.h5)."""

    BIAS = "bias"  # an adapted layer's bias: enable_lora leaves it trainable
    ADAPTER = "adapter"  # an adapter save_lora_weights does not list (enabled on the layer itself)
    STATE = "state"  # not trainable, yet a training step updates it (batch statistics, a cache)
    TRAINED = "trained"  # another trainable variable of the backbone
    OUTSIDE_BASE = "outside-base"  # outside the backbone: in neither its preset nor the file


@dataclass
class Facts:
    """What is known about a failure beyond its verdicts; causes are decided from these."""

    # The loading model's optimizer was not built when load_weights ran.
    optimizer_unbuilt_at_load: bool = False
    # Layers whose variables the format never wrote, with how their parent holds them.
    untracked: list[str] = field(default_factory=list)
    # Layers whose trainable flag the file did not keep (load_model rebuilt them otherwise).
    unrecorded_flags: list[str] = field(default_factory=list)
    # Layer classes with their own save_own_variables / load_own_variables.
    custom_saving: list[str] = field(default_factory=list)
    # The loading process built the model differently: the first difference, and whether
    # its layers or wiring moved (not only a constant of its config).
    layout_difference: str | None = None
    layout_moved: bool = False
    # Variable paths of the saved model that the model load_model rebuilt does not have
    # (the state tree matches by path and ignores the rest).
    unmatched_paths: list[str] = field(default_factory=list)
    # Layers with a LoRA adapter among the variables that did not survive.
    lora: list[str] = field(default_factory=list)
    # Quantized layers (with their mode) among the variables that did not survive.
    quantized: list[str] = field(default_factory=list)
    # An adapters-only file: the variables it did not bring back, by why.
    adapter_losses: dict[AdapterLoss, list[str]] = field(default_factory=dict)
    # Layers the backbone adapted whose adapters save_lora_weights cannot read (no lora_kernel_a).
    unsavable_adapters: list[str] = field(default_factory=list)


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
    output_differences: list[OutputDifference] = field(default_factory=list)
    # The loading side was a new model (keras.saving.load_model): no load mask.
    new_model: bool = False
    # No mask was applied: both models kept the flags their factory set (an adapters-only
    # format, whose file must hold what those flags let train); the masks only describe them.
    factory_flags: bool = False
    facts: Facts = field(default_factory=Facts)

    @property
    def ok(self) -> bool:
        return not (self.outcomes or self.save_error or self.load_error or self.output_differences)

    @property
    def silent(self) -> bool:
        """It failed without a word: nothing raised, yet something is wrong after the load."""
        return not self.ok and not (self.save_error or self.load_error)

    def counts(self) -> Counter[Verdict]:
        counts = Counter(o.verdict for o in self.outcomes)
        if self.output_differences:
            counts[Verdict.OUTPUTS_DIFFER] = len(self.output_differences)
        return counts

    def verdict_words(self) -> list[str]:
        """The verdict in a few words, for the results matrix and JUnit."""
        words = [f"{what} {error[0]}" for what, error in (("save", self.save_error),
                 ("load", self.load_error)) if error]
        counts = self.counts()
        words += [v.value for v in (Verdict.SWAPPED, Verdict.NOT_LOADED, Verdict.CHANGED,
                                    Verdict.OUTPUTS_DIFFER) if counts.get(v)]
        if any(o.kind is VariableKind.OPTIMIZER for o in self.outcomes):
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
    # The other mask pairs that failed, besides the one reported.
    others: list[object] = field(default_factory=list)
    # Why this check is weaker than it could be (it loaded in the saving process).
    isolation_note: str | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None
