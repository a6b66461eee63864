"""What the plugin keeps for one pytest run (per process, so per xdist worker)."""

from __future__ import annotations

import pytest

from pytest_ckpt.options import CkptSettings


class SessionState:
    """What the plugin keeps for one pytest run: settings and built models."""

    def __init__(self, settings: CkptSettings):
        self.settings = settings
        self._pairs = None

    @property
    def pairs(self):
        if self._pairs is None:
            from pytest_ckpt.engine import PairCache

            self._pairs = PairCache()
        return self._pairs


STATE_KEY = pytest.StashKey[SessionState]()
