"""Which xdist scheduler a run of generated checks gets.

Generated items differ in cost by two orders of magnitude: a check that
fails shrinks its masks, a large model takes seconds per save.  xdist's
default ``load`` scheduler keeps two items queued on each worker, so near
the end one worker can sit idle while the other still holds a slow item
and the one behind it.  Work stealing hands each worker half and moves
queued items to a worker that runs dry.  Any ``--dist`` the user chose wins,
except ``--dist no``: that is xdist's default, so it cannot be told apart
from no choice (with ``-n``, xdist itself turns it into ``load``).
"""

from __future__ import annotations

from typing import Any

from pytest_ckpt.plugin.session import DIST_CHOSEN_KEY, SESSION_KEY

# 3.2.0 could hang when a steal met an empty queue (xdist #884, fixed in 3.2.1).
FIRST_SAFE_WORKSTEAL = "3.2.1"


def dist_chosen(option: Any) -> bool:
    """Whether the command line or addopts named a scheduler (read before xdist fills in ``load``)."""
    return getattr(option, "dist", "no") != "no" or bool(getattr(option, "distload", False))


def steals_work(config: Any) -> bool:
    """Whether this run's xdist workers get work stealing: workers that run items,
    generated checks, no ``--dist`` of the user's, and an xdist whose work stealing is safe."""
    state = config.stash[SESSION_KEY]
    if not getattr(config.option, "numprocesses", 0) or config.option.collectonly:
        return False
    if config.stash.get(DIST_CHOSEN_KEY, True) or not state.settings.generates:
        return False
    try:
        import xdist
        from xdist.scheduler import WorkStealingScheduling  # noqa: F401 (present since 3.2)
    except ImportError:
        return False
    return is_safe_release(getattr(xdist, "__version__", "0"))


def is_safe_release(version: str) -> bool:
    from packaging.version import InvalidVersion, Version  # pytest's own dependency

    try:
        return Version(version) >= Version(FIRST_SAFE_WORKSTEAL)
    except InvalidVersion:
        return False
