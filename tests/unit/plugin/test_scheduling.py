"""Which xdist scheduler generated checks get (no TensorFlow, no workers)."""

from types import SimpleNamespace

from pytest_ckpt.plugin.scheduling import dist_chosen, is_safe_release


def test_a_scheduler_counts_as_chosen_only_when_named():
    assert not dist_chosen(SimpleNamespace(dist="no", distload=False))
    assert not dist_chosen(SimpleNamespace())  # xdist not installed
    assert dist_chosen(SimpleNamespace(dist="load", distload=False))
    assert dist_chosen(SimpleNamespace(dist="no", distload=True))  # -d
    assert dist_chosen(SimpleNamespace(dist="loadscope", distload=False))


def test_xdist_releases_before_the_worksteal_hang_fix_are_told_apart():
    assert not is_safe_release("3.2.0") and is_safe_release("3.2.1") and is_safe_release("3.8.0")
    assert is_safe_release("3.10.0rc1")
    assert not is_safe_release("3.2.1rc1") and not is_safe_release("3.2.0.post1")
    assert not is_safe_release("unknown")
