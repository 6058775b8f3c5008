"""Resolve ``--impl`` names to adapter instances.

Built-in names map to ``module:attr`` targets; anything else must itself be ``module:attr``
(a class, called without arguments, or a ready adapter instance). Missing dependencies give an
error naming the package and the extra that installs it.
"""
from __future__ import annotations

import importlib

BUILTIN_ADAPTERS = {
    "tf": "conformance.adapters.ours_tf:TFAdapter",
    "flax": "conformance.adapters.ours_flax:FlaxAdapter",
    "hf-tf": "conformance.adapters.hf_tf:HFTFAdapter",
    "hf-flax": "conformance.adapters.hf_flax:HFFlaxAdapter",
    "keras-hub": "conformance.adapters.keras_hub:KerasHubAdapter",
}

#: environment a built-in adapter needs in its process (set by the CLI, which runs each --impl alone):
#: transformers' TF classes run on tf-keras, selected by TF_USE_LEGACY_KERAS before TensorFlow is imported
#: and keras-hub needs Keras 3 on its TensorFlow backend, selected by KERAS_BACKEND before keras is imported
BUILTIN_ENVIRONMENT = {"hf-tf": {"TF_USE_LEGACY_KERAS": "1"}, "keras-hub": {"KERAS_BACKEND": "tensorflow"}}

#: top-level module -> (pip extra of this project that provides it, human name)
_EXTRA_OF_MODULE = {
    "tensorflow": ("tf", "tensorflow"),
    "h5py": ("tf", "h5py"),
    "keras": ("tf", "keras"),
    "jax": ("flax", "jax"),
    "jaxlib": ("flax", "jaxlib"),
    "flax": ("flax", "flax"),
    "optax": ("flax", "optax"),
    "transformers": ("hf", "transformers"),
    "tf_keras": ("hf", "tf-keras"),
    "torch": ("reference", "torch"),
    "keras_hub": ("keras-hub", "keras-hub"),
}

_REQUIRED_ATTRIBUTES = ("name", "framework", "capabilities", "supports", "build", "run", "available_devices",
                        "get_weights", "load_weights")


def spec_class_names(framework: str) -> list[str]:
    """Class names the spec lists for a framework: the classes an adapter may declare, and the class
    parameters of the suite (an implementation that lacks one is reported as not supporting it)."""
    from spec import load_spec

    return [c.name for c in load_spec().classes_for(framework)]


class AdapterError(Exception):
    """An --impl value that cannot be turned into an adapter; the message says why and what to do."""


def describe_builtins() -> str:
    return ", ".join(f"{name} ({target})" for name, target in BUILTIN_ADAPTERS.items())


def _missing_dependency_message(impl: str, target: str, err: ModuleNotFoundError) -> str:
    missing = (err.name or "").split(".")[0]
    if missing in _EXTRA_OF_MODULE:
        extra, package = _EXTRA_OF_MODULE[missing]
        return (f"--impl {impl}: adapter {target} needs the package {package!r}, which is not installed; "
                f"install it with: pip install 'electra-conformance[{extra}]'")
    if missing in ("impl_tf", "impl_flax"):
        return (f"--impl {impl}: adapter {target} needs the package {missing!r} (this project's "
                f"implementation), which is not importable; install this project (pip install -e .)")
    return f"--impl {impl}: adapter {target} could not be imported: module {err.name!r} is missing ({err})"


def load_target(impl: str, target: str):
    """Import ``module:attr`` and return the attribute, with errors that name the fix."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise AdapterError(f"--impl {impl}: expected 'module:attr', got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
            if target in BUILTIN_ADAPTERS.values():
                raise AdapterError(f"--impl {impl}: built-in adapter module {module_name!r} is not present "
                                   f"in this installation") from err
            raise AdapterError(f"--impl {impl}: no module named {module_name!r} (is it installed and on "
                               f"sys.path?)") from err
        raise AdapterError(_missing_dependency_message(impl, target, err)) from err
    except ImportError as err:
        raise AdapterError(f"--impl {impl}: importing {module_name!r} failed: {err}") from err
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AdapterError(f"--impl {impl}: module {module_name!r} has no attribute {attr!r}") from None


def resolve_adapter(impl: str, *, check: bool = True):
    """Return an adapter instance for an ``--impl`` value (built-in name or ``module:attr``); ``check``:
    also check its Capabilities against the spec (``check_capabilities``)."""
    if impl in BUILTIN_ADAPTERS:
        target = BUILTIN_ADAPTERS[impl]
    elif ":" in impl:
        target = impl
    else:
        raise AdapterError(f"--impl {impl!r} is neither a built-in adapter nor 'module:attr'. "
                           f"Built-in adapters: {describe_builtins()}")
    obj = load_target(impl, target)
    try:
        adapter = obj() if isinstance(obj, type) else obj
    except ModuleNotFoundError as err:
        raise AdapterError(_missing_dependency_message(impl, target, err)) from err
    except Exception as err:  # noqa: BLE001 - any failure of foreign code becomes one named error
        raise AdapterError(f"--impl {impl}: creating the adapter {target} failed: {type(err).__name__}: {err}") from err
    missing = [a for a in _REQUIRED_ATTRIBUTES if not hasattr(adapter, a)]
    if missing:
        raise AdapterError(f"--impl {impl}: {target} is not an adapter (missing {', '.join(missing)}); "
                           f"see conformance/adapters/base.py for the protocol")
    if getattr(adapter, "framework", None) not in ("tf", "flax"):
        raise AdapterError(f"--impl {impl}: adapter.framework must be 'tf' or 'flax', got "
                           f"{getattr(adapter, 'framework', None)!r}")
    if check:
        check_capabilities(impl, adapter)
    return adapter


def check_capabilities(impl: str, adapter) -> None:
    """The adapter's Capabilities, checked against the spec and against the adapter itself: every class
    and config field exists, every declared optional method is there (no probing later)."""
    from conformance.adapters.base import OPTIONAL_METHODS, Capabilities
    from spec import load_spec

    try:
        caps = adapter.capabilities()
    except Exception as err:  # noqa: BLE001 - foreign code
        raise AdapterError(f"--impl {impl}: capabilities() failed: {type(err).__name__}: {err}") from err
    if not isinstance(caps, Capabilities):
        raise AdapterError(f"--impl {impl}: capabilities() must return conformance.adapters.base.Capabilities, "
                           f"got {type(caps).__name__}")
    spec = load_spec()
    known = spec_class_names(adapter.framework)
    problems = [f"class {c!r} is not a spec {adapter.framework} class" for c in caps.classes if c not in known]
    if not caps.classes:
        problems.append("it declares no class")
    fields = {f.name for f in spec.config.fields}
    problems += [f"config field {k!r} is not an ElectraConfig field" for k in caps.config if k not in fields]
    problems += [f"config field {k!r}: the supported values must be a non-empty tuple"
                 for k, v in caps.config.items() if not isinstance(v, tuple) or not v]
    problems += [f"dtype {d!r} is not a spec dtype" for d in caps.dtypes if d not in spec.tolerances.dtypes]
    problems += [f"method {m!r} is not an optional protocol method ({', '.join(OPTIONAL_METHODS)})"
                 for m in caps.methods if m not in OPTIONAL_METHODS]
    declared = list(caps.methods) + (["save", "load"] if caps.files else [])
    problems += [f"it declares {m!r} but has no such method" for m in declared
                 if not callable(getattr(adapter, m, None))]
    if problems:
        raise AdapterError(f"--impl {impl}: capabilities() of {type(adapter).__name__}: " + "; ".join(problems))
