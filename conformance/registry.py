"""Resolve ``--impl`` names to adapter instances.

Built-in names map to ``module:attr`` targets; anything else must itself be ``module:attr``
(a class, called without arguments, or a ready adapter instance). Missing dependencies give an
error naming the package and the extra that installs it.
"""
from __future__ import annotations

import importlib
from typing import Mapping

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

#: the releases each built-in adapter runs on (distribution name -> PEP 440 range), checked from the
#: installed distributions' metadata before its process starts: an older stack (compat/) that lacks them
#: records the implementation as not run, with the reason, instead of failing. Our implementations need
#: Keras 3 and the Flax linen API of 0.10; the floors are the oldest releases a compat stack ran them on
#: (compat/stacks.yaml: keras3), and pyproject's tf / flax extras ask for the same.
BUILTIN_REQUIREMENTS = {
    "tf": {"tensorflow": ">=2.18", "keras": ">=3.6", "h5py": ">=3.10"},
    "flax": {"jax": ">=0.4.35", "flax": ">=0.10.2", "optax": ">=0.2"},
    "hf-tf": {"transformers": ">=4.37,<5", "tensorflow": ">=2.15"},
    "hf-flax": {"transformers": ">=4.37,<5", "jax": ">=0.4.13", "flax": ">=0.7"},
    "keras-hub": {"keras-hub": ">=0.32", "keras": ">=3.15", "tensorflow": ">=2.16"},
}


def unmet_requirements_in(impl: str, installed: Mapping[str, str]) -> list[str]:
    """What ``installed`` ({distribution: version}, names in any case) lacks for a built-in adapter
    (BUILTIN_REQUIREMENTS), one phrase each; empty when all hold or ``impl`` is not built in (a
    module:attr adapter states its own needs)."""
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name

    versions = {canonicalize_name(name): v for name, v in installed.items()}
    unmet = []
    for package, spec in BUILTIN_REQUIREMENTS.get(impl, {}).items():
        found = versions.get(canonicalize_name(package))
        if found is None:
            unmet.append(f"{package}{spec} (not installed)")
        elif found not in SpecifierSet(spec, prereleases=True):
            unmet.append(f"{package}{spec} (installed: {found})")
    return unmet


def unmet_requirements(impl: str) -> list[str]:
    """unmet_requirements_in for the distributions installed in this environment."""
    from importlib.metadata import PackageNotFoundError, version

    installed = {}
    for package in BUILTIN_REQUIREMENTS.get(impl, {}):
        try:
            installed[package] = version(package)
        except PackageNotFoundError:
            pass
    return unmet_requirements_in(impl, installed)


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
    distribution = spec.sections.get("distribution")
    layouts = distribution.layouts if distribution is not None else {}
    problems += [f"layout {name!r} is not a spec distribution layout ({', '.join(layouts)})"
                 for name in caps.layouts if name not in layouts]
    if caps.layouts and "run_distributed" not in caps.methods:
        problems.append("it declares distribution layouts but not the method run_distributed")
    declared = list(caps.methods) + (["save", "load"] if caps.files else [])
    problems += [f"it declares {m!r} but has no such method" for m in declared
                 if not callable(getattr(adapter, m, None))]
    if problems:
        raise AdapterError(f"--impl {impl}: capabilities() of {type(adapter).__name__}: " + "; ".join(problems))
