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
}

#: environment a built-in adapter needs in its process (set by the CLI, which runs each --impl alone):
#: transformers' TF classes run on tf-keras, selected by TF_USE_LEGACY_KERAS before TensorFlow is imported
BUILTIN_ENVIRONMENT = {"hf-tf": {"TF_USE_LEGACY_KERAS": "1"}}

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
}

_REQUIRED_ATTRIBUTES = ("name", "framework", "classes", "supports", "build", "run", "available_devices")


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


def resolve_adapter(impl: str):
    """Return an adapter instance for an ``--impl`` value (built-in name or ``module:attr``)."""
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
    return adapter
