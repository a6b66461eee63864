"""Which xdist scheduler generated checks get (no TensorFlow, no workers)."""

from types import SimpleNamespace

from pytest_ckpt.scheduling import FIRST_SAFE_WORKSTEAL, _release, dist_chosen


def test_a_scheduler_counts_as_chosen_only_when_named():
    assert not dist_chosen(SimpleNamespace(dist="no", distload=False))
    assert not dist_chosen(SimpleNamespace())  # xdist not installed
    assert dist_chosen(SimpleNamespace(dist="load", distload=False))
    assert dist_chosen(SimpleNamespace(dist="no", distload=True))  # -d
    assert dist_chosen(SimpleNamespace(dist="loadscope", distload=False))


def test_xdist_releases_before_the_worksteal_hang_fix_are_told_apart():
    assert _release("3.2.0") < FIRST_SAFE_WORKSTEAL <= _release("3.2.1")
    assert _release("3.8.0") >= FIRST_SAFE_WORKSTEAL
    assert _release("3.10.0rc1") >= FIRST_SAFE_WORKSTEAL
    assert _release("3.3.dev5+g1234") >= FIRST_SAFE_WORKSTEAL
    assert _release("unknown") < FIRST_SAFE_WORKSTEAL
