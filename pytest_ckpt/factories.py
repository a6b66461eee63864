"""Model factories: finding them by "module:callable" and checking what they build."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable

from pytest_ckpt import compat
from pytest_ckpt.errors import FactoryError
from pytest_ckpt.frameworks import framework_of


def factory_name(factory: Callable) -> str:
    """"module:qualname", the form users write in ``ckpt_models``."""
    module = getattr(factory, "__module__", None) or "?"
    qualname = getattr(factory, "__qualname__", None) or repr(factory)
    return f"{module}:{qualname}"


def split_spec(spec: str) -> tuple[str, str]:
    module_name, sep, attr_path = spec.strip().partition(":")
    if not sep or not module_name or not attr_path:
        raise FactoryError(
            f"model factory {spec!r}: expected 'package.module:callable' (one per line in ckpt_models)")
    return module_name, attr_path


_HINTS = {
    "tf_keras": "; this factory needs tf-keras: pip install tf-keras",
    "keras": "; this factory needs Keras 3: pip install keras and a backend (tensorflow-cpu, jax or torch)",
    "tensorflow": "; this factory needs TensorFlow: pip install tensorflow (or tensorflow-cpu)",
    "jax": "; this factory needs JAX: pip install jax",
    "torch": "; this factory needs PyTorch: pip install torch",
}


def resolve(spec: str) -> Callable:
    """Import ``package.module:callable`` (the callable may be dotted: ``mod:Cls.build``).

    Anything the module raises at import becomes one FactoryError, SystemExit
    included (a training script parsing ``sys.argv``); KeyboardInterrupt
    still stops the run.
    """
    module_name, attr_path = split_spec(spec)
    try:
        obj = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
        what = f"SystemExit({exc.code!r})" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
        hint = _HINTS.get((missing or "").split(".")[0], "")
        if isinstance(exc, SystemExit):
            hint = ("; the module exits when imported (a script parsing sys.argv?): move that code "
                    "under `if __name__ == '__main__':`")
        raise FactoryError(
            f"model factory {spec!r}: cannot import module {module_name!r}: {what}{hint}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            available = sorted(
                n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None)))
            raise FactoryError(
                f"model factory {spec!r}: {module_name!r} has no attribute {part!r}; "
                f"callables there: {', '.join(available[:20]) or 'none'}") from None
    if framework_of(obj) is not None:
        raise FactoryError(f"model factory {spec!r} is a model, not a function that builds one "
                           "(each check builds two fresh models)")
    if not callable(obj):
        raise FactoryError(f"model factory {spec!r} is a {type(obj).__name__}, not a callable")
    return obj


def as_callable(factory: Callable | str) -> tuple[Callable, str]:
    """(callable, display name) for a callable or a "module:callable" spec."""
    if isinstance(factory, str):
        return resolve(factory), factory.strip()
    if framework_of(factory) is not None:
        raise FactoryError(
            f"got the model {getattr(factory, 'name', factory)!r} itself where a factory was expected: "
            "pass the function that builds it (each check builds two fresh models)")
    if not callable(factory):
        raise FactoryError(
            f"model factory {factory!r} is a {type(factory).__name__}, not a callable returning a "
            "model (pass the function, not the model it builds)")
    return factory, factory_name(factory)


def _where(exc: BaseException) -> str:
    """' (at file:line in function)': the innermost frame of the user's code, not of Keras or ours."""
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # [0] is build() itself
    # Not in this package or a framework: the user's code, wherever it is installed.
    roots = [os.path.dirname(os.path.abspath(m.__file__)) + os.sep
             for m in (sys.modules.get(name) for name in ("pytest_ckpt", "keras", "tensorflow", "tf_keras",
                                                          "jax", "torch", "numpy", "h5py"))
             if m is not None and getattr(m, "__file__", None)]
    own = [f for f in frames if not any(os.path.abspath(f.filename).startswith(r) for r in roots)]
    frame = (own or frames or [None])[-1]
    return f" (at {frame.filename}:{frame.lineno} in {frame.name})" if frame else ""


def build(factory: Callable, name: str | None = None):
    """Call ``factory`` as a fresh process would, and check it returned a built Keras model."""
    name = name or factory_name(factory)
    try:
        with compat.fresh_process_names():
            model = factory()
    except (Exception, SystemExit) as exc:
        raise FactoryError(f"model factory {name} raised {type(exc).__name__}: {exc}{_where(exc)}") from exc
    if framework_of(model) is None:
        raise FactoryError(
            f"model factory {name} returned {type(model).__module__}.{type(model).__qualname__}, "
            "not a Keras model (keras.Model, keras.Sequential or a tf-keras Model)")
    if not getattr(model, "built", False):
        raise FactoryError(
            f"model factory {name} returned an unbuilt model: start it with keras.Input(shape) "
            "or call model.build(input_shape) before returning it")
    if not model.weights:
        raise FactoryError(f"model factory {name} returned a model with no weights: nothing to round-trip")
    return model
