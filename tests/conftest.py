import os
from pathlib import Path

import pytest

# Quiet TensorFlow's start-up banner in every process the suite starts.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The loading children build the cases' models too: they must see the saver's
# draws, or a known-bad case could draw alike on both sides and pass by chance.
# One file per pytest process, xdist workers included: workers inherit the controller's
# environment, and two workers' builds interleaving in one shared file let a loader draw
# like its saver (a known-bad case passing by chance: seen once on 2 workers).
os.environ["CASES_BUILD_MEMORY"] = os.path.join(
    __import__("tempfile").gettempdir(), f"ckpt-cases-builds-{os.getpid()}.json")

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project_on_path(monkeypatch):
    """Subprocesses started by pytester import ``tests.cases`` from the project root."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))


# What this environment can check: the suite runs on every Keras 3 backend.
def _backend():
    from pytest_ckpt.framework.detection import configured_backend

    return configured_backend()


BACKEND = _backend()
ON_TENSORFLOW = BACKEND == "tensorflow"
needs_tensorflow_backend = pytest.mark.skipif(
    not ON_TENSORFLOW, reason=f"tf.train.Checkpoint needs the TensorFlow backend (Keras runs on {BACKEND})")
needs_tensorflow_installed = pytest.mark.skipif(
    __import__("importlib").util.find_spec("tensorflow") is None,
    reason="Keras's StringLookup needs TensorFlow installed, whatever the backend")


def _installed(module):
    try:  # a dotted name imports its parent package, which may be missing too
        return __import__("importlib").util.find_spec(module) is not None
    except ImportError:
        return False


needs_orbax = pytest.mark.skipif(not _installed("orbax.checkpoint"), reason="the Orbax formats need "
                                 "orbax-checkpoint (pip install 'pytest-ckpt[orbax]')")
HAS_ORBAX = _installed("orbax.checkpoint")
HAS_KERAS_HUB = _installed("keras_hub")
needs_keras_hub = pytest.mark.skipif(not HAS_KERAS_HUB, reason="format keras-hub-preset needs keras-hub "
                                     "(the README's keras-hub install)")


def files_of(pytester):
    """What a pytester project folder holds, less pytester's own (HOME points there, so Keras
    writes ~/.keras/keras.json; its basetemp; the subprocess's captured output)."""
    return sorted(p.name for p in pytester.path.iterdir()
                  if p.name not in (".keras", "stdout", "stderr") and not p.name.startswith("runpytest"))


def failure_report(result):
    """The lines above pytest's short summary, which repeats whole messages when CI is set."""
    lines = result.outlines
    end = next((i for i, l in enumerate(lines) if "short test summary info" in l), len(lines))
    return lines[:end]
