"""Telling a factory's framework from its module's source, without importing it."""

import sys

import pytest

from pytest_ckpt.framework.detection import configured_backend, framework_from_source, module_source


@pytest.fixture
def package(tmp_path, monkeypatch):
    root = tmp_path / "src"
    pkg = root / "mlpkg"
    (pkg / "sub").mkdir(parents=True)
    # Importing the package would run this and fail: it must never be imported.
    (pkg / "__init__.py").write_text("raise RuntimeError('imported!')\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "k3.py").write_text("import keras\nfrom keras import layers\n")
    (pkg / "k2.py").write_text("def build():\n    import tf_keras\n")
    (pkg / "both.py").write_text("import keras\nimport tf_keras\n")
    (pkg / "neither.py").write_text("from . import k3\nimport numpy\n")
    (pkg / "broken.py").write_text("def f(:\n")
    (pkg / "sub" / "deep.py").write_text("from keras.layers import Dense\n")
    monkeypatch.syspath_prepend(str(root))
    yield "mlpkg"
    for name in [m for m in sys.modules if m.startswith("mlpkg")]:
        del sys.modules[name]


def test_framework_from_source(package):
    assert framework_from_source("mlpkg.k3") == "keras3"
    assert framework_from_source("mlpkg.k2") == "tf-keras"
    assert framework_from_source("mlpkg.sub.deep") == "keras3"
    for unknown in ("mlpkg.both", "mlpkg.neither", "mlpkg.broken", "mlpkg.missing", "nosuchpkg.x"):
        assert framework_from_source(unknown) is None
    assert "mlpkg" not in sys.modules  # nothing was imported


def test_module_source_finds_files_without_importing(package):
    assert module_source("mlpkg.sub").name == "__init__.py"
    assert module_source("mlpkg.k3").name == "k3.py"
    assert module_source("mlpkg.nothing") is None
    assert "mlpkg" not in sys.modules


def test_configured_backend_reads_what_keras_reads(tmp_path, monkeypatch):
    if "keras" in sys.modules:
        pytest.skip("Keras is imported in this process; it answers for itself")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert configured_backend() == "jax"
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert configured_backend() == "tensorflow"
    (tmp_path / "keras.json").write_text('{"backend": "torch"}')
    assert configured_backend() == "torch"


def test_a_factory_package_that_is_not_importable_points_at_pythonpath():
    import pytest

    from pytest_ckpt.errors import FactoryError
    from pytest_ckpt.framework.factories import resolve

    with pytest.raises(FactoryError, match=r"no_such_package_xyz.*pythonpath"):
        resolve("no_such_package_xyz.models:build")


def test_missing_tensorflow_with_jax_or_torch_installed_says_to_choose_a_backend(monkeypatch):
    import importlib.util

    import pytest

    from pytest_ckpt.framework.factories import _missing_hint

    others = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]
    if not others:
        pytest.skip("neither JAX nor PyTorch is installed here")
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert f"set KERAS_BACKEND={others[0]}" in _missing_hint("tensorflow")
