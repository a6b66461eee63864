"""What the plugin keeps for one pytest run: settings, the seed, notes and results.

One seed per session (pytest-randomly's rule): chosen once, printed in the
header, handed to xdist workers, and every check derives its own seed from
it and its node id, so a whole run replays from one number.
"""

from __future__ import annotations

import hashlib
import random
import shlex
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_ckpt.plugin.options import Settings


@dataclass
class ItemRecord:
    """One generated item's result, for the end-of-session matrix."""

    kind: str  # "roundtrip", "migration", "resume"
    factory: str
    format: str
    verdict: str  # "pass", "FAIL: swapped", "skip", ...

    @classmethod
    def from_report(cls, report: Any) -> ItemRecord | None:
        props = dict(report.user_properties)
        if "ckpt_kind" not in props:
            return None
        verdict = props.get("ckpt_verdict") or ("error" if report.failed else "pass")
        return cls(props["ckpt_kind"], props["ckpt_factory"], props["ckpt_format"], verdict)


@dataclass
class CkptSession:
    settings: Settings
    # --hypothesis-seed, as given; else the controller's random choice.
    explicit_seed: object = None
    random_seed: int = field(default_factory=lambda: random.SystemRandom().getrandbits(32))
    notes: list[str] = field(default_factory=list)
    records: list[ItemRecord] = field(default_factory=list)
    # A factory that cannot be built fails its first item with the full
    # message; its other items point there instead of building it again.
    factory_errors: dict[tuple, tuple[str, str]] = field(default_factory=dict)
    # Golden folders taken in this session (case-folded), and by which check.
    golden_folders: dict[str, str] = field(default_factory=dict)

    @property
    def seed(self) -> Any:
        """The session seed: ``--hypothesis-seed`` if given; 0 under a
        derandomized Hypothesis profile (Hypothesis loads "ci" when CI is set),
        so CI runs replay; else a random one."""
        if self.explicit_seed is not None:
            return self.explicit_seed
        from hypothesis import settings

        return 0 if getattr(settings.default, "derandomize", False) else self.random_seed

    @property
    def derandomized(self) -> bool:
        from hypothesis import settings

        return self.explicit_seed is None and bool(getattr(settings.default, "derandomize", False))

    def seed_for(self, nodeid: str) -> int:
        digest = hashlib.sha256(f"{self.seed}/{nodeid}".encode()).digest()
        return int.from_bytes(digest[:4], "big")


SESSION_KEY = pytest.StashKey[CkptSession]()
# Whether the user named an xdist scheduler: if not, generated checks get work stealing.
DIST_CHOSEN_KEY = pytest.StashKey[bool]()
# The fresh-process name counters of an item using ckpt_regression, entered
# before its first fixture and left after its last teardown.
FRESH_NAMES_KEY = pytest.StashKey[object]()


def reproduce_line(args: list[str], seed: object) -> str:
    """The one way a reproduce line is written: pytest, what selects and configures
    the run, and the session's seed last."""
    return " ".join(["pytest", *args, f"--hypothesis-seed={shlex.quote(str(seed))}"])
