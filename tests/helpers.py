"""Model factories for the suite's own known-good and known-bad cases."""

import keras


def two_dense_auto_named():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(3), keras.layers.Dense(3)])


def nondeterministic():
    # A different architecture on every call: the engine must refuse it.
    nondeterministic.calls = getattr(nondeterministic, "calls", 0) + 1
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2 + nondeterministic.calls)])


_same = None


def same_object():
    global _same
    if _same is None:
        _same = two_dense_auto_named()
    return _same
