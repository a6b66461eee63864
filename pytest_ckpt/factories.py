"""Model factories: finding them by "module:callable" and checking what they build."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from pytest_ckpt.errors import FactoryError
from pytest_ckpt.formats import KERAS3, TF_KERAS


def factory_name(factory: Callable) -> str:
    """"module:qualname", the form users write in ``ckpt_models``."""
    module = getattr(factory, "__module__", None) or "?"
    qualname = getattr(factory, "__qualname__", None) or repr(factory)
    return f"{module}:{qualname}"


def resolve(spec: str) -> Callable:
    """Import ``package.module:callable`` (the callable may be dotted: ``mod:Cls.build``)."""
    module_name, sep, attr_path = spec.strip().partition(":")
    if not sep or not module_name or not attr_path:
        raise FactoryError(
            f"model factory {spec!r}: expected 'package.module:callable' (one per line in ckpt_models)"
        )
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:
        missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
        hint = {
            "tf_keras": "; this factory needs tf-keras: pip install tf-keras",
            "keras": "; this factory needs Keras 3: pip install tensorflow (or tensorflow-cpu)",
            "tensorflow": "; this factory needs TensorFlow: pip install tensorflow (or tensorflow-cpu)",
        }.get(missing or "", "")
        raise FactoryError(
            f"model factory {spec!r}: cannot import module {module_name!r}: "
            f"{type(exc).__name__}: {exc}{hint}"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            available = sorted(
                n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))
            )
            raise FactoryError(
                f"model factory {spec!r}: {module_name!r} has no attribute {part!r}; "
                f"callables there: {', '.join(available[:20]) or 'none'}"
            ) from None
    if not callable(obj):
        raise FactoryError(f"model factory {spec!r} is a {type(obj).__name__}, not a callable")
    return obj


def declared_framework(spec: str) -> str | None:
    """The framework a factory builds for, known without building it.

    A factory may say so (``factory.ckpt_framework = "tf-keras"``, as the
    built-ins do); otherwise the Keras modules its own module imported tell.
    None when it cannot be told (then every format is collected and the ones
    that do not apply skip when the model is built).  Never raises: a bad
    spec is reported when its items run.
    """
    import inspect

    try:
        factory = resolve(spec)
    except FactoryError:
        return None
    declared = getattr(factory, "ckpt_framework", None)
    if declared in (KERAS3, TF_KERAS):
        return declared
    module = inspect.getmodule(factory)
    seen = set()
    for value in vars(module).values() if module else ():
        name = getattr(value, "__name__", "") if inspect.ismodule(value) else ""
        if name == "tf_keras" or name.startswith("tf_keras."):
            seen.add(TF_KERAS)
        elif name == "keras" or name.startswith("keras."):
            seen.add(KERAS3)
    return seen.pop() if len(seen) == 1 else None


def framework_of(model) -> str | None:
    """Which Keras built ``model``, judged by its class hierarchy (no imports)."""
    for cls in type(model).__mro__:
        module = cls.__module__ or ""
        if cls.__name__ != "Model":
            continue
        if module.startswith("tf_keras") or module.startswith("keras.src.engine"):
            return TF_KERAS
        if module.startswith("keras"):
            return KERAS3
    return None


def build(factory: Callable, name: str | None = None):
    """Call ``factory`` and check it returned a built Keras model with weights."""
    name = name or factory_name(factory)
    try:
        model = factory()
    except Exception as exc:
        raise FactoryError(
            f"model factory {name} raised {type(exc).__name__}: {exc}"
        ) from exc
    framework = framework_of(model)
    if framework is None:
        raise FactoryError(
            f"model factory {name} returned {type(model).__module__}.{type(model).__qualname__}, "
            "not a Keras model (keras.Model, keras.Sequential or a tf-keras Model)"
        )
    if not getattr(model, "built", False):
        raise FactoryError(
            f"model factory {name} returned an unbuilt model: start it with keras.Input(shape) "
            "or call model.build(input_shape) before returning it"
        )
    if not model.weights:
        raise FactoryError(
            f"model factory {name} returned a model with no weights: nothing to round-trip"
        )
    return model
