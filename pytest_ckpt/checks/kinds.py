"""What a generated item checks: a light module, imported at collection."""

from __future__ import annotations

import enum


class CheckKind(enum.StrEnum):
    """What a generated item checks (its node id's first part)."""

    ROUNDTRIP = "roundtrip"
    MIGRATION = "migration"
    RESUME = "resume"
    CRASH = "crash"

    @property
    def words(self) -> str:
        return {CheckKind.ROUNDTRIP: "round trip", CheckKind.CRASH: "killed save"}.get(self, self.value)
