"""Keeping a factory's round-trip items on one xdist worker.

Building a model pair costs more than many round trips, and pairs are cached
per process, so all formats of one factory should run where it was built.
``--dist loadgroup`` alone cannot do it for the default run: xdist workers
re-parse the command line and only add group suffixes when ``--dist
loadgroup`` was typed.  So the controller groups by node id instead.
Imported only when pytest-xdist is installed.
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadGroupScheduling

from pytest_ckpt.items import MIGRATION_SUITE_NAME, SUITE_NAME


class FactoryGroupScheduling(LoadGroupScheduling):
    """loadgroup, plus: items ``ckpt-roundtrip::<factory>::<format>`` group by factory
    (and ``ckpt-migration::<old>::<new>::<format>`` by pair)."""

    def _split_scope(self, nodeid: str) -> str:
        if "@" not in nodeid and nodeid.startswith((SUITE_NAME + "::", MIGRATION_SUITE_NAME + "::")):
            return nodeid.rsplit("::", 1)[0]
        return super()._split_scope(nodeid)


class XdistHooks:
    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config, log):
        from pytest_ckpt.state import STATE_KEY

        if config.getvalue("dist") == "loadgroup" and config.stash[STATE_KEY].settings.roundtrip:
            return FactoryGroupScheduling(config, log)
        return None
