"""Model factories: finding them by "module:callable" and checking what they build."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_ckpt.errors import FactoryError
from pytest_ckpt.framework import compat
from pytest_ckpt.framework.detection import framework_of, framework_roots


@dataclass(frozen=True)
class FactoryRef:
    """A factory a fresh process can find: ``module:qualname``, and the module's file
    for modules that are not importable by name (a test file pytest imported by path)."""

    spec: str
    module_file: str | None = None


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


def _missing_hint(missing: str) -> str:
    """What to do about a module a factory's import could not find."""
    if missing == "tensorflow" and not os.environ.get("KERAS_BACKEND"):
        # Keras 3 imports TensorFlow when no backend is chosen, even with JAX or PyTorch installed.
        others = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]
        if others:
            return (f"; Keras uses the TensorFlow backend when none is chosen, and {' and '.join(others)} "
                    f"is installed here: set KERAS_BACKEND={others[0]} (or install tensorflow-cpu)")
    return _HINTS.get(missing, "")


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
        hint = _missing_hint((missing or "").split(".")[0])
        if not hint and missing and module_name.split(".")[0] == missing.split(".")[0]:
            # The factory's own package is what is missing: where pytest looks for it.
            hint = ("; it is not importable from here: install your package (pip install -e .), or put "
                    "its root folder on `pythonpath` in your pytest ini file (pythonpath = .)")
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
    roots = framework_roots()
    own = [f for f in frames if not any(os.path.abspath(f.filename).startswith(r) for r in roots)]
    chosen = own or list(frames)
    if not chosen:
        return ""
    frame = chosen[-1]
    return f" (at {frame.filename}:{frame.lineno} in {frame.name})"


def factory_ref(factory: Callable[..., Any] | str) -> FactoryRef | None:
    """How a fresh process finds ``factory``; None for one it cannot (a local function,
    a lambda, something defined in ``__main__``)."""
    if isinstance(factory, str):
        module = sys.modules.get(factory.strip().partition(":")[0])
        return FactoryRef(factory.strip(), getattr(module, "__file__", None))
    module_name: str | None = getattr(factory, "__module__", None)
    qualname: str | None = getattr(factory, "__qualname__", None)
    module = sys.modules.get(module_name or "")
    if not module_name or not qualname or module is None or module_name == "__main__" or "<" in qualname:
        return None
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not factory:
        return None
    return FactoryRef(f"{module_name}:{qualname}", getattr(module, "__file__", None))


def build(factory: Callable, name: str | None = None) -> Any:
    """Call ``factory`` as a fresh process would, and check it returned a built Keras model."""
    name = name or factory_name(factory)
    try:
        with compat.fresh_process_names():
            model = factory()
            compat.remember_names_after_build(model)
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
        raise FactoryError(
            f"model factory {name} returned a model with no weights: nothing to round-trip. A subclassed "
            "model creates its layers' weights on its first call, not in build(input_shape): call it once "
            "on an example input (model(x)) before returning it, or give it keras.Input layers")
    return model
