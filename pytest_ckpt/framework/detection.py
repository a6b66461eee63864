"""Which Keras a model or a factory module uses, and which backend runs it.

Two questions are answered twice, on purpose: before anything is imported
(at collection, from the factory module's source text and Keras's own
configuration) and for certain once a model exists (from its classes and
``keras.backend.backend()``).  Collection must stay free of TensorFlow.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from pytest_ckpt.framework import compat

KERAS3 = "keras3"
TF_KERAS = "tf-keras"

TENSORFLOW = "tensorflow"
JAX = "jax"
TORCH = "torch"
NUMPY = "numpy"


def framework_of(model: Any) -> str | None:
    """Which Keras built ``model``, judged by its class hierarchy (no imports)."""
    for cls in type(model).__mro__:
        module = cls.__module__ or ""
        if cls.__name__ != "Model":
            continue
        if compat.is_keras2_module(module):
            return TF_KERAS
        if module.startswith("keras"):
            return KERAS3
    return None


def backend_of(framework: str) -> str:
    """The backend that runs ``framework``'s models in this process (imports Keras)."""
    if framework == TF_KERAS:
        return TENSORFLOW
    import keras

    return keras.backend.backend()


def configured_backend() -> str:
    """The Keras 3 backend this process will use, read the way Keras reads it,
    without importing Keras: ``KERAS_BACKEND``, else ``keras.json`` under
    ``KERAS_HOME`` (default ``~/.keras``), else TensorFlow."""
    if "keras" in sys.modules:
        try:
            return sys.modules["keras"].backend.backend()
        except AttributeError:
            pass
    env = os.environ.get("KERAS_BACKEND")
    if env:
        return env
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        config = json.loads(Path(home, "keras.json").read_text())
        return str(config.get("backend") or TENSORFLOW)
    except (OSError, ValueError, AttributeError):
        return TENSORFLOW


def module_source(module_name: str) -> Path | None:
    """The source file of ``module_name``, found without importing it or its packages.

    ``importlib.util.find_spec("a.b")`` would import package ``a``; only the
    top-level name is looked up, the rest is followed on disk.
    """
    top, *rest = module_name.split(".")
    if top in sys.modules and not rest:
        origin = getattr(sys.modules[top], "__file__", None)
        return Path(origin) if origin else None
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        return Path(spec.origin) if spec.origin and spec.has_location else None
    locations = list(spec.submodule_search_locations or [])
    for i, part in enumerate(rest):
        last = i == len(rest) - 1
        found = None
        for base in locations:
            package = Path(base, part)
            if last and Path(base, part + ".py").is_file():
                return Path(base, part + ".py")
            if package.is_dir():
                found = package
                break
        if found is None:
            return None
        if last:
            init = found / "__init__.py"
            return init if init.is_file() else None
        locations = [str(found)]
    return None


def framework_from_source(module_name: str) -> str | None:
    """The Keras a factory module imports, read from its source text.

    ``keras`` alone means Keras 3, ``tf_keras`` alone means tf-keras; both,
    neither, or an unreadable module mean "cannot tell before running"
    (then formats are decided when the model is built).
    """
    path = module_source(module_name)
    if path is None:
        return None
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    seen = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top == "tf_keras":
                seen.add(TF_KERAS)
            elif top == "keras":
                seen.add(KERAS3)
    return seen.pop() if len(seen) == 1 else None


# What each framework reads, once, when it starts: how many threads one op may use.
_THREAD_SETTINGS = {
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",  # PyTorch, NumPy's BLAS
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",  # JAX
}


def share_cores(workers: int) -> None:
    """In an xdist worker, when there are as many workers as cores: one thread per op.

    Each framework sizes its thread pools for the whole machine; with a
    worker per core, every worker's pools fight over every core.  Only
    settings the user left unset are set, and only before the framework
    starts (they are read once, at import).
    """
    if workers < (os.cpu_count() or 1) or any(m in sys.modules for m in ("tensorflow", "jax", "torch")):
        return
    for name, value in _THREAD_SETTINGS.items():
        os.environ.setdefault(name, value)



def framework_roots() -> list[str]:
    """The folders of this package and of every framework imported: frames from these are
    not the user's code."""
    roots = []
    for name in ("pytest_ckpt", "keras", "tensorflow", "tf_keras", "jax", "torch", "numpy", "h5py",
                 "orbax", "keras_hub"):
        origin = getattr(sys.modules.get(name), "__file__", None)
        if origin:
            roots.append(os.path.dirname(os.path.abspath(origin)) + os.sep)
    return roots
