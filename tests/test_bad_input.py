"""Bad input: one clear message naming the culprit, the other tests still run, nothing written."""

import pytest

FACTORIES = """
import keras

def raises():
    raise RuntimeError("boom: no GPU budget")

def not_a_model():
    return "a string"

def unbuilt():
    return keras.Sequential([keras.layers.Dense(2)])

def no_weights():
    return keras.Sequential([keras.Input((3,)), keras.layers.Flatten()])

def good():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
"""

PLAIN = """
def test_plain():
    assert True
"""


def files(root):
    # pytester points HOME here (Keras creates ~/.keras/keras.json on import)
    # and keeps the run's --basetemp and captured output here: none is ours.
    def ours(path):
        parts = path.relative_to(root).parts
        return not (parts[0] in {".keras", "stdout", "stderr"}
                    or parts[0].startswith("runpytest") or "__pycache__" in parts)

    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ours(p))


def test_each_bad_factory_gets_one_clear_error_and_the_rest_runs(pytester):
    pytester.makepyfile(factories=FACTORIES, test_plain=PLAIN)
    pytester.makeini("""
        [pytest]
        ckpt_models =
            nosuch.module:build
            factories:missing
            factories:raises
            factories:not_a_model
            factories:unbuilt
            factories:no_weights
            factories:good
        ckpt_formats = keras-weights, bogus
        ckpt_examples = 3
    """)
    before = files(pytester.path)
    result = pytester.runpytest_subprocess("--ckpt-roundtrip", "-p", "no:cacheprovider", "-rf")
    # 6 bad factories + the unknown format fail; the good factory and the plain test pass.
    result.assert_outcomes(passed=2, failed=7)
    result.stdout.fnmatch_lines_random([
        "*unknown format(s) 'bogus'; valid formats: keras-weights, keras-sharded, keras, h5, h5-by-name*",
        "*model factory 'nosuch.module:build': cannot import module 'nosuch.module'*",
        "*model factory 'factories:missing': 'factories' has no attribute 'missing'; callables there:*good*",
        "*model factory factories:raises raised RuntimeError: boom: no GPU budget*",
        "*model factory factories:not_a_model returned builtins.str, not a Keras model*",
        "*model factory factories:unbuilt returned an unbuilt model*keras.Input*",
        "*model factory factories:no_weights returned a model with no weights*",
    ])
    # Each failure is its message alone, not a traceback through our code.
    assert "pytest_ckpt/engine.py" not in result.stdout.str()
    assert files(pytester.path) == before  # nothing written (no .hypothesis either)


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_bad_example_count_is_one_error_and_other_tests_run(pytester, value):
    pytester.makepyfile(test_plain=PLAIN)
    pytester.makeini("[pytest]\nckpt_models = pytest_ckpt.models:swap_prone_nested\n")
    result = pytester.runpytest_subprocess("--ckpt-roundtrip", f"--ckpt-examples={value}",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*--ckpt-examples / ckpt_examples must be a whole number of at least 1, got '{value}'*"])


def test_no_registered_models_is_an_error_not_silence(pytester):
    pytester.makepyfile(test_plain=PLAIN)
    result = pytester.runpytest_subprocess("--ckpt-roundtrip", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*no model factories registered*ckpt_models*"])


def test_fixture_with_unknown_format_fails_clearly(pytester):
    pytester.makepyfile(test_fix="""
        from pytest_ckpt import models
        def test_it(ckpt_roundtrip):
            ckpt_roundtrip(models.swap_prone_nested, formats=["pickle"])
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*unknown checkpoint format 'pickle'; valid formats: keras-weights*"])
