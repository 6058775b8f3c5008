"""What every adapter in this package shares, whatever the framework: package versions, outputs as
numpy, and ``PackageClasses``, the descriptive half of the protocol for an implementation whose model
classes are attributes of one Python package (impl_tf, impl_flax, transformers)."""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from typing import Any

import numpy as np

from conformance.adapters.base import Support, public_method_signature


def spec_dtypes() -> tuple[str, ...]:
    """The computation dtypes of the spec (tolerances.yaml), which the built-in adapters all run."""
    from spec import load_spec

    return load_spec().tolerances.dtypes


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def to_numpy(value: Any) -> Any:
    """Framework arrays -> numpy, recursively through tuples and lists; a dict (the opaque Flax key/value
    cache) and plain values pass through."""
    if isinstance(value, (tuple, list)):
        return tuple(to_numpy(v) for v in value)
    if isinstance(value, (dict, str)):
        return value
    if callable(getattr(value, "numpy", None)):
        return np.asarray(value.numpy())
    if hasattr(value, "__array__"):
        return np.asarray(value)
    return value


class PackageClasses:
    """model_class, classes, supports and the signatures, answered from the package ``package``: its
    classes are the spec's classes of ``framework`` that it defines."""

    #: the module whose attributes are the model classes
    package: str = ""
    #: "tf" or "flax": selects the spec's classes and the call method (Keras ``call``, Flax ``__call__``)
    framework: str = "tf"

    def _package_label(self) -> str:
        """How messages name the implementation."""
        return self.package

    def model_class(self, class_name: str):
        if class_name not in self.classes():
            raise ValueError(f"{self._package_label()} has no class {class_name!r}; it implements {self.classes()}")
        return getattr(importlib.import_module(self.package), class_name)

    def classes(self) -> list[str]:
        from spec import load_spec

        module = importlib.import_module(self.package)
        return [c.name for c in load_spec().classes_for(self.framework) if hasattr(module, c.name)]

    def supports(self, class_name: str, dtype: str = "float32", device: str = "cpu") -> Support:
        if class_name not in self.classes():
            return Support(False, f"{self._package_label()} has no {class_name}")
        if dtype not in spec_dtypes():
            return Support(False, f"unknown dtype {dtype!r}; {self._package_label()} runs {list(spec_dtypes())}")
        if device not in self.available_devices():
            return Support(False, f"no {device} device available to {self.framework}")
        return Support(True)

    def available_devices(self) -> list[str]:  # pragma: no cover - every adapter defines it
        raise NotImplementedError

    def constructor_signature(self, class_name: str) -> inspect.Signature:
        return inspect.signature(self.model_class(class_name))

    def call_signature(self, class_name: str) -> inspect.Signature:
        method = "call" if self.framework == "tf" else "__call__"
        signature = inspect.signature(getattr(self.model_class(class_name), method))
        return signature.replace(parameters=[p for n, p in signature.parameters.items() if n != "self"])

    def method_signature(self, class_name: str, method: str) -> inspect.Signature | None:
        """Optional protocol method (base.py)."""
        return public_method_signature(self.model_class(class_name), method)
