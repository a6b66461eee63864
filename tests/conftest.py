import os
from pathlib import Path

import pytest

# Quiet TensorFlow's start-up banner in every process the suite starts.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project_on_path(monkeypatch):
    """Subprocesses started by pytester import ``tests.cases`` from the project root."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
