"""Verdict words from digests of what a variable holds (NumPy only)."""

import numpy as np

from pytest_ckpt.checks.comparison import CHANGED, CREATED_AFTER, NOT_LOADED, SWAPPED, ExpectedValues, fingerprint
from pytest_ckpt.checks.comparison import classify as classify_digests

A = np.array([1.5, 1.25], np.float32)
B = np.array([1.75, 1.125], np.float32)
C = np.array([1.5, 1.25], np.float32).copy()


def classify(*, got, preload, **kw):
    """The classification of arrays, as the checking side makes it from their digests."""
    before = fingerprint(preload) if isinstance(preload, np.ndarray) else preload
    return classify_digests(got=fingerprint(got), preload=before, shape=got.shape, dtype=str(got.dtype), **kw)


def expected(*pairs):
    return ExpectedValues((key, key.upper(), fingerprint(v)) for key, v in pairs)


def test_not_loaded_is_read_from_the_pre_load_value():
    got = -A
    outcome = classify(key="a", display="A", got=got, preload=-A, expected=expected(("a", A), ("b", B)))
    assert outcome.verdict == NOT_LOADED


def test_swapped_names_the_unique_source():
    outcome = classify(key="a", display="A", got=B.copy(), preload=-A,
                       expected=expected(("a", A), ("b", B)))
    assert (outcome.verdict, outcome.source_key, outcome.source_display) == (SWAPPED, "b", "B")


def test_swapped_names_no_source_when_several_hold_that_value():
    outcome = classify(key="x", display="X", got=A.copy(), preload=None,
                       expected=expected(("a", A), ("c", C), ("x", B)))
    assert outcome.verdict == SWAPPED and outcome.source_key is None and outcome.candidates == 2


def test_anything_else_is_changed():
    outcome = classify(key="a", display="A", got=A + 1, preload=-A, expected=expected(("a", A)))
    assert outcome.verdict == CHANGED


def test_a_value_equal_to_the_pre_load_of_another_variable_is_not_not_loaded():
    outcome = classify(key="a", display="A", got=-B, preload=-A, expected=expected(("a", A), ("b", B)))
    assert outcome.verdict == CHANGED


def test_fingerprint_tells_dtype_and_shape_apart():
    assert fingerprint(np.zeros(4, np.float32)) != fingerprint(np.zeros(4, np.int32))
    assert fingerprint(np.zeros((2, 2))) != fingerprint(np.zeros(4))


def test_a_variable_created_after_the_load_that_holds_no_saved_value_was_never_loaded():
    # Slots of an optimizer the first training step builds after load_weights skipped its state.
    outcome = classify(key="a", display="A", got=np.zeros(2, np.float32), preload=CREATED_AFTER,
                       expected=expected(("a", A), ("b", B)))
    assert outcome.verdict == NOT_LOADED
    swapped = classify(key="a", display="A", got=B.copy(), preload=CREATED_AFTER,
                       expected=expected(("a", A), ("b", B)))
    assert swapped.verdict == SWAPPED
