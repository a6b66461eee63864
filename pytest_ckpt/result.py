"""What one round trip did: errors and the variables that did not survive."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pytest_ckpt.comparison import VariableOutcome
from pytest_ckpt.masks import FreezeMask
from pytest_ckpt.tree import LayerTree


@dataclass
class RoundTripResult:
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

    @property
    def ok(self) -> bool:
        return not (self.outcomes or self.save_error or self.load_error)

    def counts(self) -> Counter:
        return Counter(o.verdict for o in self.outcomes)

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
            if len(node.index_path) != 1:
                continue
            prefix = node.index_path
            inside = [
                n.index_path
                for n in self.tree.nodes
                if n.index_path[: len(prefix)] == prefix
            ]
            if len(inside) < 2:  # a leaf layer keeps its own order
                continue
            before = {p for p in inside if p in self.save_mask.frozen}
            after = {p for p in inside if p in self.load_mask.frozen}
            if before != after:
                names.append(node.display)
        return names
